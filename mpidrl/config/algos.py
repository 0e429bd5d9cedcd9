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


def _check_exploration(params: object, key: str) -> None:
    """Range checks shared by the epsilon-greedy schedules of the value-based algorithms."""
    for name in ("explore_start", "explore_end"):
        value = getattr(params, name)
        require(0.0 <= value <= 1.0, f"{key}.{name}", f"must be in [0, 1], got {value}")
    require(params.explore_decay >= 0, f"{key}.explore_decay", f"must be >= 0, got {params.explore_decay}")
    require(
        params.explore_end <= params.explore_start,
        f"{key}.explore_end",
        f"must be <= explore_start ({params.explore_start}), got {params.explore_end}",
    )


@dataclass(frozen=True)
class DQLParams:
    """Distributed Q-learning (report 2.4.1): each agent sends its whole trajectory every episode."""

    name: str = "dql"
    """algorithm name"""
    alpha: float = 0.9
    """learner step: Q(s, a) += alpha * mean TD error of the round's samples at (s, a)"""
    explore_start: float = 0.8
    """epsilon-greedy exploration rate in round 0"""
    explore_decay: float = 0.01
    """exploration rate subtracted per round (one episode per agent per round)"""
    explore_end: float = 0.05
    """floor of the exploration rate"""

    def check(self, key: str) -> None:
        require(0 < self.alpha <= 1, f"{key}.alpha", f"must be in (0, 1], got {self.alpha}")
        _check_exploration(self, key)


@dataclass(frozen=True)
class EBCDQLParams:
    """Event-based communication DQL (report 2.4.2): only samples whose TD error triggers are sent."""

    name: str = "ebcdql"
    """algorithm name"""
    alpha: float = 0.9
    """learner step, as in dql"""
    beta: float = 0.3
    """trigger level filter: L <- (1 - beta) L + beta |delta| (report range 0.05-0.6)"""
    rho: float = 1.1
    """a sample is sent when |delta| >= max(rho L, eps_floor) (report range 0.9-1.3)"""
    eps_floor: float = 0.01
    """smallest |TD error| ever sent"""
    explore_start: float = 0.8
    """epsilon-greedy exploration rate in round 0"""
    explore_decay: float = 0.01
    """exploration rate subtracted per round"""
    explore_end: float = 0.05
    """floor of the exploration rate"""

    def check(self, key: str) -> None:
        require(0 < self.alpha <= 1, f"{key}.alpha", f"must be in (0, 1], got {self.alpha}")
        require(0 < self.beta <= 1, f"{key}.beta", f"must be in (0, 1], got {self.beta}")
        require(self.rho > 0, f"{key}.rho", f"must be > 0, got {self.rho}")
        require(self.eps_floor >= 0, f"{key}.eps_floor", f"must be >= 0, got {self.eps_floor}")
        _check_exploration(self, key)


@dataclass(frozen=True)
class DAVIAParams:
    """DAVIA (report 2.4.3, Gatsis 2021): linear Q, an agent uploads its gradient only when it pays."""

    name: str = "davia"
    """algorithm name"""
    step: float = 1.0
    """learner step eps: w <- w - eps * mean of the received gradients"""
    lam: float = 0.05
    """lambda of the upload condition g^T (I - eps/2 A) g >= lambda / rho^max(N-1-k, 0)"""
    rho: float = 0.9999
    """rho of the upload condition (the threshold falls towards lambda as k approaches N - 1)"""
    horizon: int = 1000
    """N, the planned number of episodes in the upload condition"""
    reg: float = 1e-3
    """L2 regularisation of the weights in the gradient"""
    features: Literal["onehot"] = "onehot"
    """feature map phi(s, a) of the linear action-value function"""
    explore_start: float = 0.8
    """epsilon-greedy exploration rate in round 0"""
    explore_decay: float = 0.01
    """exploration rate subtracted per round"""
    explore_end: float = 0.05
    """floor of the exploration rate"""

    def check(self, key: str) -> None:
        require(self.step > 0, f"{key}.step", f"must be > 0, got {self.step}")
        require(self.lam >= 0, f"{key}.lam", f"must be >= 0, got {self.lam}")
        require(0 < self.rho <= 1, f"{key}.rho", f"must be in (0, 1], got {self.rho}")
        require(self.horizon >= 1, f"{key}.horizon", f"must be >= 1, got {self.horizon}")
        require(self.reg >= 0, f"{key}.reg", f"must be >= 0, got {self.reg}")
        _check_exploration(self, key)


@dataclass(frozen=True)
class NIGTParams:
    """NIGT policy gradient (seed 001): extrapolation, momentum and a normalised ascent step.

    The same parameters serve nigt-sync, rennala-nigt, malenia-nigt and afedpg; they differ in how the
    gradients of a round are gathered (see mpidrl.algorithms.nigt and mpidrl.algorithms.afedpg).
    """

    name: str = "rennala-nigt"
    """algorithm name"""
    eta: float = 0.1
    """momentum weight eta of d = (1 - eta) d + eta g; the extrapolation uses (1 - eta) / eta"""
    alpha: float = 0.03125
    """length of the normalised ascent step theta += alpha d / ||d|| (paper grid 2^-10 .. 2^-1)"""
    M: int = 20
    """gradients per round (Rennala: first M from any agents; Malenia: harmonic-mean rule; sync: M/n each;
    AFedPG: learner updates per round)"""
    M_init: int = 20
    """gradients of the first round, at theta_0"""
    H: int = 200
    """horizon: steps per trajectory (fewer if the environment ends the episode)"""

    def check(self, key: str) -> None:
        require(0 < self.eta <= 1, f"{key}.eta", f"must be in (0, 1], got {self.eta}")
        require(self.alpha > 0, f"{key}.alpha", f"must be > 0, got {self.alpha}")
        require(self.M >= 1, f"{key}.M", f"must be >= 1, got {self.M}")
        require(self.M_init >= 1, f"{key}.M_init", f"must be >= 1, got {self.M_init}")
        require(self.H >= 1, f"{key}.H", f"must be >= 1, got {self.H}")


@dataclass(frozen=True)
class LAPGParams:
    """Lazily aggregated policy gradient (Chen et al. 2022; reconstructed): skip uploads that changed little."""

    name: str = "lapg"
    """algorithm name"""
    alpha: float = 0.01
    """step size of theta += alpha * sum_m g_m"""
    batch: int = 1
    """trajectories per agent per round"""
    H: int = 200
    """horizon: steps per trajectory"""
    D: int = 10
    """rounds of parameter differences in the skip threshold (xi_d = xi / D)"""
    xi: float = 1.0
    """total weight of the threshold's parameter differences"""
    max_staleness: int = 10
    """an agent uploads after this many skipped rounds whatever its change"""

    def check(self, key: str) -> None:
        require(self.alpha > 0, f"{key}.alpha", f"must be > 0, got {self.alpha}")
        require(self.batch >= 1, f"{key}.batch", f"must be >= 1, got {self.batch}")
        require(self.H >= 1, f"{key}.H", f"must be >= 1, got {self.H}")
        require(self.D >= 1, f"{key}.D", f"must be >= 1, got {self.D}")
        require(self.xi >= 0, f"{key}.xi", f"must be >= 0, got {self.xi}")
        require(self.max_staleness >= 0, f"{key}.max_staleness", "must be >= 0")


ALGO_PARAMS: dict[str, type] = {
    "es": ESParams,
    "espc": ESPCParams,
    "es-fixed": ESFixedParams,
    "dql": DQLParams,
    "ebcdql": EBCDQLParams,
    "davia": DAVIAParams,
    "nigt-sync": NIGTParams,
    "rennala-nigt": NIGTParams,
    "malenia-nigt": NIGTParams,
    "afedpg": NIGTParams,
    "lapg": LAPGParams,
}
"""Every algorithm name accepted in ``[algo] name``, with its parameter dataclass."""
