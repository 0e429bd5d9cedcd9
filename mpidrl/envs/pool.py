"""The environments of a worker's agents, kept from round to round, and the batch of any set of them.

:class:`EnvPool` keeps natively batched environments (CartPole, the grid worlds) as one batch per list of
agents asked for, and any other environment as one Gymnasium instance per (agent, copy);
:func:`make_batch` gives the batch of a list of agents without keeping it.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from mpidrl.config import EnvConfig
from mpidrl.envs.vector import CARTPOLE, CartPoleBatch, EnvBatch, GridBatch, GridTables, GymBatch


def native(cfg: EnvConfig) -> bool:
    """Whether the environment of ``cfg`` is CartPole with a native array implementation here."""
    spec = gym.spec(cfg.id) if ":" not in cfg.id else None
    plain = not cfg.kwargs and cfg.variation in ("none", "pole_length")
    return spec is not None and spec.entry_point == CARTPOLE and plain


class EnvPool:
    """The environments of the agents a worker runs, ``copies`` per agent (one per trial run together),
    kept from round to round; :meth:`batch` gives those of any list of agents as one :class:`EnvBatch`.

    Natively batched environments (CartPole, the grid worlds) keep one batch per list of agents asked
    for; any other environment keeps one Gymnasium instance per (agent, copy): the ``hosted`` agents'
    for good, at most as many of other agents' (dynamic placement) as guests, the oldest closed first.
    """

    def __init__(self, cfg: EnvConfig, hosted: Sequence[int], copies: int = 1):
        self.cfg, self.copies, self.hosted = cfg, copies, set(hosted)
        self.grid = GridTables.supports(cfg) if not native(cfg) else None
        self.cartpole = native(cfg)
        self._batches: dict[tuple[int, ...], EnvBatch] = {}
        self._envs: dict[tuple[int, int], gym.Env] = {}
        self._guests: list[tuple[int, int]] = []

    def batch(self, agents: Sequence[int]) -> EnvBatch:
        """The environments of ``agents``, agent-major: sub-environment ``i * copies + c`` is agent
        ``agents[i]``'s copy c."""
        key = tuple(agents)
        if self.cartpole or self.grid is not None:
            found = self._batches.get(key)
            if found is None:
                if len(self._batches) >= 64:  # dynamic placement: a bounded number of chunks
                    self._batches.pop(next(iter(self._batches)))
                found = self._batches[key] = self._native(key)
            return found
        return GymBatch([self._env(a, c) for a in key for c in range(self.copies)])

    def _native(self, agents: tuple[int, ...]) -> EnvBatch:
        from mpidrl.envs import POLE_LENGTH_FACTORS

        n = len(agents) * self.copies
        if self.grid is not None:
            return GridBatch(n, self.grid)
        spec = gym.spec(self.cfg.id)
        cap = self.cfg.max_steps or int(spec.max_episode_steps or 0)
        lengths = None
        if self.cfg.variation == "pole_length":
            base = CartPoleEnv().length
            factors = [POLE_LENGTH_FACTORS[max(a, 0) % len(POLE_LENGTH_FACTORS)] for a in agents]
            lengths = np.repeat([base * f for f in factors], self.copies)
        return CartPoleBatch(n, cap, lengths)

    def _env(self, agent: int, copy: int) -> gym.Env:
        from mpidrl.envs import make_env

        env = self._envs.get((agent, copy))
        if env is None:
            if agent not in self.hosted:
                if len(self._guests) >= max(len(self.hosted), 1) * self.copies:
                    self._envs.pop(self._guests.pop(0)).close()  # the longest-kept guest goes
                self._guests.append((agent, copy))
            env = self._envs[(agent, copy)] = make_env(self.cfg, agent)
        return env

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def make_batch(cfg: EnvConfig, agents: Sequence[int]) -> EnvBatch:
    """The environments of ``agents`` (one each, with its agent's variation, also for an agent listed
    twice), natively where possible."""
    pool = EnvPool(cfg, agents)
    if pool.cartpole or pool.grid is not None:
        return pool.batch(agents)
    from mpidrl.envs import make_env

    return GymBatch([make_env(cfg, agent) for agent in agents])
