"""Evolution Strategies (Salimans et al. 2017; report section 2.4.4).

Agent i in round t perturbs the broadcast parameters with eps_i drawn from the counter-based stream
(seed, trial, NOISE, t, i), runs its episode(s) and sends the scalar F_i, its mean discounted return
(one float64, 8 bytes). The learner regenerates eps_i for every agent whose F_i arrived (the set S) and
steps its optimizer on ``-g`` with ``g = 1/(|S| sigma) sum_{i in S} F_i eps_i``; with S empty there is no
update. Optional, off by default so the report's setting is reproduced: centered-rank fitness shaping
of the received returns, and antithetic pairs (agents 2j and 2j+1 use +eps_j and -eps_j).

Subclasses change only :meth:`ESWorker.decide`, the agent's choice to send (ESPC and friends).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mpidrl import rng
from mpidrl.algorithms.base import AgentResult, AlgorithmSpec, Context, Learner, Worker
from mpidrl.algorithms.optim import Optimizer
from mpidrl.envs import make_env, observation_encoder, rollout
from mpidrl.policies import make_policy


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


class ESLearner(Learner):
    """Holds theta and the optimizer; broadcasts theta each round."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.policy = make_policy(ctx.cfg.policy, ctx.spec)
        self.theta = initial_params(ctx, self.policy)
        self.optimizer = Optimizer(ctx.cfg.optim, self.policy.size)

    def downlink(self) -> np.ndarray:
        return self.theta

    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        if not messages:
            return
        agents = [agent for agent, _ in messages]
        returns = np.array([float(msg[0]) for _, msg in messages])
        g = es_gradient(self.ctx, round, agents, returns, self.policy.size)
        self.theta = self.optimizer.step(self.theta, -g)

    def actor(self) -> Callable[[np.ndarray], Any]:
        return self.policy.actor(self.theta)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"theta": self.theta.copy(), **{f"optim/{k}": v for k, v in self.optimizer.state_dict().items()}}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.theta = state["theta"].copy()
        self.optimizer.load_state_dict({k.split("/", 1)[1]: v for k, v in state.items() if k.startswith("optim/")})


class ESWorker(Worker):
    """Runs each hosted agent's perturbed episode(s) and sends F_i when :meth:`decide` says so."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        super().__init__(ctx, agents)
        self.policy = make_policy(ctx.cfg.policy, ctx.spec)
        self.envs = {agent: make_env(ctx.cfg.env, agent) for agent in self.agents}
        self.encode = observation_encoder(ctx.spec)
        self.theta = np.zeros(self.policy.size)

    def receive(self, payload: np.ndarray) -> None:
        self.theta = payload

    def act(self, round: int, agent: int) -> AgentResult:
        cfg = self.ctx.cfg
        eps = perturbation(self.ctx, round, agent, self.policy.size)
        actor = self.policy.actor(self.theta + cfg.algo.sigma * eps)
        episodes = [
            rollout(
                self.envs[agent],
                actor,
                self.encode,
                cfg.env.gamma,
                rng.reset_seed(cfg.run.seed, self.ctx.trial, round, agent, e),
            )
            for e in range(cfg.algo.episodes)
        ]
        f = float(np.mean([ep.discounted for ep in episodes]))
        send, diagnostics = self.decide(round, agent, f, eps)
        return AgentResult(
            message=np.array([f]) if send else None,
            reward=f,
            ret=float(np.mean([ep.undiscounted for ep in episodes])),
            episodes=len(episodes),
            steps=sum(ep.steps for ep in episodes),
            diagnostics=diagnostics,
        )

    def decide(self, round: int, agent: int, f: float, eps: np.ndarray) -> tuple[bool, tuple[float, ...]]:
        """Whether ``agent`` sends its return this round, and its diagnostics. Plain ES always sends."""
        return True, ()


SPEC = AlgorithmSpec(
    name="es",
    learner=ESLearner,
    worker=ESWorker,
    uplink_dtype=np.dtype(np.float64),
    downlink_dtype=np.dtype(np.float64),
    uplink_kind="return",
    downlink_kind="params",
)
