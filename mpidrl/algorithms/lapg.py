"""LAPG, lazily aggregated policy gradient (Chen et al. 2022; reconstructed), on synchronous rounds.

The learner broadcasts theta^k. Agent m estimates g_m(theta^k) from ``batch`` GPOMDP trajectories
and uploads it only if it changed enough since its last upload (made at theta_hat_m)::

    ||g_m(theta^k) - g_m(theta_hat_m)||^2 > (1 / (alpha^2 n^2)) sum_{d=1}^{D} xi_d ||theta^{k+1-d} - theta^{k-d}||^2

with xi_d = xi / D, or after ``max_staleness`` skipped rounds. Agents know the right-hand side from the
parameters they were sent (every rank keeps the last D + 1 broadcasts). The learner keeps every
agent's last uploaded gradient and ascends on their sum: theta^{k+1} = theta^k + alpha sum_m g_m.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mpidrl.algorithms.nigt import AgentSampler, initial_theta
from mpidrl.config import AlgoParams, require
from mpidrl.policies import make_stochastic_policy
from mpidrl.protocols import AgentResult, Context, SyncLearner, SyncWorker


@dataclass(frozen=True)
class LAPGParams(AlgoParams):
    """Lazily aggregated policy gradient (Chen et al. 2022; reconstructed): skip uploads that changed little."""

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
        require(1 <= self.batch <= 10_000, f"{key}.batch", f"must be in [1, 10000], got {self.batch}")
        require(self.H >= 1, f"{key}.H", f"must be >= 1, got {self.H}")
        require(self.D >= 1, f"{key}.D", f"must be >= 1, got {self.D}")
        require(self.xi >= 0, f"{key}.xi", f"must be >= 0, got {self.xi}")
        require(self.max_staleness >= 0, f"{key}.max_staleness", "must be >= 0")

    def check_with(self, key: str, sections: Mapping[str, Any]) -> None:
        # the skip threshold divides by (alpha n)^2: it must be a positive float64 square
        scale = self.alpha * sections["agents"].n
        require(
            1e-150 < scale < 1e150,
            f"{key}.alpha",
            f"alpha * agents.n = {scale:g}: its square must be a positive float64 (the skip threshold divides by it)",
        )


def threshold(history: Sequence[np.ndarray], alpha: float, n: int, xi: float, depth: int) -> float:
    """The right-hand side of the skip rule from the last broadcasts (oldest first, newest last)."""
    total = 0.0
    for d in range(1, min(depth, len(history) - 1) + 1):
        diff = history[-d] - history[-d - 1]
        total += (xi / depth) * float(diff @ diff)
    return total / (alpha**2 * n**2)


class LAPGLearner(SyncLearner):
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.policy = make_stochastic_policy(ctx.cfg.policy, ctx.env_spec)
        self.theta = initial_theta(ctx, self.policy)
        self.grads = np.zeros((ctx.n, self.policy.size))

    def downlink(self) -> np.ndarray:
        return self.theta

    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        for agent, g in messages:
            self.grads[agent] = g
        total = np.zeros(self.policy.size)
        for agent in range(self.ctx.n):  # agent order: the same sum whatever the ranks
            total += self.grads[agent]
        self.theta = self.theta + self.ctx.cfg.algo.alpha * total

    def actor(self):
        return self.policy.actor(self.theta)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"theta": self.theta.copy(), "grads": self.grads.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.theta, self.grads = state["theta"].copy(), state["grads"].copy()


class LAPGWorker(SyncWorker):
    def __init__(self, ctx: Context, agents: Sequence[int]):
        super().__init__(ctx, agents)
        self.sampler = AgentSampler(ctx, agents)
        size = self.sampler.policy.size
        self.history: list[np.ndarray] = []
        self.last = {a: np.zeros(size) for a in self.agents}
        self.stale = {a: 0 for a in self.agents}
        self.sampled_round = -1

    def receive(self, payload: np.ndarray) -> None:
        self.history = (self.history + [payload.copy()])[-(self.ctx.cfg.algo.D + 1) :]

    def act(self, round: int, agent: int) -> AgentResult:
        return self.act_many(round, [agent])[0]

    def act_many(self, round: int, agents: Sequence[int]) -> list[AgentResult]:
        """Each agent's mean gradient of ``algo.batch`` trajectories at the broadcast theta (the k-th
        trajectories of all the agents as one batch) and its lazy upload rule."""
        algo = self.ctx.cfg.algo
        if self.sampled_round != round:
            self.sampler.start(round)
            self.sampled_round = round
        theta = self.history[-1]
        outs = [self.sampler.gradients(theta, round, [(a, k) for a in agents]) for k in range(algo.batch)]
        limit = threshold(self.history, algo.alpha, self.ctx.n, algo.xi, algo.D)
        results = []
        for i, agent in enumerate(agents):
            out = [batch[i] for batch in outs]
            g = np.mean([o[0] for o in out], axis=0)
            change = float(np.sum((g - self.last[agent]) ** 2))
            send = round == 0 or change > limit or self.stale[agent] >= algo.max_staleness
            if send:
                self.last[agent], self.stale[agent] = g, 0
            else:
                self.stale[agent] += 1
            results.append(
                AgentResult(
                    message=g if send else None,
                    reward=float(np.mean([o[1] for o in out])),
                    ret=float(np.mean([o[2] for o in out])),
                    episodes=algo.batch,
                    steps=sum(o[3] for o in out),
                    diagnostics=(change, limit),
                )
            )
        return results

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "shared/history": np.array(self.history),
            "last": np.array([self.last[a] for a in self.agents]),
            "stale": np.array([self.stale[a] for a in self.agents]),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.history = list(state["shared/history"])
        self.last = {a: state["last"][j].copy() for j, a in enumerate(self.agents)}
        self.stale = {a: int(state["stale"][j]) for j, a in enumerate(self.agents)}
