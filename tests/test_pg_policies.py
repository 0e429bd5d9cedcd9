"""Stochastic policies and the GPOMDP estimator: hand-written gradients against finite differences."""

import gymnasium as gym
import numpy as np
import pytest

from mpidrl.algorithms.pg import gpomdp, rewards_to_go, sample_trajectories
from mpidrl.envs import EnvSpec, batch_encoder, make_env, observation_encoder, spec_of
from mpidrl.envs.pool import make_batch
from mpidrl.envs.vector import GymBatch
from mpidrl.policies import CategoricalMLP, GaussianMLP
from mpidrl.policies.stochastic import MIN_STD


def one_agent(env, pol, theta, encode, horizon, seed, rng):
    """A trajectory the plain way: one environment, one observation and one draw a step (the reference
    the batched sampler must reproduce bit for bit)."""
    obs, _ = env.reset(seed=seed)
    xs, acts, rewards = [], [], []
    for _ in range(horizon):
        x = encode(obs)
        z = pol.forward(theta, x)
        if isinstance(pol, CategoricalMLP):
            cdf = np.cumsum(np.exp(z - z.max()))
            a = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), cdf.size - 1)
            recorded = action = a
        else:
            k = pol.k
            recorded = z[:k] + (np.logaddexp(0.0, z[k:]) + MIN_STD) * rng.standard_normal(k)
            action = pol.squash(recorded)
        obs, reward, terminated, truncated, _ = env.step(action)
        xs.append(x)
        acts.append(recorded)
        rewards.append(float(reward))
        if terminated or truncated:
            break
    return np.array(xs), np.array(acts), np.array(rewards)


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
    u = pol.batch_sampler(np.broadcast_to(theta, (9, pol.size)), [rng] * 9)(np.arange(9), obs)
    a = pol.env_actions(u)
    assert u.shape == a.shape == (9, 2) and np.all(a >= spec.act_low) and np.all(a <= spec.act_high)


def test_rewards_to_go_keep_the_discount_from_the_start():
    np.testing.assert_allclose(rewards_to_go(np.array([1.0, 2.0, 4.0]), 0.5), [1 + 1 + 1, 1 + 1, 1])


def test_gpomdp_is_the_weighted_sum_of_score_functions():
    env = gym.make("CartPole-v1")
    spec = EnvSpec(4, 0, 2, 0)
    pol = CategoricalMLP(spec, (8,))
    theta = pol.init(np.random.default_rng(3))

    def sample(rng):
        return sample_trajectories(GymBatch([env]), pol, theta[None], [rng], batch_encoder(spec), 50, [7])[0]

    traj = sample(np.random.default_rng(4))
    assert 1 <= traj.steps <= 50
    g = gpomdp(pol, theta, traj, 0.9)
    w = rewards_to_go(traj.rewards, 0.9)
    want = _fd_grad(lambda th: float(w @ pol.log_prob(th, traj.obs, traj.actions)), theta)
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)
    # the same seed and generator give the same trajectory
    again = sample(np.random.default_rng(4))
    np.testing.assert_array_equal(again.actions, traj.actions)


@pytest.mark.parametrize(
    "env_id, variation, horizon",
    [
        ("CartPole-v1", "none", 60),  # the native array CartPole
        ("CartPole-v1", "negate_obs", 500),  # Gymnasium instances, agents of two kinds
        ("Hopper-v5", "none", 200),  # a Gaussian policy over a box (MuJoCo)
        ("mpidrl/FrozenLake5x5-v0", "none", 30),  # one-hot states
    ],
)
def test_a_batch_of_agents_samples_what_each_agent_would_alone(env_id, variation, horizon):
    """Agents stepping together, each at its own parameters and with its own generator, give each agent's
    trajectory of the plain per-agent loop bit for bit, whatever the batch, including when episodes end
    at different steps."""
    from mpidrl.config import load

    cfg = load(None, [f'env.id="{env_id}"', f'env.variation="{variation}"'])
    spec = spec_of(make_env(cfg.env, 0))
    pol = (CategoricalMLP if spec.discrete_actions else GaussianMLP)(spec, (8, 8))
    agents = [0, 1, 2, 3, 4, 5]
    thetas = np.stack([pol.init(np.random.default_rng(a)) * (1 + a) for a in agents])
    seeds = [11 * a + 3 for a in agents]
    batch = make_batch(cfg.env, agents)
    got = sample_trajectories(
        batch, pol, thetas, [np.random.default_rng(100 + a) for a in agents], batch_encoder(spec), horizon, seeds
    )
    assert len({t.steps for t in got}) > 1  # episodes of different lengths
    for a, traj in zip(agents, got):
        env = make_env(cfg.env, a)
        gen = np.random.default_rng(100 + a)
        want = one_agent(env, pol, thetas[a], observation_encoder(spec), horizon, seeds[a], gen)
        for name, value in zip(("obs", "actions", "rewards"), want):
            np.testing.assert_array_equal(getattr(traj, name), value, err_msg=f"agent {a}: {name}")
            assert getattr(traj, name).dtype == value.dtype


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
