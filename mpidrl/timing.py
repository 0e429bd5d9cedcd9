"""Clocks: real wall-clock time, and the simulated clock of per-agent compute and communication times.

Per-agent times are given in ``[time]`` as a number (every agent), a list of n numbers, or a formula
of the agent number ``i`` (1-based, as in the paper: agent 0 is i = 1), the agent count ``n`` and the
functions sqrt, log, exp, min, max, abs, e.g. ``h = "sqrt(i)"`` or ``h = "100 if i == 10 else 1"``.

For a synchronous round (every agent does its share, then one exchange) the simulated round lasts
``max_i(h_i * units_i) + max_i(kappa_i)``: the slowest agent's computation, then the slowest
participant's communication.
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Sequence

import numpy as np

from mpidrl.config import ConfigError, TimeConfig

_FUNCTIONS = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp, "min": min, "max": max, "abs": abs}
_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.Call,
    ast.IfExp,
    ast.BoolOp,
    ast.boolop,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)


def _evaluate(formula: str, key: str, n: int) -> np.ndarray:
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError:
        raise ConfigError(f"{key}: cannot parse formula {formula!r}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ConfigError(
                f"{key}: formula {formula!r} may only use numbers, i, n, arithmetic, "
                f"comparisons and {', '.join(_FUNCTIONS)}"
            )
        if isinstance(node, ast.Name) and node.id not in {"i", "n", *_FUNCTIONS}:
            raise ConfigError(f"{key}: unknown name {node.id!r} in {formula!r}; use i (1-based agent) and n")
    code = compile(tree, key, "eval")
    try:
        values = [float(eval(code, {"__builtins__": {}}, {**_FUNCTIONS, "i": i, "n": n})) for i in range(1, n + 1)]
    except (ValueError, ZeroDivisionError, OverflowError, TypeError) as exc:  # e.g. sqrt(-1)
        raise ConfigError(f"{key}: formula {formula!r} fails ({exc})") from None
    return np.array(values)


def per_agent(value: float | Sequence[float] | str, n: int, key: str) -> np.ndarray:
    """Expand a ``[time]`` value to one non-negative float per agent."""
    if isinstance(value, str):
        out = _evaluate(value, key, n)
    elif isinstance(value, (int, float)):
        out = np.full(n, float(value))
    else:
        if len(value) != n:
            raise ConfigError(f"{key}: list has {len(value)} entries, expected one per agent ({n})")
        out = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise ConfigError(f"{key}: times must be finite and >= 0")
    return out


def check(cfg: TimeConfig, n: int) -> None:
    """Validate the time model for n agents (called before any work starts)."""
    per_agent(cfg.h, n, "time.h")
    per_agent(cfg.kappa, n, "time.kappa")


class WallClock:
    """Seconds since :meth:`start`."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.t0


class SyncSimClock:
    """The simulated clock of a synchronous algorithm: each round waits for the slowest agent."""

    def __init__(self, cfg: TimeConfig, n: int):
        self.h = per_agent(cfg.h, n, "time.h")
        self.kappa = per_agent(cfg.kappa, n, "time.kappa")
        self.now = 0.0

    def advance(self, units: np.ndarray) -> float:
        """Advance by one round in which agent i computed ``units[i]`` gradients (or episodes)."""
        self.now += float(np.max(self.h * units)) + float(np.max(self.kappa))
        return self.now
