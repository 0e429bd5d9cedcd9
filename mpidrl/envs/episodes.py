"""A batched episode: one episode in every sub-environment of an :class:`~mpidrl.envs.vector.EnvBatch`,
driven by one policy call a step for all the sub-environments still running.

:func:`rollout` accumulates each episode's discounted and undiscounted return as it goes and, if asked,
keeps the trajectories (:class:`Episodes`, padded to the longest episode); ES, the value-based family and
the policy gradients all act through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mpidrl.envs.vector import EnvBatch


@dataclass
class Episodes:
    """One episode in each sub-environment of a batch (with ``record``: its trajectory, padded to the
    longest, T steps)."""

    discounted: np.ndarray
    """float64 [E]: sum_t gamma^t r_t, accumulated step by step as one episode is"""
    undiscounted: np.ndarray
    """float64 [E]: sum_t r_t"""
    steps: np.ndarray
    """int64 [E]: the episode's length"""
    terminated: np.ndarray
    """bool [E]: ended in a terminal state (else truncated)"""
    observations: np.ndarray | None = None
    """[E, T + 1, ...]: o_0 .. o_T of each episode, then zeros"""
    actions: np.ndarray | None = None
    """[E, T, ...], zeros after the episode"""
    rewards: np.ndarray | None = None
    """float64 [E, T], zeros after the episode"""


def rollout(
    batch: EnvBatch,
    policy: Callable[[np.ndarray, np.ndarray], np.ndarray],
    gamma: float,
    seeds: Sequence[int],
    record: bool = False,
    horizon: int = 0,
    act: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Episodes:
    """One episode in every sub-environment from ``reset(seed=seeds[e])``; ``policy(active, obs)`` gives the
    actions of the sub-environments ``active`` (indices, increasing) from their observations. ``active``
    is the same array object from one step to the next until an episode ends.

    ``horizon``: episodes still running after this many steps stop there (0: none), truncated. ``act``:
    the environments step with ``act(actions)`` (what is recorded is the policy's own output).
    """
    obs, _ = batch.reset(seed=list(seeds))
    n = batch.num_envs
    discounted, undiscounted, steps = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    terminated_all = np.zeros(n, dtype=bool)
    trace = [(np.arange(n), obs, None, None)]
    active, discount = np.arange(n), 1.0
    sums, totals, t = np.zeros(n), np.zeros(n), 0  # the running episodes' sums, compact
    stop = horizon or -1  # t never reaches -1
    while active.size and t != stop:
        actions = policy(active, obs)
        obs, reward, terminated, truncated = batch.step_active(active, actions if act is None else act(actions))
        sums += discount * reward
        totals += reward
        discount *= gamma
        t += 1
        if record:
            trace.append((active, obs, np.asarray(actions), reward))
        ended = terminated | truncated
        if ended.any():
            done = active[ended]
            discounted[done], undiscounted[done], steps[done] = sums[ended], totals[ended], t
            terminated_all[done] = terminated[ended]
            keep = ~ended
            active, obs, sums, totals = active[keep], obs[keep], sums[keep], totals[keep]
    if active.size:  # stopped at the horizon
        discounted[active], undiscounted[active], steps[active] = sums, totals, t
        batch.done[active] = True
    out = Episodes(discounted, undiscounted, steps, terminated_all)
    if record:
        out.observations, out.actions, out.rewards = _trajectories(trace, n)
    return out


def _trajectories(trace: list, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded [E, T + 1] observations, [E, T] actions and rewards from each step's (active, obs, ...)."""
    length = len(trace) - 1
    first_obs = trace[0][1]
    observations = np.zeros((n, length + 1, *first_obs.shape[1:]), first_obs.dtype)
    observations[:, 0] = first_obs
    if length == 0:
        return observations, np.zeros((n, 0), np.int64), np.zeros((n, 0))
    sample = trace[1][2]
    actions = np.zeros((n, length, *sample.shape[1:]), sample.dtype)
    rewards = np.zeros((n, length))
    for t, (active, obs, a, r) in enumerate(trace[1:]):
        observations[active, t + 1], actions[active, t], rewards[active, t] = obs, a, r
    return observations, actions, rewards
