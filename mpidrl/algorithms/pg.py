"""The GPOMDP / REINFORCE policy-gradient estimator with reward-to-go, no baseline (specification, seed 001).

One trajectory tau of at most H steps (shorter if the environment terminates or truncates) gives

    g(tau, theta) = sum_{t=0}^{H-1} ( sum_{h=t}^{H-1} gamma^h r_h ) grad log pi_theta(a_t | s_t),

an unbiased estimate of the gradient of the H-step discounted return J_H(theta). The weights are the
discounted rewards-to-go *including* the factor gamma^t of the paper's formula (not re-based at t).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mpidrl.config import Config
from mpidrl.envs import EnvSpec
from mpidrl.envs.episodes import rollout
from mpidrl.envs.vector import EnvBatch
from mpidrl.policies.stochastic import CategoricalMLP, GaussianMLP, make_stochastic_policy


def policy_size(cfg: Config, spec: EnvSpec) -> int:
    """d of the stochastic MLP every policy-gradient algorithm learns."""
    return make_stochastic_policy(cfg.policy, spec).size


@dataclass
class Trajectory:
    """One sampled trajectory."""

    obs: np.ndarray
    """[T, obs_dim] observations s_t as given to the policy"""
    actions: np.ndarray
    """[T] action indices, or [T, k] pre-squash actions u_t"""
    rewards: np.ndarray
    """[T] rewards r_t"""

    @property
    def steps(self) -> int:
        return len(self.rewards)


def sample_trajectories(
    batch: EnvBatch,
    policy: CategoricalMLP | GaussianMLP,
    thetas: np.ndarray,
    gens: Sequence[np.random.Generator],
    encode: Callable[[np.ndarray], np.ndarray],
    horizon: int,
    seeds: Sequence[int],
) -> list[Trajectory]:
    """One trajectory in each sub-environment e of ``batch``: ``policy`` at ``thetas[e]`` drawing from
    ``gens[e]``, from ``reset(seed=seeds[e])``, for at most ``horizon`` steps (fewer if the environment
    terminates or truncates). All of them step together (one forward pass a step); each is the trajectory
    it would be alone. ``encode``: raw observations [B, ...] to the policy's inputs [B, obs_dim]."""
    draw = policy.batch_sampler(thetas, gens)
    episodes = rollout(
        batch, lambda active, obs: draw(active, encode(obs)), 1.0, seeds, record=True, horizon=horizon,
        act=policy.env_actions,
    )  # fmt: skip
    out = []
    for e, steps in enumerate(episodes.steps.tolist()):
        xs = encode(episodes.observations[e, :steps])
        out.append(
            Trajectory(
                np.array(xs, dtype=np.float64), episodes.actions[e, :steps].copy(), episodes.rewards[e, :steps].copy()
            )
        )
    return out


def rewards_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """w_t = sum_{h >= t} gamma^h r_h (the discount counted from the trajectory's start)."""
    discounted = rewards * gamma ** np.arange(len(rewards))
    return np.cumsum(discounted[::-1])[::-1]


def gpomdp(policy: CategoricalMLP | GaussianMLP, theta: np.ndarray, traj: Trajectory, gamma: float) -> np.ndarray:
    """The GPOMDP gradient estimate of one trajectory (ascent direction of the return)."""
    if traj.steps == 0:
        return np.zeros(policy.size)
    return policy.grad_log_prob(theta, traj.obs, traj.actions, rewards_to_go(traj.rewards, gamma))


def discounted_return(rewards: np.ndarray, gamma: float) -> float:
    """sum_t gamma^t r_t."""
    return float(np.sum(rewards * gamma ** np.arange(len(rewards))))
