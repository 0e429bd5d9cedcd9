"""Environments: factories for Gymnasium ids, per-agent variation, episode roll-outs.

Importing this package registers mpidrl's grid worlds (:mod:`mpidrl.envs.grids`) with Gymnasium.
Agents never share an environment object; each logical agent gets its own instance from
:func:`make_env`, and every episode is reset with a seed derived from the agent's coordinates so that
what an agent sees does not depend on the rank that hosts it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from mpidrl.config import ConfigError, EnvConfig
from mpidrl.envs import grids

grids.register()

VARIATIONS = ("none", "negate_obs", "pole_length")
"""Names accepted by ``[env] variation`` (see :func:`vary`)."""

POLE_LENGTH_FACTORS = (1.0, 1.5, 2.0, 2.5)
"""``pole_length``: agent i's CartPole pole is this factor (i mod 4) times the default length"""


class FlaggedObservation(gym.ObservationWrapper):
    """Appends a 0/1 flag to a flat Box observation and, when the flag is 1, negates the observation.

    The space is the same for both flags (bounds symmetric under negation), so all agents share one
    policy input of size obs_dim + 1.
    """

    def __init__(self, env: gym.Env, negate: bool):
        super().__init__(env)
        box = env.observation_space
        if not isinstance(box, gym.spaces.Box) or len(box.shape) != 1:
            raise ConfigError("env.variation: negate_obs needs a flat Box observation space")
        low = np.minimum(box.low, -box.high)
        high = np.maximum(box.high, -box.low)
        self.observation_space = gym.spaces.Box(
            np.append(low, 0.0).astype(box.dtype), np.append(high, 1.0).astype(box.dtype), dtype=box.dtype
        )
        self.sign = -1.0 if negate else 1.0
        self.flag = 1.0 if negate else 0.0

    def observation(self, obs):
        return np.append(self.sign * np.asarray(obs), self.flag).astype(self.observation_space.dtype)


def vary(env: gym.Env, variation: str, agent: int) -> gym.Env:
    """Agent ``agent``'s version of ``env`` (the learner, agent -1, gets agent 0's).

    - negate_obs (the paper's heterogeneous case): odd agents see -s, even agents s, with a 0/1 flag
      appended; with two agents, the second sees the negated observation.
    - pole_length: CartPole's pole length scaled by POLE_LENGTH_FACTORS[i mod 4].
    """
    agent = max(agent, 0)
    if variation == "negate_obs":
        return FlaggedObservation(env, negate=agent % 2 == 1)
    if variation == "pole_length":
        base = env.unwrapped
        if not hasattr(base, "length") or not hasattr(base, "polemass_length"):
            raise ConfigError("env.variation: pole_length needs a CartPole environment")
        base.length = base.length * POLE_LENGTH_FACTORS[agent % len(POLE_LENGTH_FACTORS)]
        base.polemass_length = base.masspole * base.length
    return env


@dataclass(frozen=True)
class EnvSpec:
    """What a policy needs to know of an environment: observation and action shapes."""

    obs_dim: int
    """length of the flat observation vector given to policies"""
    discrete_obs: int
    """number of states if observations are discrete (one-hot encoded for MLPs), else 0"""
    n_actions: int
    """number of discrete actions, 0 for continuous"""
    act_dim: int
    """length of the continuous action vector, 0 for discrete"""
    act_low: np.ndarray | None = None
    """lower bounds of a continuous action"""
    act_high: np.ndarray | None = None
    """upper bounds of a continuous action"""

    @property
    def discrete_actions(self) -> bool:
        return self.n_actions > 0


def check_env_id(env_id: str) -> None:
    """Raise ConfigError unless ``env_id`` is a registered Gymnasium environment.

    As with ``gymnasium.make``, ``"module:EnvId-v0"`` first imports ``module`` (which registers its own
    environments), so users can bring environments of their own.
    """
    if ":" in env_id:
        module, _, name = env_id.partition(":")
        try:
            importlib.import_module(module)
        except Exception as exc:  # ImportError, or whatever the module raises while being imported
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ConfigError(f"env.id: cannot import module {module!r} ({message})") from None
        env_id = name
    if env_id not in gym.registry:
        close = [k for k in gym.registry if k.split("-")[0].lower() == env_id.split("-")[0].lower()]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"env.id: unknown environment {env_id!r}{hint}")


def make_env(cfg: EnvConfig, agent: int = 0, env_checker: bool = False) -> gym.Env:
    """A fresh environment instance for logical agent ``agent``.

    Gymnasium's passive environment checker wraps every step; it runs once, at validation
    (``env_checker=True``), not in the instances agents step millions of times.
    """
    check_env_id(cfg.id)
    if cfg.variation not in VARIATIONS:
        raise ConfigError(f"env.variation: unknown {cfg.variation!r}; allowed: {', '.join(VARIATIONS)}")
    kwargs = dict(cfg.kwargs)
    kwargs["disable_env_checker"] = not env_checker
    if cfg.max_steps > 0:
        kwargs["max_episode_steps"] = cfg.max_steps
    try:
        env = gym.make(cfg.id, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"env.kwargs: {cfg.id} does not accept them ({exc})") from None
    return vary(env, cfg.variation, agent)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def footprint(cfg: EnvConfig, samples: int = 4) -> int:
    """Approximate bytes one more instance of the environment takes (resident memory, at least 16 KiB)."""
    try:
        before = _rss()
    except OSError:  # no /proc: assume a small environment
        return 16 * 1024
    envs = [make_env(cfg, agent) for agent in range(samples)]
    for env in envs:
        env.reset(seed=0)
    grown = _rss() - before
    for env in envs:
        env.close()
    return max(grown // samples, 16 * 1024)


def available_memory() -> int:
    """Bytes of memory available to new work (MemAvailable), or the physical memory if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def spec_of(env: gym.Env) -> EnvSpec:
    """The :class:`EnvSpec` of an environment; refuses spaces policies cannot handle."""
    obs, act = env.observation_space, env.action_space
    if isinstance(obs, gym.spaces.Discrete):
        obs_dim, discrete_obs = int(obs.n), int(obs.n)
    elif isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1:
        obs_dim, discrete_obs = int(obs.shape[0]), 0
    else:
        raise ConfigError(f"env.id: observation space {obs} is not supported (Discrete or flat Box)")
    if isinstance(act, gym.spaces.Discrete):
        return EnvSpec(obs_dim, discrete_obs, int(act.n), 0)
    if isinstance(act, gym.spaces.Box) and len(act.shape) == 1:
        return EnvSpec(obs_dim, discrete_obs, 0, int(act.shape[0]), act.low.astype(float), act.high.astype(float))
    raise ConfigError(f"env.id: action space {act} is not supported (Discrete or flat Box)")


def observation_encoder(spec: EnvSpec) -> Callable[[object], np.ndarray]:
    """A function mapping raw observations to flat float64 vectors (one-hot for discrete states)."""
    if spec.discrete_obs:
        eye = np.eye(spec.discrete_obs)
        return lambda obs: eye[int(obs)]
    return lambda obs: np.asarray(obs, dtype=np.float64)


def batch_encoder(spec: EnvSpec) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`observation_encoder` for a batch of raw observations [B, ...]: rows [B, obs_dim]."""
    if spec.discrete_obs:
        eye = np.eye(spec.discrete_obs)
        return lambda obs: eye[np.asarray(obs, dtype=np.int64)]
    return lambda obs: np.asarray(obs, dtype=np.float64)


@dataclass
class Episode:
    """Outcome of one episode."""

    discounted: float
    """sum_t gamma^t r_t"""
    undiscounted: float
    """sum_t r_t"""
    steps: int
    """environment steps taken"""


def rollout(
    env: gym.Env,
    act: Callable[[np.ndarray], object],
    encode: Callable[[object], np.ndarray] | None,
    gamma: float,
    seed: int,
) -> Episode:
    """Run one episode from ``env.reset(seed=seed)`` until termination or truncation.

    ``act`` maps ``encode(obs)`` to an action, or raw observations when ``encode`` is None.
    """
    if encode is not None:
        policy = act
        act = lambda obs: policy(encode(obs))  # noqa: E731
    obs, _ = env.reset(seed=seed)
    discounted = undiscounted = 0.0
    discount = 1.0
    steps = 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        reward = float(reward)
        discounted += discount * reward
        undiscounted += reward
        discount *= gamma
        steps += 1
        if terminated or truncated:
            return Episode(discounted, undiscounted, steps)
