"""AFedPG (asynchronous federated policy gradient; reconstructed), without MPI.

Every single arriving message makes the learner take one normalised ascent step, and the learner replies
to that agent with its state (t, theta, d). The agent holds the last state it received and computes,
locally, the lookahead point of that state::

    theta_prev = theta - alpha d / ||d||        (the step that produced theta)
    theta_tilde = theta + ((1 - eta) / eta) (theta - theta_prev)

and a GPOMDP gradient g there, so one gradient costs one round trip. Where the momentum
d = (1 - eta) d + eta g is formed is ``[algo] momentum``:

- "agent" (the specification, algorithms.md: agents compute the lookahead and the momentum locally): the
  agent forms d from the d of the state it holds and sends d (d floats, as a gradient); the learner
  steps theta += alpha d / ||d|| along the received d and keeps it as its own.
- "learner": the agent sends g and the learner applies the momentum to its own d, fresher than the
  agent's by the updates that happened while the agent computed.

Either way the messages are stale by those updates. A round of the run file is M learner updates; at a
round's end, messages in flight are dropped and every agent restarts from the learner's state
(broadcast), as the aggregation rounds do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mpidrl.algorithms.nigt import (
    NIGT,
    AgentSampler,
    NIGTParams,
    NIGTState,
    initial_theta,
    momentum,
    round_m,
    round_result,
)
from mpidrl.protocols import AgentResult, Context, RoundTripLearner, RoundTripWorker


@dataclass(frozen=True)
class AFedPGParams(NIGTParams):
    """AFedPG (reconstructed): one round trip per gradient, the learner steps on every arrival; M updates a round."""

    momentum: Literal["agent", "learner"] = "agent"
    """where d = (1 - eta) d + eta g is formed: "agent" (from the d the agent last received; it sends d) or
    "learner" (the agent sends g; the learner's own d)"""


def pack_state(nigt: NIGT) -> np.ndarray:
    """The learner's reply: [t, theta, d]."""
    return np.concatenate([[float(nigt.t)], nigt.theta, nigt.d])


def unpack_state(state: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(t, theta, d) of a reply."""
    size = (state.size - 1) // 2
    return int(state[0]), state[1 : 1 + size], state[1 + size :]


def lookahead(state: np.ndarray, eta: float, alpha: float) -> np.ndarray:
    """The agent's query point from a reply [t, theta, d]."""
    t, theta, d = unpack_state(state)
    norm = float(np.linalg.norm(d))
    if t == 0 or norm == 0:
        return theta.copy()
    return theta + (1.0 - eta) / eta * (alpha / norm) * d


class AFedPGLearner(NIGTState, RoundTripLearner):
    """The learner: one normalised step per arriving message, replying with [t, theta, d]."""

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.agent_momentum = ctx.cfg.algo.momentum == "agent"

    def downlink(self) -> np.ndarray:
        return pack_state(self.nigt)

    def apply(self, message: np.ndarray) -> np.ndarray:
        """Step along an agent's d ("agent" momentum) or take the NIGT step on its g ("learner")."""
        if self.agent_momentum:
            self.nigt.move(message.copy())
        else:
            self.nigt.step(message)
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
        return self.compute_many([agent])[0]

    def compute_many(self, agents: Sequence[int]) -> list[np.ndarray]:
        """Each agent's next message from the state it holds: g at its lookahead, or its momentum d (the
        trajectories of all of them as one batch, each at its own point)."""
        algo = self.ctx.cfg.algo
        points = np.stack([lookahead(self.state[a], algo.eta, algo.alpha) for a in agents])
        jobs = [(a, len(self.returns[a])) for a in agents]
        out = []
        for a, (g, disc, ret, steps) in zip(agents, self.sampler.gradients(points, self.round, jobs)):
            self.returns[a].append((disc, ret, steps))
            if algo.momentum == "learner":
                out.append(g)
            else:
                t, _, d = unpack_state(self.state[a])
                out.append(momentum(d, g, t, algo.eta))
        return out

    def result(self, agent: int, applied: int) -> AgentResult:
        return round_result(self.returns[agent], applied)

    def updates(self, round: int) -> int:
        return round_m(self.ctx, round)
