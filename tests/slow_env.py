"""A CartPole that is slow on one MPI rank, for tests of how agents are placed over ranks.

``gymnasium.make("slow_env:SlowOnRank-v0", slow_rank=1, delay=0.001)`` behaves as CartPole-v1, except
that every step taken in the process of MPI rank ``slow_rank`` first sleeps ``delay`` seconds; with
``stall_round=k`` the k-th reset of an instance there (its agent's round k, with one episode a round)
first sleeps ``stall`` seconds.
"""

import os
import time

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class SlowCartPole(CartPoleEnv):
    def __init__(self, slow_rank: int = 1, delay: float = 0.001, stall_round: int = -1, stall: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        slow = int(os.environ.get("PMI_RANK", "0")) == slow_rank
        self.delay = delay if slow else 0.0
        self.stall_round, self.stall = (stall_round, stall) if slow else (-1, 0.0)
        self.resets = 0

    def reset(self, *, seed=None, options=None):
        if self.resets == self.stall_round:
            time.sleep(self.stall)
        self.resets += 1
        return super().reset(seed=seed, options=options)

    def step(self, action):
        if self.delay:
            time.sleep(self.delay)
        return super().step(action)


gym.register("SlowOnRank-v0", entry_point=SlowCartPole, max_episode_steps=500)
