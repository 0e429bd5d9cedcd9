"""Many environments stepped together: one per agent (and trial), each running one episode at a time.

:func:`make_batch` gives an :class:`EnvBatch`, a Gymnasium vector environment whose sub-environments are
reset with their own seeds and, once their episode ends, are no longer stepped (``AutoresetMode.DISABLED``:
an agent runs its round's episode, then waits for the next round). Two kinds:

- :class:`CartPoleBatch`: CartPole-v1's dynamics on numpy arrays, every sub-environment at once. The same
  float64 operations in the same order as Gymnasium's ``CartPoleEnv.step`` (``np.cos`` and ``np.sin`` on
  arrays give the bits they give on one number), the same reset draws from each sub-environment's own
  ``np_random``, the same termination, reward and step cap: the same episodes, bit for bit
  (tests/test_vector.py checks 10 000 of them).
- :class:`GymBatch`: any other environment, one Gymnasium instance per sub-environment, stepped in turn
  (MuJoCo's physics costs the same either way; the policy still runs once for the whole batch).

:meth:`EnvBatch.step_active` steps only the sub-environments still in their episode; :func:`rollout`
runs one episode in each with a batched policy.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode

from mpidrl.config import EnvConfig

CARTPOLE = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"
"""Entry point of the CartPole versions :class:`CartPoleBatch` steps natively."""


class EnvBatch(gym.vector.VectorEnv, abc.ABC):
    """``num_envs`` sub-environments, one episode each at a time; a finished one is not stepped."""

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}

    def __init__(self, num_envs: int, single_observation_space: gym.Space, single_action_space: gym.Space, cap: int):
        self.num_envs = num_envs
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = gym.vector.utils.batch_space(single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(single_action_space, num_envs)
        self.cap = cap
        """steps after which an episode is truncated (the TimeLimit of the environment or env.max_steps)"""
        self.done = np.ones(num_envs, dtype=bool)
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self._obs: np.ndarray | None = None

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset every sub-environment with its own seed (a list of ``num_envs`` integers)."""
        if seed is None or np.ndim(seed) == 0:
            raise ValueError("an EnvBatch resets each sub-environment with its own seed: give a list of seeds")
        obs = self._reset(list(seed))
        self.done[:] = False
        self.elapsed[:] = 0
        self._obs = obs.copy()
        return obs, {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step the sub-environments still in their episode (the others keep their last observation)."""
        active = np.flatnonzero(~self.done)
        obs, reward, terminated, truncated = self.step_active(active, np.asarray(actions)[active])
        rewards, terms, truncs = np.zeros(self.num_envs), np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool)
        self._obs[active], rewards[active], terms[active], truncs[active] = obs, reward, terminated, truncated
        return self._obs.copy(), rewards, terms, truncs, {}

    def step_active(
        self, active: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step sub-environments ``active`` (indices, increasing) with ``actions``: their observations,
        rewards, terminations and truncations; those that end are marked done."""
        obs, reward, terminated, truncated = self._step(active, actions)
        self.elapsed[active] += 1
        if self.cap:
            truncated = truncated | (~terminated & (self.elapsed[active] >= self.cap))
        self.done[active] = terminated | truncated
        return obs, reward, terminated, truncated

    @abc.abstractmethod
    def _reset(self, seeds: list[int]) -> np.ndarray: ...

    @abc.abstractmethod
    def _step(self, active: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Observations, rewards, terminations and truncations (the sub-environment's own) of ``active``."""


class CartPoleBatch(EnvBatch):
    """CartPole's dynamics on arrays (see the module docstring); ``lengths``: each pole's half-length."""

    def __init__(self, num_envs: int, cap: int, lengths: np.ndarray | None = None):
        proto = CartPoleEnv()
        super().__init__(num_envs, proto.observation_space, proto.action_space, cap)
        self.gravity, self.masspole, self.total_mass = proto.gravity, proto.masspole, proto.total_mass
        self.force_mag, self.tau = proto.force_mag, proto.tau
        self.theta_threshold, self.x_threshold = proto.theta_threshold_radians, proto.x_threshold
        self.euler = proto.kinematics_integrator == "euler"
        self.length = np.full(num_envs, proto.length) if lengths is None else np.asarray(lengths, dtype=float)
        self.polemass_length = self.masspole * self.length
        self.state = np.zeros((num_envs, 4))

    def _reset(self, seeds: list[int]) -> np.ndarray:
        for e, seed in enumerate(seeds):  # each sub-environment's own np_random, as env.reset(seed=...) makes it
            self.state[e] = seeding.np_random(int(seed))[0].uniform(low=-0.05, high=0.05, size=(4,))
        return self.state.astype(np.float32)

    def _step(self, active: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        x, x_dot, theta, theta_dot = self.state[active].T
        length, polemass_length = self.length[active], self.polemass_length[active]
        force = np.where(actions == 1, self.force_mag, -self.force_mag)
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        temp = (force + polemass_length * np.square(theta_dot) * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            length * (4.0 / 3.0 - self.masspole * np.square(costheta) / self.total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / self.total_mass
        if self.euler:
            x = x + self.tau * x_dot
            x_dot = x_dot + self.tau * xacc
            theta = theta + self.tau * theta_dot
            theta_dot = theta_dot + self.tau * thetaacc
        else:
            x_dot = x_dot + self.tau * xacc
            x = x + self.tau * x_dot
            theta_dot = theta_dot + self.tau * thetaacc
            theta = theta + self.tau * theta_dot
        state = np.stack([x, x_dot, theta, theta_dot], axis=1)
        self.state[active] = state
        terminated = (
            (x < -self.x_threshold)
            | (x > self.x_threshold)
            | (theta < -self.theta_threshold)
            | (theta > self.theta_threshold)
        )
        return state.astype(np.float32), np.ones(len(active)), terminated, np.zeros(len(active), dtype=bool)


class GymBatch(EnvBatch):
    """Any environment: one Gymnasium instance per sub-environment (``envs``), stepped in turn."""

    def __init__(self, envs: Sequence[gym.Env]):
        super().__init__(len(envs), envs[0].observation_space, envs[0].action_space, cap=0)  # their own TimeLimit
        self.envs = list(envs)

    def _reset(self, seeds: list[int]) -> np.ndarray:
        return np.stack([np.asarray(env.reset(seed=int(s))[0]) for env, s in zip(self.envs, seeds)])

    def _step(self, active: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(active)
        obs, rewards, terminated, truncated = [], np.empty(n), np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        for j, (e, action) in enumerate(zip(active.tolist(), actions)):
            o, r, terminated[j], truncated[j], _ = self.envs[e].step(action)
            obs.append(np.asarray(o))
            rewards[j] = float(r)
        shape = self.single_observation_space.shape
        return (np.stack(obs) if obs else np.empty((0, *shape))), rewards, terminated, truncated

    def close(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()


@dataclass
class Returns:
    """One episode in each sub-environment of a batch."""

    discounted: np.ndarray
    """float64 [E]: sum_t gamma^t r_t, accumulated step by step as one episode is"""
    undiscounted: np.ndarray
    """float64 [E]: sum_t r_t"""
    steps: np.ndarray
    """int64 [E]: the episode's length"""


def rollout(
    batch: EnvBatch, policy: Callable[[np.ndarray, np.ndarray], np.ndarray], gamma: float, seeds: Sequence[int]
) -> Returns:
    """One episode in every sub-environment from ``reset(seed=seeds[e])``; ``policy(active, obs)`` gives the
    actions of the sub-environments ``active`` (indices, increasing) from their observations."""
    obs, _ = batch.reset(seed=list(seeds))
    n = batch.num_envs
    discounted, undiscounted, steps = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    active, discount = np.arange(n), 1.0
    while active.size:
        obs, reward, terminated, truncated = batch.step_active(active, policy(active, obs))
        discounted[active] += discount * reward
        undiscounted[active] += reward
        steps[active] += 1
        discount *= gamma
        keep = ~(terminated | truncated)
        active, obs = active[keep], obs[keep]
    return Returns(discounted, undiscounted, steps)


def native(cfg: EnvConfig) -> bool:
    """Whether the environment of ``cfg`` has a native array implementation here."""
    spec = gym.spec(cfg.id) if ":" not in cfg.id else None
    plain = not cfg.kwargs and cfg.variation in ("none", "pole_length")
    return spec is not None and spec.entry_point == CARTPOLE and plain


def make_batch(cfg: EnvConfig, agents: Sequence[int]) -> EnvBatch:
    """The environments of ``agents`` (one each, with its agent's variation), natively where possible."""
    from mpidrl.envs import POLE_LENGTH_FACTORS, make_env

    if native(cfg):
        spec = gym.spec(cfg.id)
        cap = cfg.max_steps or int(spec.max_episode_steps or 0)
        base = CartPoleEnv().length
        factors = [POLE_LENGTH_FACTORS[max(a, 0) % len(POLE_LENGTH_FACTORS)] for a in agents]
        lengths = np.array([base * f for f in factors]) if cfg.variation == "pole_length" else None
        return CartPoleBatch(len(agents), cap, lengths)
    return GymBatch([make_env(cfg, agent) for agent in agents])
