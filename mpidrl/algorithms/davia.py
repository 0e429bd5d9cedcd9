"""DAVIA (report 2.4.3, Gatsis 2021): linear Q-learning with thresholded gradient uploads.

The learner holds the weights w of Q(s, a) = w . phi(s, a) (one-hot features by default) and broadcasts
them every round. Agent i runs one epsilon-greedy episode of T steps with them and computes

    g = (1/T) sum_t phi_t (w . phi_t - r_t - gamma max_a' w . phi(s_{t+1}, a')) + reg w
    A = (1/T) sum_t phi_t phi_t^T

(no bootstrap after a terminal step). It uploads g (d float64 values, a constant size) only if the
predicted decrease of the objective from a step eps along g is large enough:

    g^T (I - (eps/2) A) g >= lambda / rho^max(N - 1 - k, 0),    k the episode (round) index.

g^T A g is computed as ||F g||^2 / T with F the [T, d] feature rows, so A is never formed. The learner
steps w <- w - eps * mean of the received g, or keeps w when nothing arrived.
*(reconstructed from the report's framework, as reference/algorithms.md says; the paper's exact form
was not available.)*
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpidrl.algorithms.base import AgentResult, AlgorithmSpec, Context, Learner
from mpidrl.algorithms.qlearning import ValueWorker, check_tabular
from mpidrl.policies.qfunctions import LinearQ, greedy_actor


def davia_gradient(
    model: LinearQ,
    w: np.ndarray,
    states: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    terminal: np.ndarray,
    gamma: float,
    reg: float,
) -> tuple[np.ndarray, np.ndarray]:
    """g of one episode (states s_0..s_T, T actions and rewards) and its feature rows F [T, d]."""
    q = model.table(w)
    features = model.features(states[:-1], actions)
    bootstrap = np.where(terminal, 0.0, q[states[1:]].max(axis=1))
    residual = features @ w - rewards - gamma * bootstrap
    return features.T @ residual / len(actions) + reg * w, features


def predicted_decrease(g: np.ndarray, features: np.ndarray, step: float) -> float:
    """g^T (I - (eps/2) A) g with A = F^T F / T."""
    fg = features @ g
    return float(g @ g - 0.5 * step * (fg @ fg) / len(features))


def upload_threshold(lam: float, rho: float, horizon: int, round: int) -> float:
    """lambda / rho^max(N - 1 - k, 0)."""
    return lam / rho ** max(horizon - 1 - round, 0)


class DAVIALearner(Learner):
    """Holds w; steps it against the mean of the received gradients."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.model = LinearQ(ctx.spec.discrete_obs, ctx.spec.n_actions, ctx.cfg.algo.features)
        self.w = self.model.init()

    def downlink(self) -> np.ndarray:
        return self.w

    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        if not messages:
            return
        mean = np.mean([g for _, g in messages], axis=0)
        self.w = self.w - self.ctx.cfg.algo.step * mean

    def actor(self):
        return greedy_actor(self.model.table(self.w))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"w": self.w.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.w = state["w"].copy()


class DAVIAWorker(ValueWorker):
    """Runs each agent's episode with the broadcast w and uploads g when the condition holds."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        super().__init__(ctx, agents)
        self.model = LinearQ(ctx.spec.discrete_obs, ctx.spec.n_actions, ctx.cfg.algo.features)
        self.w = self.model.init()

    def table(self, payload: np.ndarray) -> np.ndarray:
        self.w = payload
        return self.model.table(payload)

    def act(self, round: int, agent: int) -> AgentResult:
        p = self.ctx.cfg.algo
        traj = self.episode(round, agent)
        g, features = davia_gradient(
            self.model, self.w, traj.states, traj.actions, traj.rewards, traj.terminals(), self.ctx.cfg.env.gamma, p.reg
        )
        decrease = predicted_decrease(g, features, p.step)
        send = decrease >= upload_threshold(p.lam, p.rho, p.horizon, round)
        return self.result(traj, g if send else None, (decrease,))


SPEC = AlgorithmSpec(
    name="davia",
    learner=DAVIALearner,
    worker=DAVIAWorker,
    uplink_dtype=np.dtype(np.float64),
    downlink_dtype=np.dtype(np.float64),
    uplink_kind="gradient",
    downlink_kind="weights",
    diagnostics=("decrease",),
    check=check_tabular,
    policy_size=lambda cfg, spec: LinearQ(spec.discrete_obs, spec.n_actions, cfg.algo.features).size,
)
