"""The version of mpidrl, written once: the package, the run files and setup.cfg read it from here."""

__version__ = "0.4.3"
