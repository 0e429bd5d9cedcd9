"""Stochastic policies and the GPOMDP estimator: hand-written gradients against finite differences."""

import gymnasium as gym
import numpy as np
import pytest

from mpidrl.algorithms.pg import gpomdp, rewards_to_go, sample_trajectory
from mpidrl.envs import EnvSpec, observation_encoder
from mpidrl.policies import CategoricalMLP, GaussianMLP


def _fd_grad(f, theta, eps=1e-6):
    g = np.zeros_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = eps
        g[j] = (f(theta + e) - f(theta - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_categorical_grad_matches_finite_differences(activation):
    spec = EnvSpec(obs_dim=3, discrete_obs=0, n_actions=4, act_dim=0)
    pol = CategoricalMLP(spec, (5, 4), activation)
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(pol.size)
    obs, acts, w = rng.standard_normal((7, 3)), rng.integers(0, 4, 7), rng.standard_normal(7)
    got = pol.grad_log_prob(theta, obs, acts, w)
    want = _fd_grad(lambda th: float(w @ pol.log_prob(th, obs, acts)), theta)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # log-probabilities are normalised
    p = np.exp([pol.log_prob(theta, obs[:1], np.array([a]))[0] for a in range(4)])
    assert p.sum() == pytest.approx(1.0)


def test_gaussian_grad_matches_finite_differences():
    spec = EnvSpec(3, 0, 0, 2, np.array([-1.0, -2.0]), np.array([1.0, 3.0]))
    pol = GaussianMLP(spec, (6, 5))
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(pol.size)
    obs, u, w = rng.standard_normal((9, 3)), rng.standard_normal((9, 2)), rng.standard_normal(9)
    got = pol.grad_log_prob(theta, obs, u, w)
    want = _fd_grad(lambda th: float(w @ pol.log_prob(th, obs, u)), theta)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    u0, a0 = pol.sample(theta, obs[0], rng)
    assert np.all(a0 >= spec.act_low) and np.all(a0 <= spec.act_high)
    np.testing.assert_allclose(pol.squash(u0), a0)


def test_rewards_to_go_keep_the_discount_from_the_start():
    np.testing.assert_allclose(rewards_to_go(np.array([1.0, 2.0, 4.0]), 0.5), [1 + 1 + 1, 1 + 1, 1])


def test_gpomdp_is_the_weighted_sum_of_score_functions():
    env = gym.make("CartPole-v1")
    spec = EnvSpec(4, 0, 2, 0)
    pol = CategoricalMLP(spec, (8,))
    theta = pol.init(np.random.default_rng(3))
    traj = sample_trajectory(env, pol, theta, observation_encoder(spec), 50, 7, np.random.default_rng(4))
    assert 1 <= traj.steps <= 50
    g = gpomdp(pol, theta, traj, 0.9)
    w = rewards_to_go(traj.rewards, 0.9)
    want = _fd_grad(lambda th: float(w @ pol.log_prob(th, traj.obs, traj.actions)), theta)
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)
    # the same seed and generator give the same trajectory
    again = sample_trajectory(env, pol, theta, observation_encoder(spec), 50, 7, np.random.default_rng(4))
    np.testing.assert_array_equal(again.actions, traj.actions)


def test_negate_obs_and_pole_length_variations():
    from mpidrl.config import load
    from mpidrl.envs import make_env, spec_of

    cfg = load(None, ['env.variation="negate_obs"'])
    even, odd = make_env(cfg.env, 0), make_env(cfg.env, 1)
    assert spec_of(even).obs_dim == spec_of(odd).obs_dim == 5
    a, b = even.reset(seed=4)[0], odd.reset(seed=4)[0]
    np.testing.assert_allclose(b[:4], -a[:4])
    assert (a[4], b[4]) == (0.0, 1.0) and odd.observation_space.contains(b)
    cfg = load(None, ['env.variation="pole_length"'])
    assert [make_env(cfg.env, i).unwrapped.length for i in range(5)] == [0.5, 0.75, 1.0, 1.25, 0.5]
