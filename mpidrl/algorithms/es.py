"""Evolution Strategies (Salimans et al. 2017; report section 2.4.4).

Agent i in round t perturbs the broadcast parameters with eps_i drawn from the counter-based stream
(seed, trial, NOISE, t, i), runs its episode(s) and sends the scalar F_i, its mean discounted return
(one float64, 8 bytes). The learner regenerates eps_i for every agent whose F_i arrived (the set S) and
steps its optimizer on ``-g`` with ``g = 1/(|S| sigma) sum_{i in S} F_i eps_i``; with S empty there is no
update. Optional, off by default so the report's setting is reproduced: centered-rank fitness shaping
of the received returns, and antithetic pairs (agents 2j and 2j+1 use +eps_j and -eps_j).

Downlink (``[algo] downlink``): "params" broadcasts theta, d float64 (8 d bytes per agent). "returns"
broadcasts the (agent, F_i) pairs the learner received in the previous round instead, as one float64
array ``[a_0, F_0, a_1, F_1, ...]`` (16 |S| bytes; agent indices are exact in float64 below 2^53), and every
Worker replays the learner's update with the same code (:func:`es_step`: the gradient from regenerated
eps, the same optimizer), starting from the same theta_0 drawn from the INIT stream. Both directions then
carry O(n) scalars. Replicas stay bit-identical because every rank runs the same float64 operations in
the same order; to catch a divergence early (a different BLAS, a bug), the broadcast of every round that
is a multiple of ``check_every`` also carries an 8-byte hash of the learner's theta (the array then has
odd length), and a Worker whose replica hashes differently raises :class:`ReplicaMismatch`.

Subclasses change only :meth:`ESWorker.decide`, the agent's choice to send (ESPC and friends).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mpidrl import rng
from mpidrl.algorithms.optim import Optimizer
from mpidrl.config import AlgoParams, Config, ConfigError, require
from mpidrl.envs import EnvSpec
from mpidrl.envs.episodes import rollout
from mpidrl.envs.pool import EnvPool
from mpidrl.policies import make_policy
from mpidrl.protocols import BlockWorker, Context, Results, SyncLearner


@dataclass(frozen=True)
class ESParams(AlgoParams):
    """Evolution Strategies (Salimans et al. 2017; report 2.4.4): each agent sends one scalar return."""

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
        require(1 <= self.episodes <= 10_000, f"{key}.episodes", f"must be in [1, 10000], got {self.episodes}")
        require(self.check_every >= 1, f"{key}.check_every", f"must be >= 1, got {self.check_every}")


def mean(values: list[float]) -> float:
    """np.mean of a list of floats (a single value is returned as it is, without numpy's overhead)."""
    return values[0] if len(values) == 1 else float(np.mean(values))


def perturbation(ctx: Context, round: int, agent: int, size: int) -> np.ndarray:
    """eps for ``agent`` in ``round``: N(0, I_size) from the agent's NOISE stream (antithetic aware)."""
    if ctx.cfg.algo.antithetic:
        pair, sign = divmod(agent, 2)
        eps = rng.standard_normal(ctx.seed, ctx.trial, rng.Stream.NOISE, round, pair, size)
        return -eps if sign else eps
    return rng.standard_normal(ctx.seed, ctx.trial, rng.Stream.NOISE, round, agent, size)


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` mapped linearly onto [-0.5, 0.5] (ties broken by position)."""
    if values.size < 2:
        return np.zeros_like(values)
    ranks = np.empty(values.size)
    ranks[np.argsort(values, kind="stable")] = np.arange(values.size)
    return ranks / (values.size - 1) - 0.5


def es_gradient(ctx: Context, round: int, agents: Sequence[int], returns: np.ndarray, size: int) -> np.ndarray:
    """g = 1/(|S| sigma) sum_i F_i eps_i over the agents that reported, summed in agent order."""
    sigma = ctx.cfg.algo.sigma
    if ctx.cfg.algo.fitness_shaping == "centered_rank":
        returns = centered_ranks(returns)
    # The same sum as adding f * perturbation(...) agent by agent, in two reused buffers, drawing an
    # antithetic pair's noise once: f * (-eps) and (-f) * eps round to the same number.
    g, eps, term = np.zeros(size), np.empty(size), np.empty(size)
    drawn = None
    for agent, f in zip(agents, returns):
        key, sign = divmod(agent, 2) if ctx.cfg.algo.antithetic else (agent, 0)
        if key != drawn:
            rng.standard_normal(ctx.seed, ctx.trial, rng.Stream.NOISE, round, key, size, out=eps)
            drawn = key
        np.multiply(eps, -f if sign else f, out=term)
        g += term
    return g / (len(agents) * sigma)


def initial_params(ctx: Context, policy: Any) -> np.ndarray:
    """theta_0 of a trial, from the learner's INIT stream."""
    return policy.init(rng.generator(ctx.seed, ctx.trial, rng.Stream.INIT, 0, rng.LEARNER))


def es_step(
    ctx: Context, optimizer: Optimizer, theta: np.ndarray, round: int, agents: Sequence[int], returns: np.ndarray
) -> np.ndarray:
    """theta after the ES update from ``returns`` of ``agents`` in ``round``; unchanged if none arrived.

    The learner and, with the "returns" downlink, every Worker's replica call exactly this.
    """
    if len(agents) == 0:
        return theta
    g = es_gradient(ctx, round, agents, returns, theta.size)
    return optimizer.step(theta, -g)


class ReplicaMismatch(RuntimeError):
    """A Worker's replayed theta differs from the learner's (downlink "returns")."""


def theta_hash(theta: np.ndarray) -> np.ndarray:
    """An 8-byte digest of theta's exact bits, as one float64 (only its bits matter)."""
    digest = hashlib.blake2b(np.ascontiguousarray(theta, np.float64).tobytes(), digest_size=8).digest()
    return np.frombuffer(digest, dtype=np.float64)


def encode_returns(agents: Sequence[int], returns: np.ndarray, check: np.ndarray | None) -> np.ndarray:
    """The "returns" downlink: ``[a_0, F_0, a_1, F_1, ...]``, then the theta hash if ``check`` is given."""
    pairs = np.empty(2 * len(agents) + (0 if check is None else 1))
    pairs[0 : 2 * len(agents) : 2] = agents
    pairs[1 : 2 * len(agents) : 2] = returns
    if check is not None:
        pairs[-1:] = check
    return pairs


def decode_returns(payload: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray | None]:
    """Inverse of :func:`encode_returns`: agents, returns and the hash (None if absent)."""
    check = payload[-1:] if payload.size % 2 else None
    pairs = payload[: payload.size - payload.size % 2]
    return [int(a) for a in pairs[0::2]], pairs[1::2].copy(), check


class ESLearner(SyncLearner):
    """Holds theta and the optimizer; broadcasts theta, or the last round's returns (downlink "returns")."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.policy = make_policy(ctx.cfg.policy, ctx.env_spec)
        self.theta = initial_params(ctx, self.policy)
        self.optimizer = Optimizer(ctx.cfg.optim, self.policy.size)
        self.replicated = ctx.cfg.algo.downlink == "returns"
        self.downlink_kind = "returns" if self.replicated else "params"
        self.next_round = 0
        """the round the next broadcast starts"""
        self.last_agents: list[int] = []
        """agents whose returns arrived in the last round (rebroadcast with downlink "returns")"""
        self.last_returns = np.empty(0)
        """their returns"""

    def downlink(self) -> np.ndarray:
        if not self.replicated:
            return self.theta
        due = self.next_round % self.ctx.cfg.algo.check_every == 0
        return encode_returns(self.last_agents, self.last_returns, theta_hash(self.theta) if due else None)

    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        self.last_agents = [agent for agent, _ in messages]
        self.last_returns = np.array([float(msg[0]) for _, msg in messages])
        self.theta = es_step(self.ctx, self.optimizer, self.theta, round, self.last_agents, self.last_returns)
        self.next_round = round + 1

    def actor(self) -> Callable[[np.ndarray], Any]:
        return self.policy.actor(self.theta)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "theta": self.theta.copy(),
            "next_round": np.array(self.next_round),
            "last_agents": np.array(self.last_agents, dtype=np.int64),
            "last_returns": self.last_returns.copy(),
            **{f"optim/{k}": v for k, v in self.optimizer.state_dict().items()},
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.theta = state["theta"].copy()
        self.next_round = int(state["next_round"])
        self.last_agents = [int(a) for a in state["last_agents"]]
        self.last_returns = state["last_returns"].copy()
        self.optimizer.load_state_dict({k.split("/", 1)[1]: v for k, v in state.items() if k.startswith("optim/")})


class ESWorker(BlockWorker):
    """Runs the perturbed episode(s) of a batch of agents in every trial at once; each sends F_i when
    :meth:`decide` says so."""

    in_parts = True

    def __init__(self, contexts: Sequence[Context], agents: Sequence[int]):
        super().__init__(contexts, agents)
        ctx = self.ctx
        self.policy = make_policy(ctx.cfg.policy, ctx.env_spec)
        self.envs = EnvPool(ctx.cfg.env, self.agents, len(self.contexts))
        self.replicated = ctx.cfg.algo.downlink == "returns"  # one trial (see check)
        self.theta = initial_params(ctx, self.policy) if self.replicated else np.zeros(self.policy.size)
        self.thetas = self.theta[None]
        """[T, d]: each trial's broadcast theta"""
        self.optimizer = Optimizer(ctx.cfg.optim, self.policy.size) if self.replicated else None
        self.next_round = 0
        """the round the next broadcast starts (the replica has applied every update before it)"""

    def receive(self, payloads: Sequence[np.ndarray]) -> None:
        if not self.replicated:
            self.thetas = np.stack(payloads)
        else:
            agents, returns, check = decode_returns(payloads[0])
            if agents:
                self.theta = es_step(self.ctx, self.optimizer, self.theta, self.next_round - 1, agents, returns)
            if check is not None and theta_hash(self.theta).tobytes() != check.tobytes():
                raise ReplicaMismatch(
                    f"downlink=returns: agents {self.agents[0]}-{self.agents[-1]} replayed a theta that differs "
                    f"from the learner's before round {self.next_round} (trial {self.ctx.trial})"
                )
            self.thetas = self.theta[None]
        self.next_round += 1

    def state_dict(self) -> dict[str, np.ndarray]:
        """The replica of theta and the optimizer ("shared/": the same on every rank) in "returns" mode."""
        if not self.replicated:
            return {}
        return {
            "shared/theta": self.theta.copy(),
            "shared/next_round": np.array(self.next_round),
            **{f"shared/optim/{k}": v for k, v in self.optimizer.state_dict().items()},
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        shared = {k.removeprefix("shared/"): v for k, v in state.items() if k.startswith("shared/")}
        if not self.replicated:
            super().load_state_dict(shared)
            return
        self.theta = shared["theta"].copy()
        self.thetas = self.theta[None]
        self.next_round = int(shared["next_round"])
        self.optimizer.load_state_dict({k.split("/", 1)[1]: v for k, v in shared.items() if k.startswith("optim/")})

    def act(self, round: int, agents: Sequence[int]) -> Results:
        cfg, n_trials = self.ctx.cfg, len(self.contexts)
        eps = perturbations(self.contexts, round, agents, self.policy.size)
        # theta + sigma * eps of every (agent, trial), agent-major: the same operations as for one agent
        thetas = self.thetas[np.tile(np.arange(n_trials), len(agents))] + cfg.algo.sigma * eps
        batch = self.envs.batch(agents)
        policy = self.policy.batch_actor(thetas)
        pairs = [(ctx.trial, agent) for agent in agents for ctx in self.contexts]
        runs = [
            rollout(batch, policy, cfg.env.gamma, [rng.reset_seed(cfg.run.seed, t, round, a, e) for t, a in pairs])
            for e in range(cfg.algo.episodes)
        ]
        f, ret = means([r.discounted for r in runs]), means([r.undiscounted for r in runs])
        send, diagnostics = self.decide(round, agents, f, eps)
        messages = [np.array([value]) if s else None for value, s in zip(f.tolist(), send.tolist())]
        steps = np.sum([r.steps for r in runs], axis=0)
        return Results(messages, f, ret, len(runs), steps, diagnostics)

    def decide(
        self, round: int, agents: Sequence[int], f: np.ndarray, eps: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Whether each (agent, trial) sends its return F this round (agent-major, as ``f`` and the rows of
        ``eps``), and its diagnostics. Plain ES always sends."""
        return np.ones(len(f), dtype=bool), ()


def means(values: list[np.ndarray]) -> np.ndarray:
    """Each sub-environment's mean over episodes (``values``: one array per episode), as :func:`mean`
    computes it for one agent."""
    if len(values) == 1:
        return values[0]
    rows = np.stack(values, axis=1)
    return np.array([mean(row.tolist()) for row in rows])


def perturbations(contexts: Sequence[Context], round: int, agents: Sequence[int], size: int) -> np.ndarray:
    """[A * T, size]: :func:`perturbation` of every (agent, trial), agent-major."""
    eps = np.empty((len(agents) * len(contexts), size))
    for i, agent in enumerate(agents):
        for b, ctx in enumerate(contexts):
            eps[i * len(contexts) + b] = perturbation(ctx, round, agent, size)
    return eps


def check(cfg: Config, env_spec: EnvSpec) -> None:
    """Refuse what the ES family cannot run: the "returns" downlink with trials run together."""
    if cfg.run.trial_batch > 1 and cfg.algo.downlink == "returns":
        raise ConfigError('run.trial_batch: trials run together need algo.downlink = "params"; use 1')
