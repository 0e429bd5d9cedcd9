"""Counter-based random streams keyed by (seed, trial, stream, round, agent).

Every random draw in mpidrl comes from :func:`generator`: a Philox generator whose key is
(seed, trial) and whose counter starts at (0, stream, round, agent). Any rank can therefore regenerate
any agent's draws without them crossing the wire (ES perturbations), and results do not depend on how
agents are spread over ranks. Philox advances only the lowest counter word while drawing, so two
coordinates never share numbers unless one stream draws 2^64 blocks.
"""

from __future__ import annotations

import enum

import numpy as np

_MASK = (1 << 64) - 1


class Stream(enum.IntEnum):
    """What a random stream is for; each is an independent family of generators."""

    INIT = 0
    """initial policy parameters"""
    NOISE = 1
    """ES parameter perturbations"""
    ENV = 2
    """seeds of environment resets"""
    DECIDE = 3
    """communication decisions (ESPC, fixed-probability baselines)"""
    EXPLORE = 4
    """exploration of value-based agents and stochastic policies"""
    EVAL = 5
    """evaluation episodes of the learner"""
    TIME = 6
    """random compute and communication times of the simulated clock"""


LEARNER = -1
"""Agent index used for draws that belong to the learner rather than to a logical agent."""


def generator(seed: int, trial: int, stream: Stream, round: int = 0, agent: int = 0) -> np.random.Generator:
    """The generator for one (seed, trial, stream, round, agent) coordinate."""
    bit = np.random.Philox(
        key=np.array([seed & _MASK, trial & _MASK], dtype=np.uint64),
        counter=np.array([0, int(stream) & _MASK, round & _MASK, agent & _MASK], dtype=np.uint64),
    )
    return np.random.Generator(bit)


def reset_seed(seed: int, trial: int, round: int, agent: int, episode: int = 0) -> int:
    """An integer seed for ``env.reset(seed=...)`` of one agent's episode."""
    rng = generator(seed, trial, Stream.ENV, round, agent)
    return int(rng.integers(0, 2**31 - 1, size=episode + 1)[-1])
