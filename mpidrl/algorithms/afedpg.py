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

from mpidrl.algorithms.nigt import NIGT, AgentSampler, NIGTState, initial_theta, round_m, round_result
from mpidrl.protocols import AgentResult, Context, RoundTripLearner, RoundTripWorker


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


class AFedPGLearner(NIGTState, RoundTripLearner):
    """The learner: one NIGT step per arriving gradient, replying with [t, theta, d]."""

    def downlink(self) -> np.ndarray:
        return pack_state(self.nigt)

    def apply(self, g: np.ndarray) -> np.ndarray:
        self.nigt.step(g)
        return pack_state(self.nigt)


class AFedPGWorker(RoundTripWorker):
    """A block of agents, each holding the last state the learner sent it; no state between rounds
    (every round begins from the learner's broadcast state)."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        super().__init__(agents)
        self.ctx = ctx
        self.sampler = AgentSampler(ctx, agents)
        theta0 = initial_theta(ctx, self.sampler.policy)
        self.state = {a: pack_state(NIGT(theta0, ctx.cfg.algo.eta, ctx.cfg.algo.alpha)) for a in self.agents}
        self.round = 0
        self.returns: dict[int, list[tuple[float, float, int]]] = {}

    @property
    def size(self) -> int:
        return self.sampler.policy.size

    def begin(self, round: int, state: np.ndarray) -> None:
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

    def updates(self, round: int) -> int:
        return round_m(self.ctx, round)
