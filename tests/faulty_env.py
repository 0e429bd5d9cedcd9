"""A CartPole that fails on purpose, for tests of how a job ends when one rank breaks.

``gymnasium.make("faulty_env:Faulty-v0", fail_rank=1, fail_after=200, how="raise")`` behaves as
CartPole-v1 until the process of MPI rank ``fail_rank`` has taken ``fail_after`` steps in total, then
raises (``how="raise"``) or kills its own process with SIGKILL (``how="kill"``); ``how="init"`` raises
when the environment is made on that rank, ``how="memory"`` raises MemoryError there.
"""

import os
import signal

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

_steps = 0  # steps taken by this process, over every instance


class FaultyCartPole(CartPoleEnv):
    def __init__(self, fail_rank: int = 0, fail_after: int = 100, how: str = "raise", **kwargs):
        super().__init__(**kwargs)
        self.fail = int(os.environ.get("PMI_RANK", "0")) == fail_rank
        self.fail_after, self.how = fail_after, how
        if self.fail and how == "init":
            raise RuntimeError("injected failure while making the environment")
        if self.fail and how == "memory":
            raise MemoryError("injected out of memory while making the environment")

    def step(self, action):
        global _steps
        _steps += 1
        if self.fail and _steps >= self.fail_after:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected failure after {_steps} steps")
        return super().step(action)


gym.register("Faulty-v0", entry_point=FaultyCartPole, max_episode_steps=500)
