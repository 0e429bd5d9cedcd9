"""Counter-based random streams keyed by (seed, trial, stream, round, agent).

Every random draw in mpidrl comes from :func:`generator`: a Philox generator whose key is
(seed, trial) and whose counter starts at (0, stream, round, agent). Any rank can therefore regenerate
any agent's draws without them crossing the wire (ES perturbations), and results do not depend on how
agents are spread over ranks. Philox advances only the lowest counter word while drawing, so two
coordinates never share numbers unless one stream draws 2^64 blocks.
"""

from __future__ import annotations

import enum
import threading

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
    NETWORK = 7
    """random latencies and bandwidths of the simulated network's links"""


LEARNER = -1
"""Agent index used for draws that belong to the learner rather than to a logical agent."""


def generator(seed: int, trial: int, stream: Stream, round: int = 0, agent: int = 0) -> np.random.Generator:
    """The generator for one (seed, trial, stream, round, agent) coordinate."""
    bit = np.random.Philox(
        key=np.array([seed & _MASK, trial & _MASK], dtype=np.uint64),
        counter=np.array([0, int(stream) & _MASK, round & _MASK, agent & _MASK], dtype=np.uint64),
    )
    return np.random.Generator(bit)


_scratch = threading.local()


def _rekeyed(seed: int, trial: int, stream: Stream, round: int, agent: int, block: int = 0) -> np.random.Generator:
    """This thread's scratch generator, set to the state :func:`generator` starts from.

    Constructing a Philox bit generator costs several times more than setting one's state, and
    draws consumed at once inside this module need no generator of their own. The generator returned
    must not escape: the next call re-keys it. With ``block`` it starts where :func:`generator` is after
    drawing ``block`` Philox blocks (4 words each) with its buffer used up. The state setter reads the
    counter and key word by word, so plain lists of ints serve, much cheaper than new uint64 arrays.
    """
    gen = getattr(_scratch, "gen", None)
    if gen is None:
        gen = _scratch.gen = np.random.Generator(np.random.Philox(0))
        _scratch.state = {
            "bit_generator": "Philox",
            # an empty buffer and no spare 32-bit word: what Philox(key=..., counter=...) starts with
            "buffer": [0, 0, 0, 0],
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
    state = _scratch.state
    state["state"] = {
        "counter": [block & _MASK, stream & _MASK, round & _MASK, agent & _MASK],
        "key": [seed & _MASK, trial & _MASK],
    }
    gen.bit_generator.state = state
    return gen


def scratch(seed: int, trial: int, stream: Stream, round: int = 0, agent: int = 0) -> np.random.Generator:
    """A generator in the state :func:`generator` starts from, at a fraction of its cost, for draws taken at
    once: it is this thread's shared scratch generator, which the next call of any function here re-keys."""
    return _rekeyed(seed, trial, stream, round, agent)


def standard_normal(
    seed: int, trial: int, stream: Stream, round: int, agent: int, size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """``generator(...).standard_normal(size)``, the same numbers, without building a generator.

    With ``out`` (a float64 array of ``size`` elements) the numbers are written there and it is returned.
    """
    gen = _rekeyed(seed, trial, stream, round, agent)
    if out is None:
        return gen.standard_normal(size)
    return gen.standard_normal(out=out)


def reset_seed(seed: int, trial: int, round: int, agent: int, episode: int = 0) -> int:
    """An integer seed for ``env.reset(seed=...)`` of one agent's episode."""
    rng = _rekeyed(seed, trial, Stream.ENV, round, agent)
    if episode == 0:  # the scalar draw is the same number as the first of an array, at half the cost
        return int(rng.integers(0, 2**31 - 1))
    return int(rng.integers(0, 2**31 - 1, size=episode + 1)[-1])


def raw(seed: int, trial: int, stream: Stream, round: int, agent: int, count: int, block: int = 0) -> np.ndarray:
    """``count`` raw 64-bit words of a stream (what its generator's draws are made of), as uint64.

    ``block`` skips that many Philox blocks first: the words a generator yields after it has drawn
    ``4 * block`` words. Vectorised code turns these words into the same numbers numpy's methods would.
    """
    return _rekeyed(seed, trial, stream, round, agent, block).bit_generator.random_raw(count)
