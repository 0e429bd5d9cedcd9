"""Many environments stepped together: one per agent (and trial), each running one episode at a time.

:func:`mpidrl.envs.pool.make_batch` gives an :class:`EnvBatch`, a Gymnasium vector environment whose
sub-environments are reset with their own seeds and, once their episode ends, are no longer stepped
(``AutoresetMode.DISABLED``: an agent runs its round's episode, then waits for the next round). Three kinds:

- :class:`CartPoleBatch`: CartPole-v1's dynamics on numpy arrays, every sub-environment at once. The same
  float64 operations in the same order as Gymnasium's ``CartPoleEnv.step`` (``np.cos`` and ``np.sin`` on
  arrays give the bits they give on one number), the same reset draws from each sub-environment's own
  ``np_random``, the same termination, reward and step cap: the same episodes, bit for bit
  (tests/test_vector.py checks 10 000 of them). One sub-environment stepping alone (the tail of a round,
  an asynchronous agent) steps on Python floats, the same operations at a quarter of the cost.
- :class:`GridBatch`: mpidrl's grid worlds and Gymnasium's Frozen Lake as tables over (state, action),
  stepped with array lookups. A random grid draws its numbers from the ``np_random`` that
  ``reset(seed=...)`` gives the environment, in the order the environment would: Windy Grid one uniform
  per push of the wind after each move (pushes of probability 0 draw nothing); slippery Frozen Lake one at
  reset (the start state's draw), then one per step, also for a single outcome (``categorical_sample``
  draws anyway), the outcome being the first whose cumulative probability exceeds it.
- :class:`GymBatch`: any other environment, one Gymnasium instance per sub-environment, stepped in turn
  (MuJoCo's physics costs the same either way; the policy still runs once for the whole batch).

:meth:`EnvBatch.step_active` steps only the sub-environments still in their episode;
:func:`mpidrl.envs.episodes.rollout` runs one episode in each with a batched policy, and an
:class:`mpidrl.envs.pool.EnvPool` holds a worker's environments from round to round.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode

from mpidrl.config import EnvConfig
from mpidrl.envs.grids import GridWorld

CARTPOLE = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"
"""Entry point of the CartPole versions :class:`CartPoleBatch` steps natively."""


class EnvBatch(gym.vector.VectorEnv, abc.ABC):
    """``num_envs`` sub-environments, one episode each at a time; a finished one is not stepped.

    The sub-environments being stepped are kept compact: :meth:`step_active` gathers their state once
    when it is given a different array of indices (``active is`` not the last one) and steps the
    compact arrays until then, so a caller that keeps its ``active`` array while no episode ends pays
    for no indexing on the steps in between.
    """

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}
    seeded = True
    """whether the reset seeds decide anything (a deterministic grid ignores them)"""

    def __init__(self, num_envs: int, single_observation_space: gym.Space, single_action_space: gym.Space, cap: int):
        self.num_envs = num_envs
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = gym.vector.utils.batch_space(single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(single_action_space, num_envs)
        self.cap = cap
        """steps after which an episode is truncated (the TimeLimit of the environment or env.max_steps)"""
        self.done = np.ones(num_envs, dtype=bool)
        self._elapsed_all = np.zeros(num_envs, dtype=np.int64)
        self._active: np.ndarray | None = None
        """the sub-environments whose state is held compact (None: none)"""
        self._elapsed = self._elapsed_all[:0]
        """steps taken in the episode by each of them"""
        self._obs: np.ndarray | None = None

    @property
    def elapsed(self) -> np.ndarray:
        """int64 [num_envs]: steps taken in the current episode."""
        self._scatter()
        return self._elapsed_all

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset every sub-environment with its own seed (a list of ``num_envs`` integers)."""
        if seed is None or np.ndim(seed) == 0:
            raise ValueError("an EnvBatch resets each sub-environment with its own seed: give a list of seeds")
        self._active = None
        obs = self._reset(list(seed))
        self.done[:] = False
        self._elapsed_all[:] = 0
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
        if active is not self._active:
            self._scatter()
            self._gather(active)
            self._elapsed = self._elapsed_all[active]
            self._active = active
        obs, reward, terminated, truncated = self._step(actions)
        self._elapsed += 1
        if self.cap:
            truncated = truncated | (~terminated & (self._elapsed >= self.cap))
        ended = terminated | truncated
        if ended.any():
            self.done[active[ended]] = True
        return obs, reward, terminated, truncated

    def _scatter(self) -> None:
        """Write the compact state back to the whole batch's."""
        if self._active is not None:
            self._elapsed_all[self._active] = self._elapsed
            self._put(self._active)

    def _gather(self, active: np.ndarray) -> None:  # noqa: B027 - environments without state of their own
        """Make the state of sub-environments ``active`` the compact one."""

    def _put(self, active: np.ndarray) -> None:  # noqa: B027
        """Write the compact state back for sub-environments ``active``."""

    @abc.abstractmethod
    def _reset(self, seeds: list[int]) -> np.ndarray: ...

    @abc.abstractmethod
    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Observations, rewards, terminations and truncations (the sub-environment's own) of the compact
        sub-environments (:attr:`_active`), stepped with ``actions``."""


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
        self.state = np.zeros((4, num_envs))
        """x, x_dot, theta, theta_dot of every sub-environment (rows)"""
        self._state = self.state[:, :0]
        self._lengths = (self.length[:0], self.polemass_length[:0])

    def _reset(self, seeds: list[int]) -> np.ndarray:
        for e, seed in enumerate(seeds):  # each sub-environment's own np_random, as env.reset(seed=...) makes it
            self.state[:, e] = seeding.np_random(int(seed))[0].uniform(low=-0.05, high=0.05, size=(4,))
        return self.state.T.astype(np.float32)

    def _gather(self, active: np.ndarray) -> None:
        self._state = self.state[:, active]
        self._lengths = (self.length[active], self.polemass_length[active])

    def _put(self, active: np.ndarray) -> None:
        self.state[:, active] = self._state

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        if self._state.shape[1] == 1:
            return self._step_one(int(actions[0]))
        state = self._state
        x, x_dot, theta, theta_dot = state
        length, polemass_length = self._lengths
        force = np.where(actions == 1, self.force_mag, -self.force_mag)
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        temp = (force + polemass_length * np.square(theta_dot) * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            length * (4.0 / 3.0 - self.masspole * np.square(costheta) / self.total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / self.total_mass
        if self.euler:  # each variable moves by tau times its old derivative: all four in two operations
            state = state + self.tau * np.array([x_dot, xacc, theta_dot, thetaacc])
        else:
            x_dot = x_dot + self.tau * xacc
            x = x + self.tau * x_dot
            theta_dot = theta_dot + self.tau * thetaacc
            theta = theta + self.tau * theta_dot
            state = np.array([x, x_dot, theta, theta_dot])
        self._state = state
        # x < -x_threshold or x > x_threshold (or the same of theta): -a < b exactly when a > -b
        terminated = (np.abs(state[0]) > self.x_threshold) | (np.abs(state[2]) > self.theta_threshold)
        n = state.shape[1]
        return state.T.astype(np.float32), np.ones(n), terminated, np.zeros(n, dtype=bool)

    def _step_one(self, action: int) -> tuple[np.ndarray, ...]:
        """:meth:`_step` of one sub-environment on Python floats: the same operations in the same order
        (``math.cos`` and ``math.sin`` are Gymnasium's own), a quarter of the numpy calls' cost."""
        x, x_dot, theta, theta_dot = self._state[:, 0].tolist()
        length, polemass_length = float(self._lengths[0][0]), float(self._lengths[1][0])
        force = self.force_mag if action == 1 else -self.force_mag
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            length * (4.0 / 3.0 - self.masspole * (costheta * costheta) / self.total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / self.total_mass
        tau = self.tau
        if self.euler:
            x, x_dot, theta, theta_dot = (
                x + tau * x_dot,
                x_dot + tau * xacc,
                theta + tau * theta_dot,
                theta_dot + tau * thetaacc,
            )
        else:
            x_dot = x_dot + tau * xacc
            x = x + tau * x_dot
            theta_dot = theta_dot + tau * thetaacc
            theta = theta + tau * theta_dot
        self._state = np.array([[x], [x_dot], [theta], [theta_dot]])
        terminated = abs(x) > self.x_threshold or abs(theta) > self.theta_threshold
        obs = np.array([[x, x_dot, theta, theta_dot]], dtype=np.float32)
        return obs, np.ones(1), np.array([terminated]), np.zeros(1, dtype=bool)


class GymBatch(EnvBatch):
    """Any environment: one Gymnasium instance per sub-environment (``envs``), stepped in turn."""

    def __init__(self, envs: Sequence[gym.Env]):
        super().__init__(len(envs), envs[0].observation_space, envs[0].action_space, cap=0)  # their own TimeLimit
        self.envs = list(envs)

    def _reset(self, seeds: list[int]) -> np.ndarray:
        return np.stack([np.asarray(env.reset(seed=int(s))[0]) for env, s in zip(self.envs, seeds)])

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(self._active)
        obs, rewards, terminated, truncated = [], np.empty(n), np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        for j, (e, action) in enumerate(zip(self._active.tolist(), actions)):
            o, r, terminated[j], truncated[j], _ = self.envs[e].step(action)
            obs.append(np.asarray(o))
            rewards[j] = float(r)
        shape = self.single_observation_space.shape
        return (np.stack(obs) if obs else np.empty((0, *shape))), rewards, terminated, truncated

    def close(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()


_CHUNK = 256  # uniforms drawn from a random grid's generator at a time


class GridTables:
    """The dynamics of one grid-world config as tables over (state, action), or why there are none."""

    def __init__(self, cfg: EnvConfig):
        from mpidrl.envs import make_env

        env = make_env(cfg)
        base = env.unwrapped
        self.cap = int(env.spec.max_episode_steps or 0) if env.spec is not None else 0
        self.pushes: list[tuple[float, int, np.ndarray]] = []
        self.reset_draws = 0
        self.observation_space, self.action_space = env.observation_space, env.action_space
        if isinstance(base, GridWorld):
            moves = np.array(base._moves, dtype=np.int64)
            self.next = moves[:, :, None]
            self.cumulative = np.ones(moves.shape + (1,))
            self.reward = np.where(moves == base.goal, 0.0, -1.0)[:, :, None]
            self.terminal = (moves == base.goal)[:, :, None]
            self.pushes = [(p, shift, np.array(inside)) for p, shift, inside in base.pushes]
            self.goal = base.goal
        elif isinstance(base, FrozenLakeEnv):
            self._from_transitions(base.P, base.action_space.n)
            # a slippery lake draws at reset and at every step; on a deterministic one the draws decide nothing
            self.reset_draws = 1 if self.next.shape[2] > 1 else 0
            self.start = int(np.argmax(np.cumsum(base.initial_state_distrib) > 0.5))
        env.close()
        self.n_states = int(env.observation_space.n) if hasattr(env.observation_space, "n") else 0
        self.outcomes = self.next.shape[2] if hasattr(self, "next") else 0
        self.per_step = len(self.pushes) + (1 if self.outcomes > 1 else 0)
        self.random = self.per_step > 0 or self.reset_draws > 0

    @staticmethod
    def supports(cfg: EnvConfig) -> GridTables | None:
        """The tables of ``cfg`` if :class:`GridBatch` can step it exactly as Gymnasium does, else None:
        a grid world or Frozen Lake, unvaried, with a step cap and (Frozen Lake) the start in cell 0."""
        if cfg.variation != "none" or ":" in cfg.id or cfg.id not in gym.registry:
            return None
        entry = gym.spec(cfg.id).entry_point
        creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
        if not (isinstance(creator, type) and issubclass(creator, (GridWorld, FrozenLakeEnv))):
            return None
        try:
            tables = GridTables(cfg)
        except Exception:
            return None
        ok = tables.outcomes and tables.cap > 0 and getattr(tables, "start", 0) == 0
        return tables if ok else None

    def _from_transitions(self, P: dict, n_actions: int) -> None:
        """Tables of a toy-text transition dict P[s][a] = [(p, s', r, terminated), ...]."""
        k = max(len(P[s][a]) for s in P for a in range(n_actions))
        shape = (len(P), n_actions, k)
        self.next = np.zeros(shape, np.int64)
        self.reward = np.zeros(shape)
        self.terminal = np.zeros(shape, bool)
        self.cumulative = np.full(shape, -np.inf)  # never exceeds a uniform: argmax falls back to 0 as numpy's
        for s in P:
            for a in range(n_actions):
                outcomes = P[s][a]
                self.cumulative[s, a, : len(outcomes)] = np.cumsum([p for p, *_ in outcomes])
                for j, (_, s2, r, done) in enumerate(outcomes):
                    self.next[s, a, j], self.reward[s, a, j], self.terminal[s, a, j] = s2, r, done


class GridBatch(EnvBatch):
    """A grid world's dynamics on arrays (see the module docstring); every episode starts in state 0."""

    def __init__(self, num_envs: int, tables: GridTables):
        super().__init__(num_envs, tables.observation_space, tables.action_space, tables.cap)
        self.tables = tables
        self.seeded = tables.random
        self.state = np.zeros(num_envs, np.int64)
        self._state = self.state[:0]
        self._gens: list[np.random.Generator] = []
        self._uniforms = np.empty((num_envs, 0))

    def _reset(self, seeds: list[int]) -> np.ndarray:
        if self.tables.random:  # a deterministic grid ignores its seed: no generator is made
            self._gens = [seeding.np_random(int(s))[0] for s in seeds]
            self._uniforms = np.stack([g.random(_CHUNK) for g in self._gens])
        self.state[:] = 0
        return self.state.copy()

    def _uniform(self, envs: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The uniform number ``positions[j]`` (0-based, from reset) of each environment ``envs[j]``."""
        while positions.size and positions.max() >= self._uniforms.shape[1]:
            more = np.stack([g.random(_CHUNK) for g in self._gens])
            self._uniforms = np.concatenate([self._uniforms, more], axis=1)
        return self._uniforms[envs, positions]

    def _gather(self, active: np.ndarray) -> None:
        self._state = self.state[active]

    def _put(self, active: np.ndarray) -> None:
        self.state[active] = self._state

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        g, active, states = self.tables, self._active, self._state
        position = g.reset_draws + self._elapsed * g.per_step
        if g.outcomes > 1:
            u = self._uniform(active, position)
            j = np.argmax(g.cumulative[states, actions] > u[:, None], axis=1)
            position = position + 1
        else:
            j = 0
        nxt = g.next[states, actions, j]
        reward, terminal = g.reward[states, actions, j], g.terminal[states, actions, j]
        if g.pushes:
            for p, shift, inside in g.pushes:
                push = self._uniform(active, position) < p
                position = position + 1
                nxt = np.where(push & inside[nxt], nxt + shift, nxt)
            terminal = nxt == g.goal
            reward = np.where(terminal, 0.0, -1.0)
        self._state = nxt
        return nxt, reward, terminal, np.zeros(len(active), dtype=bool)


_MOVED = {"EnvPool": "pool", "make_batch": "pool", "native": "pool", "Episodes": "episodes", "rollout": "episodes"}


def __getattr__(name: str) -> Any:
    """``EnvPool``, ``make_batch`` and ``native`` live in :mod:`mpidrl.envs.pool`, ``rollout`` and ``Episodes``
    in :mod:`mpidrl.envs.episodes`; code that imports them from here still finds them."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"mpidrl.envs.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
