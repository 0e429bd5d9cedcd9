"""mpidrl: communication-efficient distributed reinforcement learning on MPI.

The Python API (:mod:`mpidrl.api`, :mod:`mpidrl.launcher`), loaded on first use so that ``import mpidrl``
stays cheap and does not start MPI:

- ``mpidrl.run(config, out=None, set=None, overwrite=False)``: run an experiment as ``mpidrl run`` does,
  in this process or as every rank of an ``mpiexec`` job; returns the run file, read;
- ``mpidrl.launch(config, np=4, ...)``: run it under ``mpiexec -n np`` from a notebook or a script,
  showing its progress; returns the run file, read;
- ``mpidrl.load(path)``: a run file, read (:class:`mpidrl.store.Run`);
- ``mpidrl.RunError``: what the three raise when a run is refused or fails (one line, exit status);
- ``mpidrl.register(name, spec)``: add an algorithm of your own (see docs/extending.md).

``mpidrl.run`` is also the module of the experiment loop (``from mpidrl.run import Experiment``); calling
it runs an experiment. The command ``mpidrl`` (:mod:`mpidrl.cli`) runs, checks, summarises and plots.
"""

import sys
import types
from typing import Any

from mpidrl.version import __version__

__all__ = ["RunError", "__version__", "launch", "load", "register", "run"]

_API = {"load", "RunError"}


class _RunModule(types.ModuleType):
    """The module :mod:`mpidrl.run`, callable as :func:`mpidrl.api.run`."""

    def __call__(self, config: Any, out: Any = None, set: Any = None, overwrite: bool = False) -> Any:
        from mpidrl.api import run

        return run(config, out=out, set=set, overwrite=overwrite)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # the import system binds each submodule to its name here: mpidrl.run becomes callable as it is bound
        if name == "run" and type(value) is types.ModuleType:
            value.__class__ = _RunModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    # loaded on first use: `import mpidrl` stays cheap and does not start MPI
    if name == "register":
        from mpidrl.registry import register

        return register
    if name == "run":
        import mpidrl.run as module  # bound to mpidrl.run as it is imported, callable (_Package.__setattr__)

        return module
    if name == "launch":
        from mpidrl.launcher import launch

        return launch
    if name in _API:
        from mpidrl import api

        return getattr(api, name)
    raise AttributeError(f"module 'mpidrl' has no attribute {name!r}")
