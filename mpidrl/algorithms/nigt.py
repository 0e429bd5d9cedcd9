"""NIGT policy gradient with synchronous, Rennala and Malenia aggregation (seed 001), without MPI.

The NIGT outer loop (:class:`NIGT`)::

    theta_prev = theta_0;  d = Aggregate(theta_0, M_init);  theta = theta_0 + alpha d / ||d||
    for t = 1 ..:
        theta_tilde = theta + ((1 - eta) / eta) (theta - theta_prev)      # extrapolation
        g = Aggregate(theta_tilde, M)
        d = (1 - eta) d + eta g                                          # momentum
        theta_prev, theta = theta, theta + alpha d / ||d||               # normalised ascent step

One round is one Aggregate. Every agent samples trajectories at the round's query point theta_tilde
and keeps each GPOMDP gradient; when the round's stopping rule holds on the counts m_i of gradients
the agents finished (decided by :class:`mpidrl.protocols.AggregateRounds`), each agent contributes one
row (sum_i, m_i) and a single Allreduce sums the rows; the worker's :meth:`~NIGTWorker.combine` then
forms, by variant (each a worker class with its own rule):

- synchronous (:class:`SyncNIGTWorker`): every agent computes ceil(M / n) gradients;
  g = sum_i sum_i / sum_j m_j.
- Rennala (:class:`RennalaWorker`): stop when sum_i m_i = M (from any agents); g = (1/M) sum_i sum_i.
- Malenia (:class:`MaleniaWorker`): stop when every m_i >= 1 and the harmonic mean
  (1/n sum_i 1/m_i)^-1 >= M / n; g = (1/n) sum_i sum_i / m_i, so every agent weighs 1/n whatever its speed.

Every rank holds a replica of the NIGT state and applies the Allreduced gradient itself, so no
parameters are broadcast: that is what makes these methods Allreduce-friendly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mpidrl import rng
from mpidrl.algorithms.pg import discounted_return, gpomdp, sample_trajectories
from mpidrl.config import AlgoParams, require
from mpidrl.envs import batch_encoder
from mpidrl.envs.pool import EnvPool
from mpidrl.policies import make_stochastic_policy
from mpidrl.protocols import AgentResult, AggregateLearner, AggregateWorker, Context, LearnerBase


@dataclass(frozen=True)
class NIGTParams(AlgoParams):
    """NIGT policy gradient (seed 001): extrapolation, momentum and a normalised ascent step.

    The synchronous, Rennala and Malenia variants and AFedPG share these parameters; they differ in how
    the gradients of a round are gathered.
    """

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
        require(1 <= self.M <= 10**7, f"{key}.M", f"must be in [1, 10^7], got {self.M}")
        require(1 <= self.M_init <= 10**7, f"{key}.M_init", f"must be in [1, 10^7], got {self.M_init}")
        require(self.H >= 1, f"{key}.H", f"must be >= 1, got {self.H}")


@dataclass(frozen=True)
class NIGTAggregateParams(NIGTParams):
    """NIGT with asynchronous aggregation (Rennala, Malenia): the round's gradients reach the learner either
    as one Allreduce of each agent's sum or one message per gradient."""

    communication: Literal["allreduce", "per-gradient"] = "allreduce"
    """"allreduce": each agent adds its gradients up and one Allreduce of the sums ends the round (the
    paper's method); "per-gradient": each gradient goes to the learner as soon as it is computed, the
    learner sums the first ones the rule accepts and broadcasts the result (to measure what the batching
    saves)"""


def momentum(d: np.ndarray, g: np.ndarray, t: int, eta: float) -> np.ndarray:
    """NIGT's d = (1 - eta) d + eta g after t steps; g itself before the first."""
    return g.copy() if t == 0 else (1.0 - eta) * d + eta * g


class NIGT:
    """The NIGT state (theta, theta_prev, d, t) and its update; ascent on the return."""

    def __init__(self, theta: np.ndarray, eta: float, alpha: float):
        self.eta, self.alpha = eta, alpha
        self.theta = theta.copy()
        self.theta_prev = theta.copy()
        self.d = np.zeros_like(theta)
        self.t = 0

    def query(self) -> np.ndarray:
        """The point where the next gradients are taken: theta_0 first, then the extrapolation."""
        if self.t == 0:
            return self.theta.copy()
        return self.theta + (1.0 - self.eta) / self.eta * (self.theta - self.theta_prev)

    def step(self, g: np.ndarray) -> None:
        """Momentum on ``g`` and the normalised step (no move when d = 0)."""
        self.move(momentum(self.d, g, self.t, self.eta))

    def move(self, d: np.ndarray) -> None:
        """The normalised step theta += alpha d / ||d|| along a direction formed elsewhere; d is kept."""
        self.d = d
        norm = float(np.linalg.norm(self.d))
        self.theta_prev = self.theta
        self.theta = self.theta + (self.alpha / norm) * self.d if norm > 0 else self.theta.copy()
        self.t += 1

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "theta": self.theta.copy(),
            "theta_prev": self.theta_prev.copy(),
            "d": self.d.copy(),
            "t": np.array(self.t),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.theta, self.theta_prev = state["theta"].copy(), state["theta_prev"].copy()
        self.d, self.t = state["d"].copy(), int(state["t"])


def round_m(ctx: Context, round: int) -> int:
    """M of a round: M_init in the first round, M afterwards."""
    return ctx.cfg.algo.M_init if round == 0 else ctx.cfg.algo.M


def sync_quota(ctx: Context, round: int) -> int:
    """Gradients per agent in a synchronous round: ceil(M / n)."""
    return math.ceil(round_m(ctx, round) / ctx.n)


def rennala_done(counts: np.ndarray, m: int) -> bool:
    """Rennala's rule: M gradients exist, from any agents."""
    return int(counts.sum()) >= m


def malenia_done(counts: np.ndarray, m: int) -> bool:
    """Malenia's rule: every agent has one gradient and the harmonic mean of the counts is >= M / n."""
    if np.any(counts < 1):
        return False
    n = counts.size
    return n / float(np.sum(1.0 / counts)) >= m / n


def initial_theta(ctx: Context, policy) -> np.ndarray:
    return policy.init(rng.generator(ctx.seed, ctx.trial, rng.Stream.INIT, 0, rng.LEARNER))


class AgentSampler:
    """The trajectories and GPOMDP gradients of a block of agents, keyed by (round, agent, k), computed
    for many agents at once (one batch of environments, one forward pass a step)."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        self.ctx = ctx
        self.agents = list(agents)
        self.policy = make_stochastic_policy(ctx.cfg.policy, ctx.env_spec)
        self.pool = EnvPool(ctx.cfg.env, self.agents)
        self.encode = batch_encoder(ctx.env_spec)
        self.gens: dict[int, np.random.Generator] = {}

    def start(self, round: int) -> None:
        """Fresh action generators: agent a's k-th gradient of the round always sees the same draws."""
        self.gens = {a: rng.generator(self.ctx.seed, self.ctx.trial, rng.Stream.EXPLORE, round, a) for a in self.agents}

    def gradients(
        self, thetas: np.ndarray, round: int, jobs: Sequence[tuple[int, int]]
    ) -> list[tuple[np.ndarray, float, float, int]]:
        """(gradient, discounted return, return, steps) of each job (agent, k): the agent's k-th trajectory
        of the round at ``thetas`` (one parameter vector for all, or one row per job). An agent appears at
        most once (its trajectories of a round follow one another in its generator), and after its
        trajectories 0 .. k - 1."""
        cfg = self.ctx.cfg
        agents = [a for a, _ in jobs]
        assert len(set(agents)) == len(agents), "one trajectory per agent at a time"
        if thetas.ndim == 1:
            thetas = np.broadcast_to(thetas, (len(jobs), thetas.size))
        seeds = [rng.reset_seed(cfg.run.seed, self.ctx.trial, round, a, k) for a, k in jobs]
        trajs = sample_trajectories(
            self.pool.batch(agents), self.policy, thetas, [self.gens[a] for a in agents], self.encode, cfg.algo.H, seeds
        )
        gamma = cfg.env.gamma
        return [
            (
                gpomdp(self.policy, theta, traj, gamma),
                discounted_return(traj.rewards, gamma),
                float(traj.rewards.sum()),
                traj.steps,
            )
            for theta, traj in zip(thetas, trajs)
        ]


class NIGTState(LearnerBase):
    """A learner holding the NIGT state of a trial, from theta_0; it evaluates the current theta."""

    def __init__(self, ctx: Context):
        self.policy = make_stochastic_policy(ctx.cfg.policy, ctx.env_spec)
        self.nigt = NIGT(initial_theta(ctx, self.policy), ctx.cfg.algo.eta, ctx.cfg.algo.alpha)

    def actor(self):
        return self.policy.actor(self.nigt.theta)

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.nigt.state_dict()

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.nigt.load_state_dict(state)


class NIGTLearner(NIGTState, AggregateLearner):
    """Rank 0's replica of the NIGT state; :meth:`apply` takes the round's Allreduced gradient."""

    def apply(self, g: np.ndarray) -> None:
        self.nigt.step(g)


def round_result(done: list[tuple[float, float, int]], accepted: int) -> AgentResult:
    """Round metrics of an agent that sampled ``done`` = [(discounted, undiscounted, steps), ...]: mean
    returns of the first ``accepted`` trajectories (the ones the aggregate used), every step it took."""
    kept = done[:accepted]
    return AgentResult(
        message=None,
        reward=float(np.mean([r[0] for r in kept])) if kept else math.nan,
        ret=float(np.mean([r[1] for r in kept])) if kept else math.nan,
        episodes=len(done),
        steps=sum(r[2] for r in done),
    )


class NIGTWorker(AggregateWorker):
    """A block of agents: samples and keeps gradients at the query point, then takes the NIGT step.

    Every rank applies the Allreduced gradient to its own replica of the NIGT state, so no parameters
    are broadcast. The variants below give the round's rule.
    """

    def __init__(self, ctx: Context, agents: Sequence[int]):
        super().__init__(agents)
        self.ctx = ctx
        self.sampler = AgentSampler(ctx, agents)
        self.nigt = NIGT(initial_theta(ctx, self.sampler.policy), ctx.cfg.algo.eta, ctx.cfg.algo.alpha)
        self.round, self.point = 0, self.nigt.theta
        self.grads: dict[int, list[np.ndarray]] = {}
        self.returns: dict[int, list[tuple[float, float, int]]] = {}

    @property
    def size(self) -> int:
        return self.sampler.policy.size

    def begin(self, round: int) -> None:
        """Start a round at the NIGT query point."""
        self.round, self.point = round, self.nigt.query()
        self.sampler.start(round)
        self.grads = {a: [] for a in self.agents}
        self.returns = {a: [] for a in self.agents}

    def compute(self, agent: int) -> None:
        self.compute_many([agent])

    def compute_many(self, agents: Sequence[int]) -> None:
        """The next gradient of each of ``agents`` at the query point, their trajectories as one batch."""
        jobs = [(a, len(self.grads[a])) for a in agents]
        for a, (g, disc, ret, steps) in zip(agents, self.sampler.gradients(self.point, self.round, jobs)):
            self.grads[a].append(g)
            self.returns[a].append((disc, ret, steps))

    def gradient(self, agent: int, k: int) -> np.ndarray:
        return self.grads[agent][k]

    @property
    def per_gradient(self) -> bool:
        """Whether each gradient goes to the learner alone (``algo.communication``)."""
        return self.ctx.cfg.algo.communication == "per-gradient"

    def apply(self, g: np.ndarray) -> None:
        """The NIGT step with the round's aggregated gradient."""
        self.nigt.step(g)

    def result(self, agent: int, accepted: int) -> AgentResult:
        """The agent's round metrics: mean returns of its accepted trajectories, all steps it took."""
        return round_result(self.returns[agent], accepted)

    def quota(self, round: int) -> int | None:
        return None

    def combine(self, rows: np.ndarray) -> np.ndarray:
        """sum_i sum_i / sum_i m_i: every gradient weighs the same."""
        sums, counts = rows[:, :-1], rows[:, -1]
        g = np.zeros(sums.shape[1])
        for i in range(len(counts)):
            g += sums[i]
        return g / max(counts.sum(), 1.0)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The NIGT replica, the same on every rank ("shared/" keys are kept once in a checkpoint)."""
        return {f"shared/{k}": v for k, v in self.nigt.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.nigt.load_state_dict({k.removeprefix("shared/"): v for k, v in state.items()})


class RennalaWorker(NIGTWorker):
    """Rennala: the first M gradients of the round, from any agents."""

    def done(self, counts: np.ndarray, round: int) -> bool:
        return rennala_done(counts, round_m(self.ctx, round))


class SyncNIGTWorker(NIGTWorker):
    """Synchronous NIGT: every agent computes ceil(M / n) gradients, without control messages."""

    per_gradient = False

    def quota(self, round: int) -> int | None:
        return sync_quota(self.ctx, round)

    def done(self, counts: np.ndarray, round: int) -> bool:
        return bool(np.all(counts >= sync_quota(self.ctx, round)))


class MaleniaWorker(NIGTWorker):
    """Malenia: every agent contributes, and each weighs 1/n whatever its speed."""

    def done(self, counts: np.ndarray, round: int) -> bool:
        return malenia_done(counts, round_m(self.ctx, round))

    def combine(self, rows: np.ndarray) -> np.ndarray:
        """(1/n) sum_i sum_i / m_i."""
        sums, counts = rows[:, :-1], rows[:, -1]
        g = np.zeros(sums.shape[1])
        for i in range(len(counts)):
            if counts[i] > 0:
                g += sums[i] / counts[i]
        return g / len(counts)
