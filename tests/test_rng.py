"""The module's fast draws are the numbers its generators give, at every coordinate."""

from __future__ import annotations

import numpy as np
import pytest

from mpidrl import rng

COORDINATES = [
    (1, 0, rng.Stream.NOISE, 3, 77),
    (2**40, 5, rng.Stream.ENV, 0, rng.LEARNER),  # the learner's agent index, -1
    (0, 2**63, rng.Stream.TIME, 2**33, 12345),
    (-3, -1, rng.Stream.EXPLORE, -2, -5),  # negative values wrap to 64 bits as generator() wraps them
    (2**64 - 1, 7, rng.Stream.NETWORK, 1, 2**64 - 1),
]


@pytest.mark.parametrize("coordinate", COORDINATES)
def test_scratch_draws_equal_a_fresh_generators(coordinate):
    seed, trial, stream, round, agent = coordinate
    fresh = rng.generator(*coordinate)
    np.testing.assert_array_equal(rng.standard_normal(*coordinate, 300), fresh.standard_normal(300))
    out = np.empty(5)
    assert rng.standard_normal(*coordinate, 5, out=out) is out
    np.testing.assert_array_equal(out, rng.generator(*coordinate).standard_normal(5))
    np.testing.assert_array_equal(rng.scratch(*coordinate).random(9), rng.generator(*coordinate).random(9))
    skipped = rng.generator(*coordinate)
    skipped.bit_generator.random_raw(8)  # two Philox blocks
    np.testing.assert_array_equal(rng.raw(*coordinate, 6, block=2), skipped.bit_generator.random_raw(6))
    for episode in (0, 3):
        draws = rng.generator(seed, trial, rng.Stream.ENV, round, agent).integers(0, 2**31 - 1, size=episode + 1)
        assert rng.reset_seed(seed, trial, round, agent, episode) == int(draws[-1])


def test_a_rekeyed_draw_does_not_depend_on_the_draws_before_it():
    first = rng.standard_normal(4, 1, rng.Stream.NOISE, 0, 3, 50)
    rng.scratch(9, 9, rng.Stream.EVAL, 9, 9).random(1001)  # leaves the scratch generator mid-buffer
    rng.scratch(9, 9, rng.Stream.EVAL, 9, 9).integers(0, 10)  # and with a spare 32-bit word
    rng.scratch(9, 9, rng.Stream.EVAL, 9, 9).integers(0, 10, dtype=np.uint32)
    np.testing.assert_array_equal(rng.standard_normal(4, 1, rng.Stream.NOISE, 0, 3, 50), first)
