"""A module that fails while it is imported (for tests of env.id and algo.name "module:name")."""

raise RuntimeError("this module is broken on purpose")
