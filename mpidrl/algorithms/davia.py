"""DAVIA (report 2.4.3, Gatsis 2021): linear Q-learning with thresholded gradient uploads.

The learner holds the weights w of Q(s, a) = w . phi(s, a) and broadcasts them every round. Both
feature maps are one-hot, phi(s, a) = e_{index[s, a]} (:class:`~mpidrl.policies.qfunctions.LinearQ`):
one feature per (s, a) ("onehot", the specification's), or one per cell, the cell the action's move
leads to ("successor", wind and slipping ignored, as the report authors' code did). Agent i runs one
epsilon-greedy episode of T steps with the broadcast w and computes

    g = (1/T) sum_t phi_t (w . phi_t - r_t - gamma max_a' w . phi(s_{t+1}, a')) + reg w
    A = (1/T) sum_t phi_t phi_t^T

(no bootstrap after a terminal step). It uploads g (d float64 values, a constant size) only if the
predicted decrease of the objective from a step eps along g is large enough:

    g^T (I - (eps/2) A) g >= lambda / rho^max(N - 1 - k, 0),    k the episode (round) index.

g^T A g is computed as ||F g||^2 / T with F the [T, d] feature rows, so A is never formed; with one-hot
features F g picks one entry of g per step and F^T x sums x per feature, so F is never formed either.
Every sum runs in a fixed order (over the steps, then over the d entries of g . g) whether one episode
or a batch of them is computed, so an episode's g does not depend on the others of its batch. The learner
steps w <- w - eps * mean of the received g, or keeps w when nothing arrived.
*(reconstructed from the report's framework, as reference/algorithms.md says; the paper's exact form
was not available.)*
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mpidrl.algorithms.qlearning import Exploration, ValueWorker, check_tabular
from mpidrl.config import Config, ConfigError, require
from mpidrl.envs import EnvSpec, make_env
from mpidrl.envs.grids import successor_cells
from mpidrl.policies.qfunctions import LinearQ, greedy_actor
from mpidrl.protocols import Context, Results, SyncLearner


@dataclass(frozen=True)
class DAVIAParams(Exploration):
    """DAVIA (report 2.4.3, Gatsis 2021): linear Q, an agent uploads its gradient only when it pays."""

    step: float = 1.0
    """learner step eps: w <- w - eps * mean of the received gradients"""
    lam: float = 0.05
    """lambda of the upload condition g^T (I - eps/2 A) g >= lambda / rho^max(N-1-k, 0)"""
    rho: float = 0.9999
    """rho of the upload condition (the threshold falls towards lambda as k approaches N - 1)"""
    horizon: int = 1000
    """N, the planned number of episodes in the upload condition"""
    reg: float = 1e-3
    """L2 regularisation of the weights in the gradient"""
    features: Literal["onehot", "successor"] = "onehot"
    """feature map phi(s, a) of the linear action-value function: "onehot" of (s, a) (d = states x actions), or
    "successor", one-hot of the cell the action's move leads to (wind and slipping ignored; d = states; actions
    reaching the same cell share a weight; grid worlds only)"""

    def check(self, key: str) -> None:
        require(self.step > 0, f"{key}.step", f"must be > 0, got {self.step}")
        require(self.lam >= 0, f"{key}.lam", f"must be >= 0, got {self.lam}")
        require(0 < self.rho <= 1, f"{key}.rho", f"must be in (0, 1], got {self.rho}")
        require(self.horizon >= 1, f"{key}.horizon", f"must be >= 1, got {self.horizon}")
        require(self.reg >= 0, f"{key}.reg", f"must be >= 0, got {self.reg}")
        require(
            self.rho ** (self.horizon - 1) > 0,
            f"{key}.rho",
            f"rho^(horizon - 1) = {self.rho}^{self.horizon - 1} is 0 in float64, so the first rounds' threshold "
            "lambda / rho^(N - 1 - k) is infinite; raise rho or lower horizon",
        )
        super().check(key)


def davia_gradients(
    w: np.ndarray,
    features: np.ndarray,
    states: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    steps: np.ndarray,
    terminated: np.ndarray,
    gamma: float,
    reg: float,
) -> tuple[np.ndarray, np.ndarray]:
    """g of E episodes with one-hot features, and each step's feature index ``features[s, a]``.

    w is [E, d] (each episode's weights), ``features`` [n_states, n_actions] the feature of each
    state-action pair (:attr:`LinearQ.index`), states [E, T + 1], actions and rewards [E, T], steps and
    terminated [E] (episodes padded to the longest). Every sum runs over the steps in order, so an
    episode's g does not depend on the others in the batch.
    """
    n_envs, d = w.shape
    valid = np.arange(actions.shape[1]) < steps[:, None]
    index = features[states[:, :-1], actions]
    rows = np.arange(n_envs)[:, None]
    q_next = w[rows[:, :, None], features[states[:, 1:]]].max(axis=2)
    last = np.arange(actions.shape[1]) == steps[:, None] - 1
    bootstrap = np.where(last & terminated[:, None], 0.0, q_next)
    residual = w[rows, index] - rewards - gamma * bootstrap
    flat = (rows * d + index)[valid]
    sums = np.bincount(flat, residual[valid], minlength=n_envs * d).reshape(n_envs, d)
    return sums / steps[:, None] + reg * w, index


def predicted_decreases(g: np.ndarray, index: np.ndarray, steps: np.ndarray, step: float) -> np.ndarray:
    """g^T (I - (eps/2) A) g of each episode, A = F^T F / T: ||F g||^2 = sum_t g[index_t]^2 in step order."""
    n_envs = g.shape[0]
    valid = np.arange(index.shape[1]) < steps[:, None]
    rows = np.broadcast_to(np.arange(n_envs)[:, None], index.shape)
    fg2 = np.bincount(rows[valid], g[rows, index][valid] ** 2, minlength=n_envs)
    return np.cumsum(g * g, axis=1)[:, -1] - 0.5 * step * fg2 / steps


def upload_threshold(lam: float, rho: float, horizon: int, round: int) -> float:
    """lambda / rho^max(N - 1 - k, 0)."""
    return lam / rho ** max(horizon - 1 - round, 0)


def linear_q(cfg: Config, env_spec: EnvSpec) -> LinearQ:
    """The linear action-value function of ``[algo] features`` on the configured environment."""
    successors = None
    if cfg.algo.features == "successor":
        env = make_env(cfg.env)
        try:
            successors = successor_cells(env)
        except ValueError as exc:
            raise ConfigError(f"algo.features: successor needs a grid world; {cfg.env.id}: {exc}") from None
        finally:
            env.close()
    return LinearQ(env_spec.discrete_obs, env_spec.n_actions, cfg.algo.features, successors)


def check(cfg: Config, env_spec: EnvSpec) -> None:
    """A table over states and actions, and successor cells if the features need them."""
    check_tabular(cfg, env_spec)
    linear_q(cfg, env_spec)


class DAVIALearner(SyncLearner):
    """Holds w; steps it against the mean of the received gradients."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.model = linear_q(ctx.cfg, ctx.env_spec)
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
    """Runs every (agent, trial)'s episode with its trial's broadcast w and uploads g when the condition holds."""

    def __init__(self, contexts: Sequence[Context], agents: Sequence[int]):
        super().__init__(contexts, agents)
        self.model = linear_q(self.ctx.cfg, self.ctx.env_spec)

    def tables(self) -> np.ndarray:
        """[T, n_states, n_actions] Q = w[feature of (s, a)] of each trial (features are one-hot)."""
        return self.payloads[:, self.model.index]

    def act(self, round: int, agents: Sequence[int]) -> Results:
        p, gamma = self.ctx.cfg.algo, self.ctx.cfg.env.gamma
        ep = self.episodes(round)
        w = self.payloads[self.env_trial]
        g, index = davia_gradients(
            w, self.model.index, ep.observations, ep.actions, ep.rewards, ep.steps, ep.terminated, gamma, p.reg
        )
        decrease = predicted_decreases(g, index, ep.steps, p.step)
        send = decrease >= upload_threshold(p.lam, p.rho, p.horizon, round)
        return self.results(ep, [g[e] if send[e] else None for e in range(len(g))], decrease)


def weight_count(cfg: Config, env_spec: EnvSpec) -> int:
    """d of the linear action-value function."""
    return LinearQ.feature_count(env_spec.discrete_obs, env_spec.n_actions, cfg.algo.features)
