"""A CartPole that looks heavy to the memory check: the first ``count`` instances a process resets each hold
``mb`` MiB (what :func:`mpidrl.envs.footprint` measures on its few samples), later ones nothing, so a test
can make the check's arithmetic large without the run using that memory.
"""

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

_heavy = 0  # instances of this process that took their memory


class HeavyCartPole(CartPoleEnv):
    def __init__(self, mb: int = 64, count: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.mb, self.count, self.ballast = mb, count, None

    def reset(self, *, seed=None, options=None):
        global _heavy
        if self.ballast is None and _heavy < self.count:
            _heavy += 1
            self.ballast = np.ones(self.mb * 2**20 // 8)  # touched, so resident
        return super().reset(seed=seed, options=options)


gym.register("Heavy-v0", entry_point=HeavyCartPole, max_episode_steps=500)
