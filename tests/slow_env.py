"""A CartPole that is slow on one MPI rank, for tests of how agents are placed over ranks.

``gymnasium.make("slow_env:SlowOnRank-v0", slow_rank=1, delay=0.001)`` behaves as CartPole-v1, except
that every step taken in the process of MPI rank ``slow_rank`` first sleeps ``delay`` seconds.
"""

import os
import time

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class SlowCartPole(CartPoleEnv):
    def __init__(self, slow_rank: int = 1, delay: float = 0.001, **kwargs):
        super().__init__(**kwargs)
        self.delay = delay if int(os.environ.get("PMI_RANK", "0")) == slow_rank else 0.0

    def step(self, action):
        if self.delay:
            time.sleep(self.delay)
        return super().step(action)


gym.register("SlowOnRank-v0", entry_point=SlowCartPole, max_episode_steps=500)
