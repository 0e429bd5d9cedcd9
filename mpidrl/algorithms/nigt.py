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
the agents finished (decided in :mod:`mpidrl.comm.aggregate`), each agent contributes one row
(sum_i, m_i) and a single Allreduce sums the rows; :func:`mpidrl.comm.aggregate.combine` then forms:

- nigt-sync: every agent computes ceil(M / n) gradients; g = sum_i sum_i / sum_j m_j.
- rennala-nigt: stop when sum_i m_i = M (from any agents); g = (1/M) sum_i sum_i.
- malenia-nigt: stop when every m_i >= 1 and the harmonic mean (1/n sum_i 1/m_i)^-1 >= M / n;
  g = (1/n) sum_i sum_i / m_i, so every agent weighs 1/n whatever its speed.

Every rank holds a replica of the NIGT state and applies the Allreduced gradient itself, so no
parameters are broadcast: that is what makes these methods Allreduce-friendly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from mpidrl import rng
from mpidrl.algorithms.base import AgentResult, AlgorithmSpec, Context, Learner
from mpidrl.algorithms.pg import discounted_return, gpomdp, policy_size, sample_trajectory
from mpidrl.envs import make_env, observation_encoder
from mpidrl.policies import make_stochastic_policy


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
        self.d = g.copy() if self.t == 0 else (1.0 - self.eta) * self.d + self.eta * g
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


def stop_rule(ctx: Context, round: int) -> Callable[[np.ndarray], bool]:
    """The round's stopping rule on the per-agent counts (all agents, agent order)."""
    m, name = round_m(ctx, round), ctx.cfg.algo.name
    if name == "malenia-nigt":
        return lambda counts: malenia_done(counts, m)
    if name == "rennala-nigt":
        return lambda counts: rennala_done(counts, m)
    q = sync_quota(ctx, round)
    return lambda counts: bool(np.all(counts >= q))


def initial_theta(ctx: Context, policy) -> np.ndarray:
    return policy.init(rng.generator(ctx.seed, ctx.trial, rng.Stream.INIT, 0, rng.LEARNER))


class AgentSampler:
    """The trajectories and GPOMDP gradients of a block of agents, keyed by (round, agent, k)."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        self.ctx = ctx
        self.agents = list(agents)
        self.policy = make_stochastic_policy(ctx.cfg.policy, ctx.spec)
        self.envs = {a: make_env(ctx.cfg.env, a) for a in self.agents}
        self.encode = observation_encoder(ctx.spec)
        self.gens: dict[int, np.random.Generator] = {}

    def start(self, round: int) -> None:
        """Fresh action generators: agent a's k-th gradient of the round always sees the same draws."""
        self.gens = {a: rng.generator(self.ctx.seed, self.ctx.trial, rng.Stream.EXPLORE, round, a) for a in self.agents}

    def gradient(self, theta: np.ndarray, round: int, agent: int, k: int) -> tuple[np.ndarray, float, float, int]:
        """(gradient, discounted return, return, steps) of agent's k-th trajectory of the round."""
        cfg = self.ctx.cfg
        seed = rng.reset_seed(cfg.run.seed, self.ctx.trial, round, agent, k)
        traj = sample_trajectory(self.envs[agent], self.policy, theta, self.encode, cfg.algo.H, seed, self.gens[agent])
        g = gpomdp(self.policy, theta, traj, cfg.env.gamma)
        return g, discounted_return(traj.rewards, cfg.env.gamma), float(traj.rewards.sum()), traj.steps


class NIGTLearner(Learner):
    """Rank 0's replica of the NIGT state; ``update`` takes the round's Allreduced gradient."""

    def __init__(self, ctx: Context):
        self.policy = make_stochastic_policy(ctx.cfg.policy, ctx.spec)
        self.nigt = NIGT(initial_theta(ctx, self.policy), ctx.cfg.algo.eta, ctx.cfg.algo.alpha)

    def downlink(self) -> np.ndarray:
        return self.nigt.theta

    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        for _, g in messages:
            self.nigt.step(g)

    def actor(self):
        return self.policy.actor(self.nigt.theta)

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.nigt.state_dict()

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.nigt.load_state_dict(state)


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


class NIGTWorker:
    """A block of agents: samples and keeps gradients at the query point, then takes the NIGT step.

    Not a synchronous :class:`~mpidrl.algorithms.base.Worker`: it has no broadcast to receive, since
    every rank applies the Allreduced gradient to its own replica of the NIGT state.
    """

    def __init__(self, ctx: Context, agents: Sequence[int]):
        self.ctx, self.agents = ctx, list(agents)
        self.sampler = AgentSampler(ctx, agents)
        self.nigt = NIGT(initial_theta(ctx, self.sampler.policy), ctx.cfg.algo.eta, ctx.cfg.algo.alpha)
        self.size = self.sampler.policy.size
        self.round, self.point = 0, self.nigt.theta
        self.grads: dict[int, list[np.ndarray]] = {}
        self.returns: dict[int, list[tuple[float, float, int]]] = {}

    def begin(self, round: int) -> None:
        """Start a round at the NIGT query point."""
        self.round, self.point = round, self.nigt.query()
        self.sampler.start(round)
        self.grads = {a: [] for a in self.agents}
        self.returns = {a: [] for a in self.agents}

    def compute(self, agent: int) -> None:
        """One more gradient of ``agent`` (its k-th of the round)."""
        g, disc, ret, steps = self.sampler.gradient(self.point, self.round, agent, len(self.grads[agent]))
        self.grads[agent].append(g)
        self.returns[agent].append((disc, ret, steps))

    def apply(self, g: np.ndarray) -> None:
        """The NIGT step with the round's aggregated gradient."""
        self.nigt.step(g)

    def result(self, agent: int, accepted: int) -> AgentResult:
        """The agent's round metrics: mean returns of its accepted trajectories, all steps it took."""
        return round_result(self.returns[agent], accepted)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The NIGT replica, the same on every rank ("shared/" keys are kept once in a checkpoint)."""
        return {f"shared/{k}": v for k, v in self.nigt.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.nigt.load_state_dict({k.removeprefix("shared/"): v for k, v in state.items()})


def _spec(name: str) -> AlgorithmSpec:
    return AlgorithmSpec(
        name=name,
        learner=NIGTLearner,
        worker=NIGTWorker,
        uplink_dtype=np.dtype(np.float64),
        downlink_dtype=np.dtype(np.float64),
        uplink_kind="gradient_sum",
        downlink_kind="gradient_sum",
        diagnostics=("gradients",),
        protocol="aggregate",
        policy_size=policy_size,
    )


SPECS = tuple(_spec(name) for name in ("nigt-sync", "rennala-nigt", "malenia-nigt"))
