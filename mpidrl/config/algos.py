"""Hyperparameters of each algorithm: the ``[algo]`` section, one frozen dataclass per algorithm name.

The learner and agent code lives in :mod:`mpidrl.algorithms`; this module only holds the data so the
whole config can be validated before any rank starts work. Add a new algorithm's dataclass to
:data:`ALGO_PARAMS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mpidrl.config.schema import require


@dataclass(frozen=True)
class ESParams:
    """Evolution Strategies (Salimans et al. 2017; report 2.4.4): each agent sends one scalar return."""

    name: str = "es"
    """algorithm name"""
    sigma: float = 0.05
    """standard deviation of the parameter perturbations"""
    episodes: int = 1
    """episodes each agent runs per round with its perturbed policy; F is their mean discounted return"""
    fitness_shaping: Literal["none", "centered_rank"] = "none"
    """transform of the received returns before the gradient ("none" reproduces the report)"""
    antithetic: bool = False
    """agents 2j and 2j+1 use the perturbations +eps_j and -eps_j"""
    downlink: Literal["params", "returns"] = "params"
    """what the learner broadcasts: theta (d floats), or the last round's (agent, return) pairs replayed by all"""
    check_every: int = 10
    """with downlink "returns": every this many rounds the broadcast carries a hash of theta to compare"""

    def check(self, key: str) -> None:
        require(self.sigma > 0, f"{key}.sigma", f"must be > 0, got {self.sigma}")
        require(self.episodes >= 1, f"{key}.episodes", f"must be >= 1, got {self.episodes}")
        require(self.check_every >= 1, f"{key}.check_every", f"must be >= 1, got {self.check_every}")


@dataclass(frozen=True)
class ESFixedParams(ESParams):
    """ES where each agent sends its return with the fixed probability m/n (the baseline of report 4.7)."""

    name: str = "es-fixed"
    """algorithm name"""
    m: int = 25
    """expected number of agents communicating per round (probability m/n each)"""

    def check(self, key: str) -> None:
        super().check(key)
        require(self.m >= 1, f"{key}.m", f"must be >= 1, got {self.m}")

    def check_with(self, key: str, sections: Mapping[str, Any]) -> None:
        n = sections["agents"].n
        require(self.m <= n, f"{key}.m", f"must be <= agents.n = {n}, got {self.m}")


@dataclass(frozen=True)
class ESPCParams(ESFixedParams):
    """ES with probabilistic communication (report chapter 4): agents with high utility send more often."""

    name: str = "espc"
    """algorithm name"""
    k: int = 5
    """horizon: the rolling mean and std of utility are over the agent's last k utilities (current included)"""

    def check(self, key: str) -> None:
        super().check(key)
        require(self.k >= 1, f"{key}.k", f"must be >= 1, got {self.k}")


ALGO_PARAMS: dict[str, type] = {
    "es": ESParams,
    "espc": ESPCParams,
    "es-fixed": ESFixedParams,
}
"""Every algorithm name accepted in ``[algo] name``, with its parameter dataclass."""
