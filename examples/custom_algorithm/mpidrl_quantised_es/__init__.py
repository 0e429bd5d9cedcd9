"""Quantised ES: Evolution Strategies whose agents send their return in ``bits`` bits (one byte on the wire).

A communication scheme mpidrl does not ship, built from its parts without changing any of them:

- the agent runs its perturbed episode as in ES and maps its return F onto the range [low, high] the
  config declares, clipped, then rounds it to one of the 2^bits levels:
  ``q = round((2^bits - 1) * clip((F - low) / (high - low), 0, 1))``, sent as one uint8 (1 byte, where
  ES sends a float64 of 8); with ``bits = 1`` the message says only whether F was above the middle of
  the range;
- the learner maps each level back, ``F^ = low + q (high - low) / (2^bits - 1)``, and takes the ES step
  with F^ in place of F (so fitness shaping, antithetic pairs and the optimizer work as in ES).

Everything else (random streams, accounting, checkpoints, rank invariance) comes from mpidrl: the spec
says which protocol drives the two sides and what its messages are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mpidrl.algorithms.es import ESLearner, ESParams, ESWorker
from mpidrl.config import require
from mpidrl.protocols import AlgorithmSpec, Results, SyncRounds, Wire

__all__ = ["QuantisedESParams", "QuantisedESLearner", "QuantisedESWorker", "SPEC", "quantise", "dequantise"]


@dataclass(frozen=True)
class QuantisedESParams(ESParams):
    """ES whose agents send their return quantised to ``bits`` bits over [low, high] (one byte a message)."""

    bits: int = 8
    """bits of the quantised return (1 to 8: a single uint8 on the wire)"""
    low: float = 0.0
    """return mapped to level 0 (lower returns are clipped to it)"""
    high: float = 500.0
    """return mapped to the top level 2^bits - 1 (higher returns are clipped to it)"""

    def check(self, key: str) -> None:
        super().check(key)
        require(1 <= self.bits <= 8, f"{key}.bits", f"must be in [1, 8], got {self.bits}")
        require(self.high > self.low, f"{key}.high", f"must be > low ({self.low}), got {self.high}")


def quantise(f: float, params: QuantisedESParams) -> np.ndarray:
    """The message of return ``f``: its level as one uint8."""
    top = 2**params.bits - 1
    share = min(max((f - params.low) / (params.high - params.low), 0.0), 1.0)
    return np.array([round(top * share)], dtype=np.uint8)


def dequantise(message: np.ndarray, params: QuantisedESParams) -> float:
    """The return a level stands for."""
    top = 2**params.bits - 1
    return params.low + float(message[0]) * (params.high - params.low) / top


class QuantisedESWorker(ESWorker):
    """ES agents that send their return's level instead of the return (a batch of agents at a time, as ES)."""

    def act(self, round: int, agents: Sequence[int]) -> Results:
        result = super().act(round, agents)
        params = self.ctx.cfg.algo
        result.messages = [None if m is None else quantise(float(m[0]), params) for m in result.messages]
        return result


class QuantisedESLearner(ESLearner):
    """The ES learner, on the returns the levels stand for."""

    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        params = self.ctx.cfg.algo
        super().update(round, [(agent, np.array([dequantise(m, params)])) for agent, m in messages])


SPEC = AlgorithmSpec(
    params=QuantisedESParams,
    learner=QuantisedESLearner,
    worker=QuantisedESWorker,
    protocol=SyncRounds,
    wire=Wire(uplink_dtype=np.dtype(np.uint8), uplink_kind="return_level", downlink_kind="params"),
    movable=True,
    example={
        "agents": {"n": 6},
        "algo": {"sigma": 0.1, "fitness_shaping": "centered_rank", "bits": 4},
        "policy": {"hidden": [4]},
        "optim": {"lr": 0.05},
    },
)
"""The algorithm: registered as ``quantised-es`` by this package's entry point."""
