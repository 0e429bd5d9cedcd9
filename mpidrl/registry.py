"""The algorithm registry: every ``[algo] name`` and the spec that implements it.

This is the one place where algorithm names live. Each name maps to an
:class:`~mpidrl.protocols.AlgorithmSpec` (parameters, learner side, agent side, protocol, capabilities),
found in one of three ways, all resolved on first use:

- mpidrl's own algorithms, listed in :data:`BUILTINS` as ``"module:attribute"``;
- installed packages that declare an entry point in the group ``mpidrl.algorithms``
  (``sign-es = "my_package:SPEC"``: the entry point's name is the algorithm's name);
- :func:`register` called by the user's own code, e.g. in a module named by ``algo.name =
  "my_module:sign-es"``, which is imported first (as ``env.id = "my_module:MyEnv-v0"`` imports its module).

Like Gymnasium's registry of environments, it stores where to find a spec rather than importing every
algorithm up front: validating a config imports only the algorithm it names.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import warnings
from importlib import metadata
from typing import Any

from mpidrl.config.schema import AlgoParams, ConfigError

ENTRY_POINT_GROUP = "mpidrl.algorithms"
"""Entry point group of algorithms from other packages."""

BUILTINS = {
    "es": "mpidrl.algorithms.builtin:ES",
    "espc": "mpidrl.algorithms.builtin:ESPC",
    "es-fixed": "mpidrl.algorithms.builtin:ES_FIXED",
    "dql": "mpidrl.algorithms.builtin:DQL",
    "ebcdql": "mpidrl.algorithms.builtin:EBCDQL",
    "davia": "mpidrl.algorithms.builtin:DAVIA",
    "nigt-sync": "mpidrl.algorithms.builtin:SYNC",
    "rennala-nigt": "mpidrl.algorithms.builtin:RENNALA",
    "malenia-nigt": "mpidrl.algorithms.builtin:MALENIA",
    "afedpg": "mpidrl.algorithms.builtin:AFEDPG",
    "lapg": "mpidrl.algorithms.builtin:LAPG",
}
"""mpidrl's algorithms: name -> where its spec is."""

DEFAULT = "es"
"""The algorithm of a config whose ``[algo]`` names none."""

_specs: dict[str, Any] = {}
"""resolved specs, by name"""
_sources: dict[str, Any] = {}
"""names not yet resolved: "module:attribute" of a built-in, or an entry point"""
_discovered = False


def _discover() -> None:
    """Learn the built-in names and the installed entry points (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for name, where in BUILTINS.items():
        if name not in _specs:
            _sources[name] = where
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTINS:
            warnings.warn(
                f"entry point {ep.name} = {ep.value} ignored: {ep.name} is one of mpidrl's algorithms", stacklevel=2
            )
        elif ep.name not in _specs:
            _sources.setdefault(ep.name, ep)


def register(name: str, spec: Any, *, replace: bool = False) -> Any:
    """Register ``spec`` under ``name``; returns the registered spec (a copy whose ``name`` is set).

    Raises ValueError if the name is taken (unless ``replace``) and TypeError if the spec's sides do not
    implement the interfaces its protocol drives or its parameters are not an
    :class:`~mpidrl.config.AlgoParams` dataclass.
    """
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise ValueError(f"algorithm name {name!r}: expected a non-empty name without ':' or surrounding spaces")
    _discover()
    if not replace and (name in _specs or name in _sources):
        raise ValueError(f"algorithm {name!r} is already registered")
    params = getattr(spec, "params", None)
    if not (isinstance(params, type) and dataclasses.is_dataclass(params) and issubclass(params, AlgoParams)):
        raise TypeError(f"{name}: spec.params must be a dataclass subclassing mpidrl.config.AlgoParams, got {params!r}")
    named = dataclasses.replace(spec, name=name)
    named.protocol.check_spec(named)
    _sources.pop(name, None)
    _specs[name] = named
    return named


def _resolve(name: str) -> Any:
    source = _sources[name]
    try:
        if isinstance(source, str):
            module, _, attribute = source.partition(":")
            spec = getattr(importlib.import_module(module), attribute)
        else:
            spec = source.load()
    except Exception as exc:  # a broken plugin is one line, not a traceback
        where = source if isinstance(source, str) else f"entry point {source.name} = {source.value}"
        raise ConfigError(f"algo.name: {name} ({where}) cannot be loaded: {type(exc).__name__}: {exc}") from None
    if name in _specs:  # the module registered it itself while being imported
        return _specs[name]
    return register(name, spec, replace=True)


def names() -> list[str]:
    """Every algorithm name known so far (built-ins first), without importing any algorithm."""
    _discover()
    return list(dict.fromkeys([*BUILTINS, *_sources, *_specs]))


def lookup(name: str) -> Any:
    """The spec of ``name``; ``"module:name"`` imports the module first. One-line ConfigError if unknown."""
    if not isinstance(name, str):
        raise ConfigError(f"algo.name: expected a string, got {name!r}")
    _discover()
    if ":" in name:
        module, _, name = name.partition(":")
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ConfigError(f"algo.name: cannot import module {module!r} ({type(exc).__name__}: {exc})") from None
    if name in _specs:
        return _specs[name]
    if name in _sources:
        return _resolve(name)
    close = difflib.get_close_matches(name, names(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"algo.name: unknown algorithm {name!r}; allowed: {', '.join(names())}{hint}")


def specs() -> dict[str, Any]:
    """Every registered spec, by name (imports every algorithm)."""
    return {name: lookup(name) for name in names()}
