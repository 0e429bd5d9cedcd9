"""The MLP policy on a flat parameter vector."""

import numpy as np
import pytest

from mpidrl.algorithms.es import ESLearner
from mpidrl.config import load
from mpidrl.envs import EnvSpec, make_env, spec_of
from mpidrl.policies import MLP, make_policy, make_stochastic_policy
from mpidrl.protocols import Context

DISCRETE = EnvSpec(obs_dim=4, discrete_obs=0, n_actions=2, act_dim=0)
BOX = EnvSpec(
    obs_dim=3, discrete_obs=0, n_actions=0, act_dim=2, act_low=np.array([-1.0, 0.0]), act_high=np.array([1.0, 4.0])
)


def test_parameter_count_and_views_share_memory():
    mlp = MLP(DISCRETE, (8, 8))
    assert mlp.size == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2
    theta = np.zeros(mlp.size)
    (w0, b0), _, (w2, b2) = mlp.layers(theta)
    w0[1, 2] = 3.0
    b2[1] = 5.0
    assert theta[1 * 8 + 2] == 3.0 and theta[-1] == 5.0
    with pytest.raises(ValueError, match="needs"):
        mlp.layers(np.zeros(mlp.size + 1))


def test_forward_matches_hand_computation():
    mlp = MLP(DISCRETE, (3,), "tanh")
    theta = np.random.default_rng(0).standard_normal(mlp.size)
    (w0, b0), (w1, b1) = mlp.layers(theta)
    x = np.array([0.1, -0.2, 0.3, 0.5])
    expected = np.tanh(x @ w0 + b0) @ w1 + b1
    np.testing.assert_allclose(mlp.forward(theta, x), expected)
    assert mlp.actor(theta)(x) == int(np.argmax(expected))
    batch = np.stack([x, -x])
    assert mlp.forward(theta, batch).shape == (2, 2)


def test_continuous_actions_stay_in_the_box():
    mlp = MLP(BOX, (4,), "relu")
    theta = 10 * np.random.default_rng(1).standard_normal(mlp.size)
    act = mlp.actor(theta)
    for x in np.random.default_rng(2).standard_normal((50, 3)):
        a = act(x)
        assert np.all(a >= BOX.act_low) and np.all(a <= BOX.act_high)


def test_init_is_scaled_by_fan_in_and_biases_are_zero():
    mlp = MLP(DISCRETE, (400,))
    theta = mlp.init(np.random.default_rng(3))
    (w0, b0), (w1, b1) = mlp.layers(theta)
    assert np.all(b0 == 0) and np.all(b1 == 0)
    assert abs(w0.std() - 1 / np.sqrt(4)) < 0.05
    assert abs(w1.std() - 1 / np.sqrt(400)) < 0.01


def test_zeros_init_gives_zero_parameters_for_every_policy_and_the_es_learner():
    cfg = load(None, ['policy.init="zeros"', "policy.hidden=[5]"])
    for policy in (
        make_policy(cfg.policy, DISCRETE),
        *(make_stochastic_policy(cfg.policy, s) for s in (DISCRETE, BOX)),
    ):
        np.testing.assert_array_equal(policy.init(np.random.default_rng(0)), np.zeros(policy.size))
    random = make_policy(load(None, ["policy.hidden=[5]"]).policy, DISCRETE).init(np.random.default_rng(0))
    assert np.count_nonzero(random) == 4 * 5 + 5 * 2  # the weights, not the biases
    learner = ESLearner(Context(cfg, 0, spec_of(make_env(cfg.env))))
    assert learner.theta.size == 4 * 5 + 5 + 5 * 2 + 2 and not learner.theta.any()
