"""Clocks: real wall-clock time, and the simulated clock of per-agent compute and communication times.

Per-agent times are given in ``[time]`` as a number (every agent), a list of n numbers, or a formula
of the agent number ``i`` (1-based, as in the paper: agent 0 is i = 1), the agent count ``n``, the
number ``d`` of parameters of the policy being learned and the functions sqrt, log, exp, min, max, abs,
e.g. ``h = "sqrt(i)"``, ``h = "100 if i == 10 else 1"`` or ``kappa = "sqrt(i) * d ** 0.25"`` (the
paper's expensive communication). ``d`` is known once the policy is built from the environment and
``[policy]``; :func:`mpidrl.algorithms.policy_size` gives it.

A value may also be a table drawing every gradient's (or communication's) time at random, from the
TIME stream of :mod:`mpidrl.rng` keyed by (round, agent), so it does not depend on the ranks::

    h = {dist = "exponential", mean = "sqrt(i)"}          # mean: any of the forms above
    h = {dist = "lognormal", mean = 1.0, sigma = 0.5}     # mean of the lognormal itself
    h = {dist = "uniform", low = 0.5, high = "2 * i"}

Communication takes kappa_i per exchange, or, with ``time.network`` set, what each message's bytes cost
on the agent's link (:mod:`mpidrl.network`, which also has the clock of synchronous rounds).
:class:`TimeModel` serves the asynchronous protocols, which plan their rounds with it
(:mod:`mpidrl.protocols.aggregate`, :mod:`mpidrl.protocols.roundtrip`).
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Sequence

import numpy as np

from mpidrl import rng
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


NAMES = ("i", "n", "d")
"""the variables of a time formula: agent number (1-based), agent count, policy parameter count"""


MAX_FORMULA = 500
"""characters of a time formula at most"""
MAX_TIME = 1e9
"""seconds a compute or communication time may take at most (about 30 years)"""
MAX_LOG_SIGMA = 5.0
"""widest lognormal time table (sigma of the underlying normal)"""


class _Floats(ast.NodeTransformer):
    """Integer constants become floats: a formula's arithmetic is then float arithmetic, whose results are
    bounded (it overflows instead of computing 9 ** 9 ** 9 exactly, for ever)."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return ast.copy_location(ast.Constant(float(node.value)), node)
        return node


def _evaluate(formula: str, key: str, n: int, d: int | None) -> np.ndarray:
    if len(formula) > MAX_FORMULA:
        raise ConfigError(f"{key}: formula has {len(formula)} characters; at most {MAX_FORMULA}")
    try:
        tree = ast.parse(formula, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise ConfigError(f"{key}: cannot parse formula {formula!r}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ConfigError(
                f"{key}: formula {formula!r} may only use numbers, {', '.join(NAMES)}, arithmetic, "
                f"comparisons and {', '.join(_FUNCTIONS)}"
            )
        if isinstance(node, ast.Name) and node.id not in {*NAMES, *_FUNCTIONS}:
            raise ConfigError(
                f"{key}: unknown name {node.id!r} in {formula!r}; use i (1-based agent), n (agents), "
                f"d (policy parameters) and {', '.join(_FUNCTIONS)}"
            )
        if isinstance(node, ast.Name) and node.id == "d" and d is None:
            raise ConfigError(f"{key}: {formula!r} uses d, the policy size, which is not known here")
    code = compile(ast.fix_missing_locations(_Floats().visit(tree)), key, "eval")
    names = {**_FUNCTIONS, "n": float(n), "d": None if d is None else float(d)}
    try:
        values = [float(eval(code, {"__builtins__": {}}, {**names, "i": float(i)})) for i in range(1, n + 1)]
    except (ValueError, ZeroDivisionError, OverflowError, TypeError) as exc:  # e.g. sqrt(-1)
        raise ConfigError(f"{key}: formula {formula!r} fails ({exc})") from None
    return np.array(values)


MAX_RATE = 1e15
"""bytes per second a link may carry at most"""


def per_agent(
    value: float | Sequence[float] | str, n: int, key: str, d: int | None = None, rate: bool = False
) -> np.ndarray:
    """Expand a ``[time]`` value to one non-negative float per agent (a random table: its mean).

    ``d`` is the policy's parameter count for formulas that use it (None: such a formula is an error);
    ``rate``: the value is a bandwidth in bytes per second (> 0), not a time.
    """
    if isinstance(value, dict):
        return _Distribution(value, n, key, d, rate).mean
    if isinstance(value, str):
        out = _evaluate(value, key, n, d)
    elif isinstance(value, (int, float)):
        out = np.full(n, float(value))
    else:
        if len(value) != n:
            raise ConfigError(f"{key}: list has {len(value)} entries, expected one per agent ({n})")
        out = np.asarray(value, dtype=float)
    if rate and (not np.all(np.isfinite(out)) or np.any(out <= 0) or np.any(out > MAX_RATE)):
        raise ConfigError(f"{key}: bandwidths must be > 0 and <= {MAX_RATE:g} bytes/s")
    if not rate and (not np.all(np.isfinite(out)) or np.any(out < 0) or np.any(out > MAX_TIME)):
        raise ConfigError(f"{key}: times must be finite, >= 0 and <= {MAX_TIME:g} s")
    return out


DISTRIBUTIONS = {"exponential": ("mean",), "lognormal": ("mean", "sigma"), "uniform": ("low", "high")}
"""Random time tables: dist name -> its keys."""


class _Distribution:
    """A per-agent random time: ``draw(gen, agent, size)`` gives that many independent durations."""

    def __init__(self, table: dict, n: int, key: str, d: int | None = None, rate: bool = False):
        dist = table.get("dist")
        if dist not in DISTRIBUTIONS:
            raise ConfigError(f"{key}.dist: expected one of {', '.join(DISTRIBUTIONS)}, got {dist!r}")
        allowed = {"dist", *DISTRIBUTIONS[dist]}
        for k in table:
            if k not in allowed:
                raise ConfigError(f"{key}.{k}: unknown key for {dist}; allowed: {', '.join(sorted(allowed))}")
        for k in DISTRIBUTIONS[dist]:
            if k not in table:
                raise ConfigError(f"{key}.{k}: missing for dist {dist!r}")
        self.dist = dist
        self.p = {k: per_agent(table[k], n, f"{key}.{k}", d, rate and k != "sigma") for k in DISTRIBUTIONS[dist]}
        if dist == "uniform" and np.any(self.p["low"] > self.p["high"]):
            raise ConfigError(f"{key}: low must be <= high")
        if dist == "lognormal" and np.any(self.p["sigma"] > MAX_LOG_SIGMA):
            raise ConfigError(f"{key}.sigma: must be <= {MAX_LOG_SIGMA} (a wider one draws almost only zeros)")
        if dist == "uniform":
            self.mean = (self.p["low"] + self.p["high"]) / 2
        else:
            self.mean = self.p["mean"]

    def draw(self, gen: np.random.Generator, agent: int, size: int) -> np.ndarray:
        p = {k: v[agent] for k, v in self.p.items()}
        if self.dist == "exponential":
            return gen.exponential(p["mean"], size) if p["mean"] > 0 else np.zeros(size)
        if self.dist == "lognormal":
            if p["mean"] <= 0:
                return np.zeros(size)
            return gen.lognormal(np.log(p["mean"]) - p["sigma"] ** 2 / 2, p["sigma"], size)
        return gen.uniform(p["low"], p["high"], size)


def _spec(value, n: int, key: str, d: int | None, rate: bool = False) -> np.ndarray | _Distribution:
    return _Distribution(value, n, key, d, rate) if isinstance(value, dict) else per_agent(value, n, key, d, rate)


class TimeModel:
    """Per-agent durations of gradients and communications in one trial.

    ``compute(round, agent, count)`` are the durations of the agent's first ``count`` gradients of the
    round, ``comm(round, agent, count)`` of its first ``count`` communications. Constant times repeat
    h_i; random tables draw from the TIME stream at (round coordinate 2 * round for h, 2 * round + 1
    for kappa, agent), so the k-th gradient of an agent in a round always takes the same time.
    ``d`` is the policy's parameter count, for formulas that use it.
    """

    def __init__(self, cfg: TimeConfig, n: int, seed: int = 0, trial: int = 0, d: int | None = None):
        self.n, self.seed, self.trial = n, seed, trial
        self._h = _spec(cfg.h, n, "time.h", d)
        self._kappa = _spec(cfg.kappa, n, "time.kappa", d)

    def _draw(self, spec, which: int, round: int, agent: int, count: int) -> np.ndarray:
        if isinstance(spec, np.ndarray):
            return np.full(count, spec[agent])
        gen = rng.generator(self.seed, self.trial, rng.Stream.TIME, 2 * round + which, agent)
        return spec.draw(gen, agent, count)

    def compute(self, round: int, agent: int, count: int) -> np.ndarray:
        return self._draw(self._h, 0, round, agent, count)

    def comm(self, round: int, agent: int, count: int = 1) -> np.ndarray:
        return self._draw(self._kappa, 1, round, agent, count)

    def allreduce(self, round: int) -> float:
        """Duration of one collective every agent takes part in: the slowest participant's kappa."""
        return float(max(self.comm(round, i, 1)[0] for i in range(self.n)))


def check(cfg: TimeConfig, n: int, d: int | None = None) -> None:
    """Validate the time model for n agents and a policy of d parameters (before any work starts)."""
    TimeModel(cfg, n, d=d)


class WallClock:
    """Seconds since it was made (``t0`` moves back by the time a resumed trial had already run)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.t0
