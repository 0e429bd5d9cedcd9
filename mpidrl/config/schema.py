"""Typed loading of plain data (TOML tables) into frozen dataclasses.

Every field of a config dataclass carries a type hint; :func:`build` checks each value against it and
reports the first problem as one line naming the dotted key and what is allowed. Dataclasses may define
``check(self, key)`` for range checks; it raises :class:`ConfigError` through :func:`require`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal


class ConfigError(ValueError):
    """A config value or key that cannot be used; the message is one line naming the key."""


def require(condition: bool, key: str, message: str) -> None:
    """Raise ``ConfigError("key: message")`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{key}: {message}")


@dataclasses.dataclass(frozen=True)
class AlgoParams:
    """Base of every algorithm's ``[algo]`` parameters: a frozen dataclass with one docstring per field."""

    name: str = ""
    """algorithm name (see docs/config.md for every registered algorithm)"""

    def check(self, key: str) -> None:
        """Range checks of the parameters alone; raise ConfigError through :func:`require`."""

    def check_with(self, key: str, sections: Mapping[str, Any]) -> None:
        """Checks against the other sections (``sections["agents"].n``, ...)."""


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "nothing"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin in (dict, Mapping) or tp is dict:
        return "a table"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` converted to the type ``tp`` or raise a ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_describe(tp)}, got {value!r}")
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected {_describe(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -(2**63) <= value < 2**63:
                raise ConfigError(f"{key}: {value} does not fit in a 64-bit integer")
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value) if isinstance(value, float) or abs(value) < 2**1023 else math.inf
            if not math.isfinite(number):
                raise ConfigError(f"{key}: expected a finite number, got {value}")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        item = typing.get_args(tp)[0]
        if isinstance(value, (list, tuple)):
            return tuple(coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    elif origin in (dict, Mapping) or tp is dict:
        if isinstance(value, Mapping):
            _plain_data(value, key)
            return dict(value)
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, Mapping):
            return build(tp, value, key)
    else:  # pragma: no cover - a programming error in a config dataclass
        raise TypeError(f"unsupported config type {tp!r} for {key}")
    raise ConfigError(f"{key}: expected {_describe(tp)}, got {value!r} ({type(value).__name__})")


def _plain_data(value: Any, key: str) -> None:
    """Refuse what a config cannot store (it is saved as JSON in every run file): dates and times."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            _plain_data(v, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _plain_data(v, f"{key}[{i}]")
    elif not isinstance(value, (str, int, float, bool)):
        raise ConfigError(f"{key}: expected a number, string, boolean, list or table, got {value!r}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value}")


def build(cls: type, data: Mapping[str, Any], prefix: str, skip: tuple[str, ...] = ()) -> Any:
    """Build the frozen dataclass ``cls`` from ``data``; ``prefix`` is the dotted section name."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names) - set(skip))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key; allowed keys are {', '.join(names)}")
    values = {name: coerce(data[name], hints[name], f"{prefix}.{name}") for name in names if name in data}
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        check(prefix)
    return obj


def to_plain(obj: Any) -> Any:
    """Turn nested dataclasses and tuples into dicts and lists (JSON- and TOML-friendly)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj
