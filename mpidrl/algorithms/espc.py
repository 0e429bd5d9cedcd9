"""ES with probabilistic communication (ESPC; report chapter 4) and the fixed-probability baseline.

Both are ES (:mod:`mpidrl.algorithms.es`) with a different :meth:`~mpidrl.algorithms.es.ESWorker.decide`;
the learner is the ES learner over the set S of returns that arrived.

ESPC, agent i in round t, after computing its return F_i with perturbation eps_i:

1. utility u = F_i * ||eps_i||_2;
2. mean ub and population std s of the agent's last k utilities, the current one included; s = 1 if
   s == 0 (always so in the first round);
3. p = Phi((u - ub) / s), Phi the standard normal CDF;
4. p_comm = P[Binomial(n-1, p) >= n-m], the probability that at least n-m of the other n-1 agents have
   a lower utility if their utilities were independent draws of the same normal distribution;
5. send F_i if a uniform draw from the agent's DECIDE stream (seed, trial, round, agent) is below p_comm.

If z is standard normal then p is uniform on [0, 1] and E[p_comm] = m/n exactly, so on average m of the n
agents communicate. The report (section 4.4) writes p as the integral of the normal density from 0 to z
and divides by the variance instead of the std; both are typos, we use Phi and the std
(the algorithm specification, algorithms.md).

Two options give the report authors' code instead (their defaults are the specification's):

- ``binomial_tail``: which tail p_comm is. "exact", P[Bi(n-1, p) >= n-m], E = m/n; "shifted",
  P[Bi(n-1, p) >= n-m+1] (one more success: the CartPole/Ant code's ``1 - binom.cdf(n-m, n-1, p)``),
  E = (m-1)/n; "all_agents", P[Bi(n, p) >= n-m] (the grid-world code's ``1 - binom.cdf(n-m-1, n, p)``,
  the agent counted among the others), E = (m+1)/(n+1). Each E is over p uniform on [0, 1]
  (:func:`expected_comm_fraction`).
- ``zero_std``: what a window with std 0 does (always so in the first round). "one" standardises with
  s = 1 (z = 0); "silent" sends nothing (p_comm = 0), which is what the grid-world code's division by
  zero did (a NaN probability, so no send), without the NaN.

ES-fixed, the baseline: every agent sends with probability m/n, with the same uniform draw as ESPC.
Both report the diagnostics ``utility`` and ``p_comm`` per agent per round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np

from mpidrl import rng
from mpidrl.algorithms.es import ESParams, ESWorker
from mpidrl.config import require
from mpidrl.protocols import Context

DIAGNOSTICS = ("utility", "p_comm")


@cache
def _special():
    """scipy.special's (bdtrc, ndtr), imported on first use: the import costs about half a second, which
    every process of every run would otherwise pay, since the registry imports every algorithm."""
    from scipy.special import bdtrc, ndtr

    return bdtrc, ndtr


@dataclass(frozen=True)
class ESFixedParams(ESParams):
    """ES where each agent sends its return with the fixed probability m/n (the baseline of report 4.7)."""

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

    k: int = 5
    """horizon: the rolling mean and std of utility are over the agent's last k utilities (current included)"""
    binomial_tail: Literal["exact", "shifted", "all_agents"] = "exact"
    """p_comm from p: "exact" P[Bi(n-1, p) >= n-m] (E[p_comm] = m/n); "shifted" P[Bi(n-1, p) >= n-m+1]
    (E = (m-1)/n); "all_agents" P[Bi(n, p) >= n-m] (E = (m+1)/(n+1))"""
    zero_std: Literal["one", "silent"] = "one"
    """a window whose utilities have std 0 (the first round): "one" uses std 1 (z = 0), "silent" does not send"""

    def check(self, key: str) -> None:
        super().check(key)
        require(1 <= self.k <= 100_000, f"{key}.k", f"must be in [1, 100000], got {self.k}")


def utility(f: float, eps: np.ndarray) -> float:
    """u = F * ||eps||_2 (report 4.3)."""
    return float(f * np.linalg.norm(eps))


def standardize(u: float, window: np.ndarray) -> float:
    """z = (u - mean) / std over ``window`` (population std; 1 where it is 0)."""
    s = float(np.std(window))
    return (u - float(np.mean(window))) / (s if s > 0 else 1.0)


def binomial_tail(n: int, m: int, tail: str = "exact") -> tuple[int, int]:
    """(trials, successes needed) of p_comm = P[Bi(trials, p) >= needed] for a ``binomial_tail`` option."""
    if tail == "exact":
        return n - 1, n - m
    if tail == "shifted":
        return n - 1, n - m + 1
    if tail == "all_agents":
        return n, n - m
    raise ValueError(f"unknown binomial tail {tail!r}")


def comm_probability(p: float | np.ndarray, n: int, m: int, tail: str = "exact") -> float | np.ndarray:
    """p_comm = P[Bi(trials, p) >= needed] (:func:`binomial_tail`); "exact": ``binom.sf(n-m-1, n-1, p)``,
    1 when m = n."""
    trials, needed = binomial_tail(n, m, tail)
    if needed <= 0:
        return np.ones_like(p) if isinstance(p, np.ndarray) else 1.0
    bdtrc, _ = _special()
    return bdtrc(needed - 1, trials, p)


def expected_comm_fraction(n: int, m: int, tail: str = "exact") -> float:
    """E[p_comm] for p uniform on [0, 1] (z standard normal): m/n, (m-1)/n or (m+1)/(n+1) by ``tail``.

    Each binomial probability mass integrates to 1/(trials+1) over p, and the tail sums trials+1-needed
    of them.
    """
    trials, needed = binomial_tail(n, m, tail)
    return min(max(trials + 1 - needed, 0), trials + 1) / (trials + 1)


def stationary_comm_fraction(n: int, m: int, k: int, tail: str = "exact", zero_std: str = "one") -> float:
    """E[p_comm] when the agent's utilities are i.i.d. normal and the window holds k of them.

    The window includes the current utility, so z is not standard normal: z^2 / (k-1) ~ Beta(1/2, (k-2)/2)
    with a symmetric sign (the internally studentized residual), |z| <= sqrt(k-1). Only as k grows does
    this approach :func:`expected_comm_fraction`. k = 1 gives std 0 for ever: z = 0 (the first-round
    value) with ``zero_std = "one"``, no sends with "silent"; k = 2 gives z = +-1.
    """
    from scipy.integrate import quad
    from scipy.special import beta, ndtr

    def sym(z: float) -> float:
        return 0.5 * (comm_probability(ndtr(z), n, m, tail) + comm_probability(ndtr(-z), n, m, tail))

    if k == 1:
        return 0.0 if zero_std == "silent" else float(comm_probability(0.5, n, m, tail))
    if k == 2:
        return float(sym(1.0))
    # with t = |z| / sqrt(k-1) in [0, 1], t has density 2 (1-t)^a (1+t)^a / B(1/2, (k-2)/2), a = (k-4)/2
    a = (k - 4) / 2
    value, _ = quad(
        lambda t: sym(np.sqrt(k - 1) * t) * (1 + t) ** a, 0, 1, weight="alg", wvar=(0, a), epsabs=1e-13, epsrel=1e-12
    )
    return float(2 * value / beta(0.5, (k - 2) / 2))


def uniform_draw(ctx: Context, round: int, agent: int) -> float:
    """The agent's uniform number for its send decision in ``round``."""
    return float(rng.generator(ctx.seed, ctx.trial, rng.Stream.DECIDE, round, agent).random())


def uniform_draws(contexts: Sequence[Context], round: int, agents: Sequence[int]) -> np.ndarray:
    """:func:`uniform_draw` of every (agent, trial), agent-major."""
    return np.array([uniform_draw(ctx, round, agent) for agent in agents for ctx in contexts])


def utilities(f: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """:func:`utility` of every row."""
    return np.array([utility(value, row) for value, row in zip(f.tolist(), eps)])


class ESFixedWorker(ESWorker):
    """ES agents that each send with the fixed probability m/n."""

    def decide(
        self, round: int, agents: Sequence[int], f: np.ndarray, eps: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        p_comm = self.ctx.cfg.algo.m / self.ctx.n
        send = uniform_draws(self.contexts, round, agents) < p_comm
        return send, (utilities(f, eps), np.full(len(f), p_comm))


class ESPCWorker(ESWorker):
    """ES agents that send with probability p_comm computed from their rolling utility statistics."""

    def __init__(self, contexts: Sequence[Context], agents: Sequence[int]):
        super().__init__(contexts, agents)
        self.slot = {agent: j for j, agent in enumerate(self.agents)}
        size = len(self.agents) * len(self.contexts)
        self.history = np.zeros((size, self.ctx.cfg.algo.k))
        """each hosted (agent, trial)'s last k utilities, oldest first, right-aligned (agent-major rows)"""
        self.count = np.zeros(size, dtype=np.int64)
        """how many of them are filled (min(rounds so far, k))"""

    def remember(self, row: int, u: float) -> np.ndarray:
        """Append ``u`` to history row ``row``; return its window of at most k utilities."""
        history = self.history[row]
        history[:-1] = history[1:]
        history[-1] = u
        self.count[row] = min(self.count[row] + 1, history.size)
        return history[history.size - self.count[row] :]

    def decide(
        self, round: int, agents: Sequence[int], f: np.ndarray, eps: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        algo, n_trials = self.ctx.cfg.algo, len(self.contexts)
        u = utilities(f, eps)
        _, ndtr = _special()
        p_comm = np.empty(len(u))
        for j, (agent, b) in enumerate((a, b) for a in agents for b in range(n_trials)):
            window = self.remember(self.slot[agent] * n_trials + b, u[j])
            if algo.zero_std == "silent" and float(np.std(window)) == 0.0:
                p_comm[j] = 0.0
            else:
                z = standardize(u[j], window)
                p_comm[j] = float(comm_probability(float(ndtr(z)), self.ctx.n, algo.m, algo.binomial_tail))
        return uniform_draws(self.contexts, round, agents) < p_comm, (u, p_comm)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Utility histories: one row per hosted agent ([agents, k], or [agents, trials, k] with several)."""
        a, n_trials, k = len(self.agents), len(self.contexts), self.history.shape[1]
        shape = (a, k) if n_trials == 1 else (a, n_trials, k)
        return {
            **super().state_dict(),
            "espc/agents": np.array(self.agents, dtype=np.int64),
            "espc/utility_history": self.history.reshape(shape).copy(),
            "espc/utility_count": self.count.reshape(shape[:-1]).copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = {k: v for k, v in state.items() if k.startswith("espc/")}
        if list(own["espc/agents"]) != self.agents:
            raise ValueError(f"ESPC state is for agents {list(own['espc/agents'])}, this worker hosts {self.agents}")
        history = own["espc/utility_history"]
        if history.size != self.history.size or history.shape[-1] != self.history.shape[1]:
            shape = (len(self.agents), len(self.contexts), self.history.shape[1])
            raise ValueError(f"ESPC state has history shape {history.shape}, need {shape}")
        self.history = history.reshape(self.history.shape).copy()
        self.count = own["espc/utility_count"].reshape(-1).copy()
        super().load_state_dict({k: v for k, v in state.items() if not k.startswith("espc/")})
