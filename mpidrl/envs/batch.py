"""Many copies of a grid world stepped together as arrays (``[run] trial_batch``).

:class:`GridBatch` holds the dynamics of one of mpidrl's grid worlds as tables over (state, action)
and steps E environments at once with array lookups; :func:`run_episodes` runs one episode in each of
them under a vectorised policy. The results are those of the Gymnasium environment the config makes,
step for step: the same transitions and rewards, the same truncation at the step cap, and, for the
random grids, the same random numbers. A random grid draws them from the ``np_random`` that
``reset(seed=...)`` gives the environment (``gymnasium.utils.seeding.np_random``); each environment of
the batch keeps such a generator and takes its uniforms in the order the environment would:

- Windy Grid: after each move, one uniform per push of the wind, in the wind's order (only for pushes
  whose probability is above 0).
- slippery Frozen Lake: one uniform at reset (the start state's draw), then one per step, also for
  ``stay`` (``categorical_sample`` draws even from a single outcome); the outcome is the first whose
  cumulative probability exceeds it, as in Gymnasium. The deterministic lake needs no draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv
from gymnasium.utils import seeding

from mpidrl.config import ConfigError, EnvConfig
from mpidrl.envs.grids import GridWorld

_CHUNK = 256  # uniforms drawn from an environment's generator at a time


class GridBatch:
    """The dynamics of one grid-world config, for any number of environments at once."""

    def __init__(self, cfg: EnvConfig):
        from mpidrl.envs import make_env

        if cfg.variation != "none":
            raise ConfigError('run.trial_batch: batched trials need env.variation = "none"')
        env = make_env(cfg)
        base = env.unwrapped
        self.cap = int(env.spec.max_episode_steps or 0) if env.spec is not None else 0
        if self.cap <= 0:
            raise ConfigError("run.trial_batch: batched trials need a step cap (env.max_steps or the registered one)")
        if isinstance(base, GridWorld):
            moves = np.array(base._moves, dtype=np.int64)
            self.next = moves[:, :, None]
            self.cumulative = np.ones(moves.shape + (1,))
            self.reward = np.where(moves == base.goal, 0.0, -1.0)[:, :, None]
            self.terminal = (moves == base.goal)[:, :, None]
            self.pushes = [(p, shift, np.array(inside)) for p, shift, inside in base.pushes]
            self.reset_draws = 0
        elif isinstance(base, FrozenLakeEnv):
            self._from_transitions(base.P, base.action_space.n)
            self.pushes = []
            # a slippery lake draws at reset and at every step; on a deterministic one the draws decide nothing
            self.reset_draws = 1 if self.next.shape[2] > 1 else 0
            if int(np.argmax(np.cumsum(base.initial_state_distrib) > 0.5)) != 0:
                raise ConfigError("run.trial_batch: batched Frozen Lake needs the start in the top-left cell")
        else:
            raise ConfigError(f"run.trial_batch: batched trials need one of mpidrl's grid worlds, not {cfg.id}")
        env.close()
        self.n_states, self.n_actions = self.next.shape[:2]
        self.outcomes = self.next.shape[2]
        self.per_step = len(self.pushes) + (1 if self.outcomes > 1 else 0)
        self.random = self.per_step > 0 or self.reset_draws > 0
        self._gens: list[np.random.Generator] = []
        self._uniforms = np.empty((0, 0))

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

    def reset(self, seeds: Sequence[int]) -> None:
        """Seed the random numbers of len(seeds) environments as ``env.reset(seed=...)`` would."""
        self._gens = [seeding.np_random(int(s))[0] for s in seeds]
        self._uniforms = np.stack([g.random(_CHUNK) for g in self._gens])

    def _uniform(self, envs: np.ndarray, position: int) -> np.ndarray:
        """The uniform number ``position`` (0-based, from reset) of each environment in ``envs``."""
        while position >= self._uniforms.shape[1]:
            more = np.stack([g.random(_CHUNK) for g in self._gens])
            self._uniforms = np.concatenate([self._uniforms, more], axis=1)
        return self._uniforms[envs, position]

    def step(
        self, t: int, envs: np.ndarray, states: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step ``t`` (0-based) of environments ``envs``: next states, rewards, terminated."""
        position = self.reset_draws + t * self.per_step
        if self.outcomes > 1:
            u = self._uniform(envs, position)
            j = np.argmax(self.cumulative[states, actions] > u[:, None], axis=1)
            position += 1
        else:
            j = 0
        nxt = self.next[states, actions, j]
        reward, terminal = self.reward[states, actions, j], self.terminal[states, actions, j]
        if self.pushes:
            for p, shift, inside in self.pushes:
                push = self._uniform(envs, position) < p
                position += 1
                nxt = np.where(push & inside[nxt], nxt + shift, nxt)
            terminal = nxt == self.n_states - 1
            reward = np.where(terminal, 0.0, -1.0)
        return nxt, reward, terminal


@dataclass
class Episodes:
    """One episode in each of E environments, padded to the longest (T steps)."""

    states: np.ndarray
    """int64 [E, T + 1]: s_0 .. s_T of each episode, then padding"""
    actions: np.ndarray
    """int64 [E, T]"""
    rewards: np.ndarray
    """float64 [E, T] (0 in the padding)"""
    steps: np.ndarray
    """int64 [E]: each episode's length"""
    terminated: np.ndarray
    """bool [E]: ended in a terminal state (else truncated at the cap)"""
    discounted: np.ndarray
    """float64 [E]: sum_t gamma^t r_t, accumulated step by step as a single episode is"""
    undiscounted: np.ndarray
    """float64 [E]: sum_t r_t, likewise"""


def run_episodes(
    grid: GridBatch,
    n_envs: int,
    policy: Callable[[int, np.ndarray, np.ndarray], np.ndarray],
    gamma: float,
    seeds: Sequence[int] | None = None,
) -> Episodes:
    """One episode in each of ``n_envs`` environments; ``policy(t, envs, states)`` gives the actions
    of the still-running environments ``envs`` (increasing indices) at step t."""
    states = np.zeros((n_envs, grid.cap + 1), np.int64)  # every grid starts in state 0
    if grid.random:
        grid.reset(seeds)
    actions = np.zeros((n_envs, grid.cap), np.int64)
    rewards = np.zeros((n_envs, grid.cap))
    steps = np.zeros(n_envs, np.int64)
    terminated = np.zeros(n_envs, bool)
    discounted, undiscounted = np.zeros(n_envs), np.zeros(n_envs)
    envs, s = np.arange(n_envs), states[:, 0].copy()
    discount, t = 1.0, 0
    while envs.size:
        a = policy(t, envs, s)
        s, r, done = grid.step(t, envs, s, a)
        actions[envs, t], rewards[envs, t], states[envs, t + 1] = a, r, s
        discounted[envs] += discount * r
        undiscounted[envs] += r
        discount *= gamma
        t += 1
        steps[envs] = t
        terminated[envs] = done
        if t == grid.cap:
            break
        keep = ~done
        envs, s = envs[keep], s[keep]
    return Episodes(states[:, : t + 1], actions[:, :t], rewards[:, :t], steps, terminated, discounted, undiscounted)
