"""Hyperparameters of each algorithm: the ``[algo]`` section, one frozen dataclass per algorithm name.

The learner and agent code lives in :mod:`mpidrl.algorithms`; this module only holds the data so the
whole config can be validated before any rank starts work. Add a new algorithm's dataclass to
:data:`ALGO_PARAMS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

    def check(self, key: str) -> None:
        require(self.sigma > 0, f"{key}.sigma", f"must be > 0, got {self.sigma}")
        require(self.episodes >= 1, f"{key}.episodes", f"must be >= 1, got {self.episodes}")


ALGO_PARAMS: dict[str, type] = {
    "es": ESParams,
}
"""Every algorithm name accepted in ``[algo] name``, with its parameter dataclass."""
