"""Environments stepped together: the array CartPole is Gymnasium's CartPole-v1, episode for episode."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from mpidrl.config import load
from mpidrl.envs import make_env
from mpidrl.envs.episodes import rollout
from mpidrl.envs.pool import make_batch
from mpidrl.envs.vector import CartPoleBatch, GridBatch, GymBatch


def test_the_array_cartpole_reproduces_10000_gymnasium_episodes_bit_for_bit():
    """10 000 episodes under random actions (half of them with long poles, as the pole_length variation
    makes them): every observation, reward, termination and truncation equal, and no episode cut short."""
    episodes, width = 10_000, 500
    rng = np.random.default_rng(2026)
    seeds = rng.integers(0, 2**31 - 1, episodes).tolist()
    # actions that balance a while: push towards the pole's lean, with noise, so episodes run long
    flips = rng.random((episodes, width)) < 0.15
    lengths = np.where(np.arange(episodes) % 2 == 0, 0.5, 1.25)
    batch = CartPoleBatch(episodes, cap=500, lengths=lengths)
    obs, _ = batch.reset(seed=seeds)
    reference = []
    for e in range(episodes):
        env = gym.make("CartPole-v1")
        env.unwrapped.length = lengths[e]
        env.unwrapped.polemass_length = env.unwrapped.masspole * lengths[e]
        first, _ = env.reset(seed=seeds[e])
        assert np.array_equal(first, obs[e])
        reference.append(env)
    active, t, steps = np.arange(episodes), 0, 0
    while active.size:
        actions = np.where(obs[:, 2] > 0, 1, 0) ^ flips[active, t]
        obs, reward, terminated, truncated = batch.step_active(active, actions)
        for j, e in enumerate(active.tolist()):
            want = reference[e].step(int(actions[j]))
            assert np.array_equal(want[0], obs[j]) and want[1:4] == (reward[j], terminated[j], truncated[j]), (e, t)
        steps += active.size
        keep = ~(terminated | truncated)
        active, obs, t = active[keep], obs[keep], t + 1
    assert steps > 10 * episodes  # episodes of more than a few steps: the dynamics, not only the reset


def test_one_cartpole_alone_steps_on_python_floats_with_the_same_bits():
    """A batch whose last episode runs alone steps it on Python floats (``CartPoleBatch._step_one``): 300
    episodes in batches of one, every step of them down that path, equal Gymnasium's bit for bit."""
    rng = np.random.default_rng(7)
    steps = 0
    for e in range(300):
        length = 0.5 if e % 2 else 1.25
        batch, env = CartPoleBatch(1, cap=500, lengths=[length]), gym.make("CartPole-v1")
        env.unwrapped.length, env.unwrapped.polemass_length = length, env.unwrapped.masspole * length
        seed = int(rng.integers(2**31 - 1))
        obs, _ = batch.reset(seed=[seed])
        assert np.array_equal(env.reset(seed=seed)[0], obs[0])
        active, done = np.arange(1), False
        while not done:
            action = int(obs[0, 2] > 0) ^ int(rng.random() < 0.15)
            obs, reward, terminated, truncated = batch.step_active(active, np.array([action]))
            want = env.step(action)
            assert np.array_equal(want[0], obs[0]) and want[1:4] == (reward[0], terminated[0], truncated[0])
            assert obs.dtype == np.float32 and terminated.dtype == bool
            done, steps = bool(terminated[0] or truncated[0]), steps + 1
    assert steps > 300 * 20


def test_rollout_returns_and_the_generic_batch_agree_with_single_episodes():
    cfg = load(None, ['env.id="CartPole-v1"', "env.gamma=0.99", "env.max_steps=60"]).env
    agents, seeds = [0, 1, 2, 3], [11, 12, 13, 14]
    policy = lambda active, obs: (obs[:, 3] > 0).astype(np.int64)  # noqa: E731
    native = rollout(make_batch(cfg, agents), policy, 0.99, seeds)
    generic = rollout(GymBatch([make_env(cfg, a) for a in agents]), policy, 0.99, seeds)
    for e, agent in enumerate(agents):
        env, total, discounted, discount, steps = make_env(cfg, agent), 0.0, 0.0, 1.0, 0
        obs, _ = env.reset(seed=seeds[e])
        while True:
            obs, r, term, trunc, _ = env.step(int(obs[3] > 0))
            discounted += discount * float(r)
            total += float(r)
            discount *= 0.99
            steps += 1
            if term or trunc:
                break
        for got in (native, generic):
            assert (got.discounted[e], got.undiscounted[e], got.steps[e]) == (discounted, total, steps)
    assert native.steps.max() == 60  # the cap of env.max_steps truncates


@pytest.mark.parametrize("variation, native", [("none", True), ("pole_length", True), ("negate_obs", False)])
def test_make_batch_chooses_the_array_implementation_where_it_exists(variation, native):
    cfg = load(None, [f'env.variation="{variation}"']).env
    assert isinstance(make_batch(cfg, [0, 1]), CartPoleBatch) == native
    for env_id, kind in (("mpidrl/SimpleGrid-v0", GridBatch), ("FrozenLake-v1", GridBatch), ("Taxi-v4", GymBatch)):
        assert type(make_batch(load(None, [f'env.id="{env_id}"']).env, [0])) is kind
    lake = load(None, ['env.id="FrozenLake-v1"', 'env.kwargs={desc = ["FFF", "FSH", "HFG"]}']).env
    assert type(make_batch(lake, [0])) is GymBatch  # the start is not cell 0


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Ant-v5"])
def test_the_batched_policy_acts_as_each_agents_own(env_id):
    from mpidrl.envs import spec_of
    from mpidrl.policies import MLP

    env = make_env(load(None, [f'env.id="{env_id}"']).env)
    spec = spec_of(env)
    policy = MLP(spec, (8, 8))
    rng = np.random.default_rng(5)
    thetas = rng.normal(size=(40, policy.size))
    obs = np.stack([env.reset(seed=s)[0] for s in range(40)])
    forward = policy.batch_actor(thetas)
    for active in (np.arange(40), np.arange(0, 40, 3), np.array([7])):  # all, after some ended, the last one
        got = forward(active, obs[active])
        for j, e in enumerate(active.tolist()):
            want = policy.actor(thetas[e], raw=True)(obs[e])
            assert np.array_equal(got[j], want)


def test_names_moved_out_of_vector_are_still_importable_from_it():
    """docs/extending.md once named ``mpidrl.envs.vector.EnvPool`` and ``.rollout``: user code keeps working."""
    import mpidrl.envs.vector as vector
    from mpidrl.envs import episodes, pool

    assert vector.EnvPool is pool.EnvPool and vector.make_batch is pool.make_batch
    assert vector.rollout is episodes.rollout and vector.Episodes is episodes.Episodes
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        vector.nothing  # noqa: B018
