"""AFedPG (asynchronous federated policy gradient; reconstructed), without MPI.

The learner updates on every single arriving gradient with the NIGT step (momentum and normalised
ascent) and replies to that agent with its current state (t, theta, d). The agent computes its next
gradient at the lookahead point of the state it holds, locally::

    theta_prev = theta - alpha d / ||d||        (the step that produced theta)
    theta_tilde = theta + ((1 - eta) / eta) (theta - theta_prev)

so one gradient costs one round trip. Gradients are stale by the updates that happened while the agent
computed. A round of the run file is M learner updates; at a round's end, gradients in flight are
dropped and every agent restarts from the learner's state (broadcast), as the aggregation rounds do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpidrl.algorithms.base import AgentResult, AlgorithmSpec, Context
from mpidrl.algorithms.nigt import NIGT, AgentSampler, NIGTLearner, initial_theta, round_result
from mpidrl.algorithms.pg import policy_size


def pack_state(nigt: NIGT) -> np.ndarray:
    """The learner's reply: [t, theta, d]."""
    return np.concatenate([[float(nigt.t)], nigt.theta, nigt.d])


def lookahead(state: np.ndarray, eta: float, alpha: float) -> np.ndarray:
    """The agent's query point from a reply [t, theta, d]."""
    size = (state.size - 1) // 2
    t, theta, d = int(state[0]), state[1 : 1 + size], state[1 + size :]
    norm = float(np.linalg.norm(d))
    if t == 0 or norm == 0:
        return theta.copy()
    return theta + (1.0 - eta) / eta * (alpha / norm) * d


class AFedPGLearner(NIGTLearner):
    """The learner: one NIGT step per arriving gradient."""

    def reply(self) -> np.ndarray:
        return pack_state(self.nigt)

    def downlink(self) -> np.ndarray:
        return pack_state(self.nigt)


class AFedPGWorker:
    """A block of agents, each holding the last state the learner sent it."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        self.ctx, self.agents = ctx, list(agents)
        self.sampler = AgentSampler(ctx, agents)
        self.size = self.sampler.policy.size
        theta0 = initial_theta(ctx, self.sampler.policy)
        self.state = {a: pack_state(NIGT(theta0, ctx.cfg.algo.eta, ctx.cfg.algo.alpha)) for a in self.agents}
        self.round = 0
        self.returns: dict[int, list[tuple[float, float, int]]] = {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Nothing: every round begins from the learner's broadcast state (see :meth:`begin`)."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state:
            raise ValueError(f"AFedPGWorker keeps no state between rounds but was given {sorted(state)}")

    def begin(self, round: int, state: np.ndarray) -> None:
        """Start a round from the learner's broadcast state."""
        self.round = round
        self.sampler.start(round)
        self.state = {a: state.copy() for a in self.agents}
        self.returns = {a: [] for a in self.agents}

    def receive(self, agent: int, state: np.ndarray) -> None:
        self.state[agent] = state.copy()

    def compute(self, agent: int) -> np.ndarray:
        """The agent's next gradient at the lookahead of the state it holds."""
        algo = self.ctx.cfg.algo
        point = lookahead(self.state[agent], algo.eta, algo.alpha)
        k = len(self.returns[agent])
        g, disc, ret, steps = self.sampler.gradient(point, self.round, agent, k)
        self.returns[agent].append((disc, ret, steps))
        return g

    def result(self, agent: int, applied: int) -> AgentResult:
        return round_result(self.returns[agent], applied)


SPEC = AlgorithmSpec(
    name="afedpg",
    learner=AFedPGLearner,
    worker=AFedPGWorker,
    uplink_dtype=np.dtype(np.float64),
    downlink_dtype=np.dtype(np.float64),
    uplink_kind="gradient",
    downlink_kind="params",
    diagnostics=("gradients",),
    protocol="afedpg",
    policy_size=policy_size,
)
