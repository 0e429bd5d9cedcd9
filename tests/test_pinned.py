"""The speed-ups of the random streams and of the ES gradient draw exactly the numbers they replaced."""

from __future__ import annotations

import numpy as np
import pytest

from mpidrl import registry, rng
from mpidrl.algorithms.es import centered_ranks, es_gradient
from mpidrl.comm import Runtime
from mpidrl.config import from_dict
from mpidrl.envs import make_env, spec_of
from mpidrl.protocols import Context, SyncRounds

COORDS = [(0, 0, rng.Stream.NOISE, 0, 0), (7, 1, rng.Stream.ENV, 3, 5), (2**63 - 1, 9, rng.Stream.EVAL, 2**40, -1)]


def config(n: int, antithetic: bool, shaping: str = "centered_rank"):
    return from_dict(
        {
            "run": {"seed": 7, "rounds": 3},
            "agents": {"n": n},
            "algo": {"name": "es", "sigma": 0.1, "fitness_shaping": shaping, "antithetic": antithetic},
            "optim": {"name": "adam", "lr": 0.05, "l2": 0.005},
        }
    )


@pytest.mark.parametrize("coord", COORDS)
def test_standard_normal_and_reset_seed_match_a_fresh_generator(coord):
    expected = rng.generator(*coord).standard_normal(33)
    assert np.array_equal(rng.standard_normal(*coord, 33), expected)
    out = np.empty(33)
    assert rng.standard_normal(*coord, 33, out=out) is out
    assert np.array_equal(out, expected)
    seed, trial, _, round, agent = coord
    draws = rng.generator(seed, trial, rng.Stream.ENV, round, agent).integers(0, 2**31 - 1, size=4)
    assert [rng.reset_seed(seed, trial, round, agent, e) for e in range(4)] == [int(x) for x in draws]


@pytest.mark.parametrize("antithetic", [False, True])
@pytest.mark.parametrize("agents", [[0, 1, 2, 3, 4], [1, 2, 5], [3]])
def test_es_gradient_equals_the_plain_sum_bit_for_bit(antithetic, agents):
    cfg = config(6, antithetic)
    ctx = Context(cfg, 2, None)
    returns = np.array([3.0, -1.5, 0.0, 7.25, 2.0])[: len(agents)]
    expected = np.zeros(50)
    for agent, f in zip(agents, centered_ranks(returns)):
        pair, sign = divmod(agent, 2) if antithetic else (agent, 0)
        eps = rng.generator(7, 2, rng.Stream.NOISE, 4, pair).standard_normal(50)
        expected += f * (-eps if sign else eps)
    expected /= len(agents) * 0.1
    assert np.array_equal(es_gradient(ctx, 4, agents, returns, 50), expected)


# Returns of a 6-agent, 3-round CartPole run (seed 7, trial 1) and values of the final parameters, as
# the code drew them before the random streams and the ES gradient were made faster.
PINNED = {
    True: (
        [9, 9, 9, 9, 11, 10, 10, 11, 10, 9, 10, 10, 30, 9, 17, 10, 10, 10],
        (-0.3068476105614498, -1.5766849346223046, 38.110545045634716),
    ),
    False: (
        [9, 10, 9, 10, 8, 10, 10, 11, 10, 9, 8, 10, 11, 10, 8, 10, 9, 9],
        (-0.43422504333191125, -3.716025862730629, 37.9897582370838),
    ),
}


@pytest.mark.parametrize("antithetic", [True, False])
def test_small_run_reproduces_pinned_values(antithetic):
    cfg = config(6, antithetic)
    env = make_env(cfg.env)
    ctx = Context(cfg, 1, spec_of(env))
    env.close()
    rounds = SyncRounds(registry.lookup("es"), [ctx], Runtime())
    returns = []
    for r in range(3):
        (record,) = rounds.run(r)
        returns += [float(x) for x in record.values["return"]]
    theta = rounds.learner.theta
    assert returns == PINNED[antithetic][0]
    assert (float(theta[0]), float(theta.sum()), float(np.abs(theta).sum())) == PINNED[antithetic][1]
