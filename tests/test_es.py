"""ES mathematics: keyed perturbations, the gradient estimator, fitness shaping, optimizers."""

import numpy as np
import pytest

from mpidrl import rng
from mpidrl.algorithms.es import ESLearner, centered_ranks, es_gradient, perturbation
from mpidrl.algorithms.optim import Optimizer
from mpidrl.config import OptimConfig, load
from mpidrl.envs import EnvSpec
from mpidrl.protocols import Context

SPEC = EnvSpec(obs_dim=4, discrete_obs=0, n_actions=2, act_dim=0)


def ctx(*overrides, trial=0):
    return Context(load(None, ["agents.n=6", *overrides]), trial, SPEC)


def test_perturbations_are_keyed_by_seed_trial_round_agent():
    c = ctx()
    a = perturbation(c, 3, 2, 10)
    np.testing.assert_array_equal(a, perturbation(c, 3, 2, 10))
    assert not np.array_equal(a, perturbation(c, 3, 1, 10))
    assert not np.array_equal(a, perturbation(c, 4, 2, 10))
    assert not np.array_equal(a, perturbation(ctx(trial=1), 3, 2, 10))
    assert not np.array_equal(a, perturbation(ctx("run.seed=9"), 3, 2, 10))
    np.testing.assert_array_equal(a, rng.generator(0, 0, rng.Stream.NOISE, 3, 2).standard_normal(10))


def test_antithetic_pairs_are_negatives():
    c = ctx("algo.antithetic=true")
    np.testing.assert_array_equal(perturbation(c, 5, 4, 7), -perturbation(c, 5, 5, 7))
    assert not np.array_equal(perturbation(c, 5, 4, 7), perturbation(c, 5, 6, 7))


def test_gradient_is_the_mean_over_the_received_set():
    c = ctx("algo.sigma=0.5")
    agents, returns = [0, 2, 5], np.array([1.0, -2.0, 4.0])
    expected = sum(f * perturbation(c, 1, a, 9) for a, f in zip(agents, returns)) / (3 * 0.5)
    np.testing.assert_allclose(es_gradient(c, 1, agents, returns, 9), expected)


def test_centered_ranks():
    np.testing.assert_allclose(centered_ranks(np.array([10.0, -3.0, 7.0])), [0.5, -0.5, 0.0])
    np.testing.assert_allclose(centered_ranks(np.array([2.0])), [0.0])


def test_learner_ascends_a_smooth_objective():
    """With F(theta) = -||theta - target||^2 the ES steps move theta towards the target.

    Antithetic pairs cancel the large constant part of F, which otherwise swamps the estimate.
    """
    c = ctx("agents.n=100", "algo.sigma=0.1", "algo.antithetic=true", "optim.lr=0.05", "policy.hidden=[2]")
    learner = ESLearner(c)
    target = np.linspace(-1, 1, learner.theta.size)
    start = np.linalg.norm(learner.theta - target)
    for r in range(60):
        msgs = []
        for i in range(c.n):
            f = -np.sum((learner.theta + 0.1 * perturbation(c, r, i, learner.theta.size) - target) ** 2)
            msgs.append((i, np.array([f])))
        learner.update(r, msgs)
    assert np.linalg.norm(learner.theta - target) < 0.3 * start


def test_no_messages_no_update():
    learner = ESLearner(ctx())
    before = learner.theta.copy()
    learner.update(0, [])
    np.testing.assert_array_equal(learner.theta, before)
    assert learner.optimizer.t == 0


def test_adam_first_step_and_sgd_momentum():
    adam = Optimizer(OptimConfig(name="adam", lr=0.1), 2)
    theta = adam.step(np.zeros(2), np.array([3.0, -0.5]))
    np.testing.assert_allclose(theta, [-0.1, 0.1], rtol=1e-6)  # bias-corrected first step is lr * sign
    sgd = Optimizer(OptimConfig(name="sgd", lr=0.1, momentum=0.5, l2=0.0), 1)
    t1 = sgd.step(np.array([1.0]), np.array([2.0]))  # v = 2
    t2 = sgd.step(t1, np.array([2.0]))  # v = 0.5 * 2 + 2 = 3
    np.testing.assert_allclose([t1[0], t2[0]], [0.8, 0.5])
    l2 = Optimizer(OptimConfig(name="sgd", lr=1.0, momentum=0.0, l2=0.5), 1)
    np.testing.assert_allclose(l2.step(np.array([2.0]), np.array([0.0])), [1.0])


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizer_state_round_trip(name):
    a = Optimizer(OptimConfig(name=name), 3)
    theta = a.step(np.ones(3), np.array([1.0, 2.0, 3.0]))
    b = Optimizer(OptimConfig(name=name), 3)
    b.load_state_dict(a.state_dict())
    g = np.array([0.3, -0.1, 0.2])
    np.testing.assert_array_equal(a.step(theta, g), b.step(theta, g))
