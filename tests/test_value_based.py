"""DQL, EBCDQL and DAVIA: hand-computed updates, the trigger and upload conditions, message sizes,
learning on Simple Grid, refusal of unsuitable environments, rank-count invariance; ES on grids."""

import gymnasium as gym
import numpy as np
import pytest
from helpers import mpidrl, mpirun, write_config

from mpidrl import registry, rng, validate
from mpidrl.algorithms.davia import davia_gradients, linear_q, predicted_decreases, upload_threshold
from mpidrl.algorithms.qlearning import (
    SAMPLE_DTYPE,
    TRANSITION_DTYPE,
    EpsilonGreedy,
    exploration_rate,
    pack_trajectories,
    td_update,
    trigger,
    unpack_trajectory,
)
from mpidrl.config import ConfigError, load
from mpidrl.envs import make_env, observation_encoder, rollout, spec_of
from mpidrl.envs.episodes import Episodes
from mpidrl.envs.episodes import rollout as batch_rollout
from mpidrl.envs.grids import LEFT, STAY, shortest_path_return
from mpidrl.envs.pool import make_batch
from mpidrl.policies import MLP, LinearQ
from mpidrl.protocols import Context
from mpidrl.store import read_run

GRID = """
[run]
seed = 5
trials = {trials}
rounds = {rounds}
record_messages = true
[env]
id = "{env}"
gamma = 0.9
[agents]
n = {n}
[algo]
name = "{algo}"
"""


def grid_config(tmp_path, algo, rounds=40, trials=1, n=3, env="mpidrl/SimpleGrid-v0", name="c.toml"):
    return write_config(tmp_path / name, GRID.format(algo=algo, rounds=rounds, trials=trials, n=n, env=env))


def test_td_update_matches_hand_computation():
    q = np.zeros((3, 2))
    q[1] = [0.5, 2.0]
    s, a = np.array([0, 0, 1]), np.array([1, 1, 0])
    r, s2, terminal = np.array([-1.0, 1.0, 0.0]), np.array([1, 2, 1]), np.array([False, True, False])
    td_update(q, (s, a, r, s2, terminal), alpha=0.5, gamma=0.9)
    # (0, 1): deltas -1 + 0.9 * 2 = 0.8 and 1 (terminal, no bootstrap), mean 0.9; (1, 0): 0.9 * 2 - 0.5 = 1.3
    np.testing.assert_allclose(q, [[0.0, 0.45], [0.5 + 0.65, 2.0], [0.0, 0.0]])


def trajectory(states, actions, rewards, terminated):
    """One recorded episode."""
    steps, rewards = np.array([len(actions)]), np.array([rewards], float)
    return Episodes(
        rewards.sum(1), rewards.sum(1), steps, np.array([terminated]), np.array([states]), np.array([actions]), rewards
    )


def pack_trajectory(episode):
    return pack_trajectories(episode)[0]


def davia_gradient(model, w, states, actions, rewards, terminal, gamma, reg):
    g, index = davia_gradients(
        w[None], model.index, states[None], actions[None], rewards[None], np.array([len(actions)]),
        np.array([bool(terminal[-1])]), gamma, reg,
    )  # fmt: skip
    return g[0], index[0]


def predicted_decrease(g, index, step):
    return float(predicted_decreases(g[None], index[None], np.array([index.size]), step)[0])


def test_trajectory_messages_derive_s_next_and_shrink_with_the_episode():
    done = pack_trajectory(trajectory([0, 1, 6, 7], [2, 1, 2], [-1, -1, 0], True))
    assert done.dtype == TRANSITION_DTYPE and done.nbytes == 3 * 12  # s' is never sent twice
    s, a, r, s2, terminal = unpack_trajectory(done)
    np.testing.assert_array_equal(s, [0, 1, 6])
    np.testing.assert_array_equal(s2[:2], [1, 6])
    np.testing.assert_array_equal(terminal, [False, False, True])
    np.testing.assert_array_equal(a, [2, 1, 2])
    np.testing.assert_array_equal(r, [-1, -1, 0])
    cut = pack_trajectory(trajectory([0, 0, 5], [4, 1], [-1, -1], False))
    assert cut.nbytes == 3 * 12  # truncated: one state-only record carries s_T for the bootstrap
    s, a, r, s2, terminal = unpack_trajectory(cut)
    np.testing.assert_array_equal(s2, [0, 5])
    assert not terminal.any() and len(s) == 2


def trigger1(deltas, beta, rho, floor):
    """The trigger over one episode of |TD errors| ``deltas`` from L = 0."""
    mask, level = trigger(np.abs(np.array([deltas])), np.array([len(deltas)]), np.zeros(1), beta, rho, floor)
    return mask[0], float(level[0])


def test_ebcdql_trigger_updates_the_level_before_the_test():
    mask, level = trigger1([1.0, -0.8], beta=0.5, rho=1.3, floor=0.0)
    # L = 0.5 then 0.65: 1 >= 0.65 sends, 0.8 < 1.3 * 0.65 does not (testing before updating would send it)
    assert mask.tolist() == [True, False] and level == pytest.approx(0.65)
    mask, level = trigger1([1.0, 0.5, 2.0, 0.0], beta=0.5, rho=1.0, floor=0.1)
    assert mask.tolist() == [True, True, True, False] and level == pytest.approx(0.625)
    mask, _ = trigger1([0.05, 0.2], beta=0.5, rho=0.0, floor=0.1)
    assert mask.tolist() == [False, True]  # the floor applies even when rho L is smaller
    # episodes of a batch end at their own lengths: steps after the end neither send nor move L
    mask, level = trigger(np.array([[1.0, 0.5], [1.0, 9.0]]), np.array([2, 1]), np.zeros(2), 0.5, 1.0, 0.1)
    assert mask.tolist() == [[True, True], [True, False]] and level.tolist() == [0.5, 0.5]


def test_davia_gradient_and_upload_condition_match_hand_computation():
    model = LinearQ(2, 2)
    w = np.array([1.0, 0.5, 3.0, 2.0])  # Q[0] = (1, 0.5), Q[1] = (3, 2)
    g, features = davia_gradient(
        model, w, np.array([0, 1, 1]), np.array([1, 0]), np.array([-1.0, 0.0]), np.array([0, 1]), 0.9, 0.1
    )
    # residuals: 0.5 + 1 - 0.9 * 3 = -1.2 and 3 - 0 (terminal); g = (-0.6 e1 + 1.5 e2) + 0.1 w
    np.testing.assert_allclose(g, [0.1, -0.55, 1.8, 0.2])
    decrease = predicted_decrease(g, features, step=1.0)  # g.g - 1/2 g^T diag(0, .5, .5, 0) g
    assert decrease == pytest.approx(3.5925 - 0.5 * 1.77125)
    assert upload_threshold(2.7, 0.5, horizon=3, round=0) == pytest.approx(10.8)
    assert decrease < upload_threshold(2.7, 0.5, 3, 0) and decrease >= upload_threshold(2.7, 0.5, 3, 2)
    assert upload_threshold(2.7, 0.5, 3, 7) == 2.7


def test_successor_features_share_a_weight_between_actions_that_reach_the_same_cell():
    cfg = load(None, ['env.id="mpidrl/SimpleGrid-v0"', 'algo.name="davia"', 'algo.features="successor"'])
    model = linear_q(cfg, validate.check(cfg).env_spec)
    assert model.size == 25 == validate.check(cfg).d
    # from the corner (0, 0): left, up and stay stay in cell 0, down reaches cell 5, right cell 1
    assert model.index[0].tolist() == [0, 5, 1, 0, 0] and model.index[12].tolist() == [11, 17, 13, 7, 12]
    np.testing.assert_array_equal(model.phi[0, LEFT], model.phi[0, STAY])
    w = np.arange(25.0)
    np.testing.assert_array_equal(model.table(w), w[model.index])
    lake = load(None, ['env.id="FrozenLake-v1"', 'algo.name="davia"', 'algo.features="successor"'])
    model = linear_q(lake, validate.check(lake).env_spec)
    assert model.size == 16 and model.index[5].tolist() == [4, 9, 6, 1]  # left, down, right, up of (1, 1)


def test_davia_gradient_with_successor_features_matches_hand_computation():
    model = LinearQ(2, 2, "successor", successors=np.array([[0, 1], [0, 1]]))  # action a leads to cell a
    w = np.array([1.0, 3.0])  # Q(s, 0) = 1, Q(s, 1) = 3 in both states
    g, features = davia_gradient(
        model, w, np.array([0, 1, 1]), np.array([1, 1]), np.array([-1.0, 0.0]), np.array([0, 1]), 0.9, 0.1
    )
    # both steps use feature 1: residuals 3 + 1 - 0.9 * 3 = 1.3 and 3 (terminal); g = (0, 2.15) + 0.1 w
    np.testing.assert_allclose(g, [0.1, 2.45])
    assert features.tolist() == [1, 1]
    assert predicted_decrease(g, features, step=1.0) == pytest.approx(0.01 + 2.45**2 - 0.5 * 2.45**2)


def test_successor_features_need_a_grid_world():
    taxi = max(k for k in gym.registry if k.startswith("Taxi-"))  # Discrete states, not a grid world
    cfg = load(None, [f'env.id="{taxi}"', 'algo.name="davia"', 'algo.features="successor"'])
    with pytest.raises(ConfigError, match=f"algo.features: successor needs a grid world; {taxi}"):
        validate.check(cfg)


def test_greedy_ties_first_takes_the_lowest_tied_action():
    q = np.zeros((1, 25, 5))
    q[0, 0, [1, 2]] = 1.0  # down and right tie at the start; everywhere else all five tie
    runs = {}
    for first in (False, True):
        ties = "first" if first else "random"
        sets = ['env.id="mpidrl/SimpleGrid-v0"', "env.max_steps=6", 'algo.name="dql"', "algo.explore_start=0.0"]
        cfg = load(None, [*sets, "algo.explore_end=0.0", f'algo.greedy_ties="{ties}"'])
        policy = EpsilonGreedy(q, np.zeros(1, np.int64), [(0, 0)], 0, cfg)
        runs[first] = batch_rollout(make_batch(cfg.env, [0]), policy, 0.9, [0], record=True)
        runs[first, "draws"] = policy.draws[2][0].tolist()  # the tie draws are taken either way
    # first: down (1) from the start, then left (0) at every later cell, against the wall
    assert runs[True].actions[0].tolist() == [1, 0, 0, 0, 0, 0]
    assert runs[True].observations[0].tolist() == [0, 5, 5, 5, 5, 5, 5]
    assert runs[False].actions[0].tolist() != runs[True].actions[0].tolist() and runs[False].actions[0, 0] in (1, 2)
    assert runs[False, "draws"] == runs[True, "draws"]


def explore_episode(env, q, epsilon, gen, seed, gamma):
    """One epsilon-greedy episode as the specification draws it, one step at a time: per block of 64 steps,
    64 uniforms (explore?), 64 random actions, 64 uniforms (which of the tied greedy actions)."""
    s, _ = env.reset(seed=seed)
    states, actions, rewards, i = [int(s)], [], [], 64
    while True:
        if i == 64:
            explore, random_actions, ties, i = gen.random(64), gen.integers(q.shape[1], size=64), gen.random(64), 0
        best = np.flatnonzero(q[states[-1]] == q[states[-1]].max())
        a = int(random_actions[i]) if explore[i] < epsilon else int(best[int(ties[i] * len(best))])
        i += 1
        s, r, terminated, truncated, _ = env.step(a)
        states, actions, rewards = states + [int(s)], actions + [a], rewards + [float(r)]
        if terminated or truncated:
            return states, actions, rewards, terminated


@pytest.mark.parametrize("env_id", ["mpidrl/WindyGrid-v0", "mpidrl/FrozenLake5x5-v0", "Taxi-v4"])
def test_a_batch_of_epsilon_greedy_episodes_is_each_agents_own(env_id):
    """Trials, agents, streams and reset seeds of a batch give each pair the episode it would run alone,
    also past 64 steps (a second block of draws) and through Gymnasium instances (Taxi)."""
    sets = [f'env.id="{env_id}"', "env.max_steps=150", 'algo.name="dql"', "algo.explore_start=0.6", "run.seed=9"]
    cfg = load(None, [*sets, "algo.explore_end=0.6"])
    spec = validate.check(cfg).env_spec
    q = np.random.default_rng(2).integers(0, 3, size=(2, spec.discrete_obs, spec.n_actions)).astype(float)
    pairs = [(0, 0), (1, 0), (0, 4), (1, 4), (0, 7), (1, 7)]
    env_trial = np.array([t for t, _ in pairs])
    seeds = [rng.reset_seed(9, t, 3, a) for t, a in pairs]
    policy = EpsilonGreedy(q, env_trial, pairs, 3, cfg)
    got = batch_rollout(make_batch(cfg.env, [a for _, a in pairs]), policy, 0.9, seeds, record=True)
    assert got.steps.max() > 64 or "Lake" in env_id  # the lake's holes end episodes early
    for e, (trial, agent) in enumerate(pairs):
        gen = rng.generator(9, trial, rng.Stream.EXPLORE, 3, agent)
        states, actions, rewards, terminated = explore_episode(
            make_env(cfg.env, agent), q[trial], 0.6, gen, seeds[e], 0.9
        )
        t = len(actions)
        assert got.steps[e] == t and got.terminated[e] == terminated
        assert got.observations[e, : t + 1].tolist() == states and got.actions[e, :t].tolist() == actions
        assert got.rewards[e, :t].tolist() == rewards


def test_exploration_schedule():
    p = load(None, ['algo.name="davia"']).algo
    assert [exploration_rate(p, k) for k in (0, 10, 75, 500)] == pytest.approx([0.8, 0.7, 0.05, 0.05])


@pytest.mark.parametrize(
    "override, message",
    [
        ("algo.beta=0", "algo.beta: must be in (0, 1]"),
        ("algo.alpha=1.5", "algo.alpha: must be in (0, 1]"),
        ("algo.explore_end=0.9", "algo.explore_end: must be <= explore_start"),
    ],
)
def test_parameter_ranges_are_checked(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load(None, ['algo.name="ebcdql"', override])


def test_dql_reaches_the_optimal_return_on_simple_grid_within_300_rounds():
    cfg = load(None, ['algo.name="dql"', 'env.id="mpidrl/SimpleGrid-v0"', "env.gamma=0.9", "agents.n=5"])
    env_spec = validate.check(cfg).env_spec
    spec, ctx = registry.lookup("dql"), Context(cfg, 0, env_spec)
    learner, worker = spec.learner(ctx), spec.worker([ctx], range(5))
    env, encode = make_env(cfg.env), observation_encoder(env_spec)
    for r in range(300):
        worker.receive([learner.downlink()])
        learner.update(r, list(enumerate(worker.act(r, range(5)).messages)))
        if rollout(env, learner.actor(), encode, 0.9, 0).discounted == pytest.approx(shortest_path_return(0.9)):
            break
    else:
        pytest.fail("the greedy policy did not reach the optimal return in 300 rounds")
    assert shortest_path_return(0.9) == pytest.approx(-5.2170, abs=1e-4)


def test_tabular_algorithms_refuse_continuous_observations(tmp_path):
    cfg = write_config(tmp_path / "bad.toml", '[env]\nid = "CartPole-v1"\n[algo]\nname = "dql"\n')
    proc = mpidrl(["validate", str(cfg)], check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "dql needs a Discrete observation space" in proc.stderr
    for algo in ("ebcdql", "davia"):
        with pytest.raises(ConfigError, match=f"{algo} needs a Discrete observation space"):
            validate.check(load(None, [f'algo.name="{algo}"']))


def test_uplink_bytes_are_the_payloads_actually_sent(tmp_path):
    runs = {}
    for algo in ("dql", "ebcdql", "davia"):
        out = tmp_path / f"{algo}.h5"
        mpidrl(["run", str(grid_config(tmp_path, algo, rounds=60, name=f"{algo}.toml")), "--out", str(out)])
        runs[algo] = read_run(out)
    m = runs["dql"].metrics
    terminated = m["return"] == -(m["steps"] - 1)  # Simple Grid pays -1 on every step but the goal's
    assert terminated.any() and (m["uplink_messages"] == 1).all()
    np.testing.assert_array_equal(m["uplink_bytes"], 12 * (m["steps"] + ~terminated))
    e = runs["ebcdql"]
    np.testing.assert_array_equal(e.metrics["uplink_bytes"], SAMPLE_DTYPE.itemsize * e.diagnostics["triggered"])
    np.testing.assert_array_equal(e.metrics["uplink_messages"], e.diagnostics["triggered"] > 0)
    assert (e.diagnostics["triggered"] < e.metrics["steps"]).any()  # not every step is worth sending
    d = runs["davia"].metrics
    np.testing.assert_array_equal(d["uplink_bytes"], 125 * 8 * d["uplink_messages"])  # d = 25 states x 5 actions
    assert (d["downlink_bytes"] == 1000).all() and (m["downlink_bytes"] == 1000).all()


def test_ebcdql_worker_state_round_trips():
    cfg = load(None, ['algo.name="ebcdql"', 'env.id="mpidrl/SimpleGrid-v0"', "agents.n=3"])
    ctx = Context(cfg, 0, validate.check(cfg).env_spec)
    worker = registry.lookup("ebcdql").worker([ctx], [1, 2])
    worker.receive([np.zeros(125)])
    worker.act(0, [1, 2])
    state = worker.state_dict()
    assert state["agents"].tolist() == [1, 2] and state["trigger_level"].shape == (2,)
    other = registry.lookup("ebcdql").worker([ctx], [1, 2])
    other.load_state_dict(state)
    assert other.level.tolist() == worker.level.tolist() and (worker.level > 0).all()


def test_ebcdql_trigger_floor_can_be_the_exploration_rate():
    base = ['algo.name="ebcdql"', 'env.id="mpidrl/SimpleGrid-v0"', "agents.n=2", "algo.rho=1e-9", "algo.beta=1.0"]
    q = np.random.default_rng(3).uniform(-3, 0, 125)  # TD errors of every size

    def messages(*sets):
        cfg = load(None, [*base, *sets])
        worker = registry.lookup("ebcdql").worker([Context(cfg, 0, validate.check(cfg).env_spec)], [0, 1])
        worker.receive([q])
        return [m for k in (0, 60) for m in worker.act(k, [0, 1]).messages]

    # explore 0.8 in round 0 and 0.2 in round 60: the floor follows the rate, not eps_floor
    schedule = ["algo.explore_start=0.8", "algo.explore_end=0.2"]
    by_rate = messages(*schedule, 'algo.trigger_floor="exploration"', "algo.eps_floor=5.0")
    fixed = [messages(*schedule, f"algo.eps_floor={floor}") for floor in (0.8, 0.2)]
    for got, want in zip(by_rate, fixed[0][:2] + fixed[1][2:]):
        np.testing.assert_array_equal(got, want)
    assert sum(len(m) for m in fixed[1][:2]) > sum(len(m) for m in fixed[0][:2]) > 0  # the floor matters


@pytest.mark.mpi
@pytest.mark.parametrize("algo", ["dql", "ebcdql", "davia"])
def test_one_and_two_ranks_give_bit_identical_metrics(tmp_path, algo):
    cfg = grid_config(tmp_path, algo, rounds=30, trials=2, n=3, env="mpidrl/WindyGrid-v0")
    got = {}
    for np_ in (1, 2):
        out = tmp_path / f"r{np_}.h5"
        mpirun(np_, ["run", str(cfg), "--out", str(out)], timeout=90)
        got[np_] = read_run(out)
    for name, values in got[1].metrics.items():
        if name not in ("wall_time", "rank"):  # rank: where each agent ran
            np.testing.assert_array_equal(values, got[2].metrics[name], err_msg=name)
    for name, values in got[1].diagnostics.items():
        np.testing.assert_array_equal(values, got[2].diagnostics[name], err_msg=name)


def test_mlp_lookup_table_actor_matches_the_network_on_discrete_states():
    env = make_env(load(None, ['env.id="mpidrl/WindyGrid-v0"']).env)
    spec = spec_of(env)
    mlp = MLP(spec, (4, 4))
    theta = mlp.init(np.random.default_rng(0)) * 3
    act, encode = mlp.actor(theta), observation_encoder(spec)
    for s in range(25):
        assert act(encode(s)) == int(np.argmax(mlp.forward(theta, encode(s))))


@pytest.mark.parametrize("env", ["mpidrl/SimpleGrid-v0", "mpidrl/FrozenLake5x5-v0"])
def test_es_runs_on_grid_worlds_with_one_hot_states(tmp_path, env):
    cfg = grid_config(tmp_path, "es", rounds=4, n=4, env=env)
    out = tmp_path / "es.h5"
    mpidrl(["run", str(cfg), "--out", str(out), "--set", "policy.hidden=[4, 4]", "--set", 'optim.name="sgd"'])
    m = read_run(out).metrics
    assert (m["uplink_bytes"] == 8).all() and (m["downlink_bytes"] == 8 * (25 * 4 + 4 + 4 * 4 + 4 + 4 * 5 + 5)).all()
    low = -10.0 if "Simple" in env else 0.0
    assert np.isfinite(m["reward"]).all() and (m["reward"] >= low).all() and (m["steps"] <= 100).all()
