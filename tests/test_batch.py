"""Trials run together (``run.trial_batch``): array grids, policies and kernels reproduce each episode
exactly, and a trial's results depend neither on the batch size nor on the ranks."""

import io
import signal

import h5py
import numpy as np
import pytest
from helpers import mpirun, write_config
from test_reliability import start, wait_for_round

from mpidrl import validate
from mpidrl.algorithms.davia import davia_gradients, predicted_decreases
from mpidrl.algorithms.qlearning import DQLWorker
from mpidrl.comm import Runtime
from mpidrl.config import ConfigError, load
from mpidrl.envs import make_env, spec_of
from mpidrl.envs.episodes import rollout
from mpidrl.envs.grids import IDS
from mpidrl.envs.vector import GridBatch, GridTables
from mpidrl.log import Progress
from mpidrl.policies import MLP
from mpidrl.run import Experiment
from mpidrl.store import read_messages, read_run


@pytest.mark.parametrize(
    "env_id, kwargs",
    [(env_id, "{}") for env_id in IDS]
    + [(IDS[2], "{is_slippery = false}"), (IDS[1], '{wind = [["down", 0.3], ["left", 0.3]]}')],
)
def test_grid_batch_steps_like_the_gymnasium_environment(env_id, kwargs):
    cfg = load(None, [f'env.id="{env_id}"', "env.max_steps=30", f"env.kwargs={kwargs}"]).env
    tables = GridTables.supports(cfg)
    assert tables.random == (env_id != IDS[0] and "is_slippery" not in kwargs)
    seeds = [3, 17, 99, 12345]
    plan = np.random.default_rng(0).integers(5, size=(len(seeds), 30))
    clock = iter(range(30))

    def policy(active, states):
        return plan[active, next(clock)]

    ep = rollout(GridBatch(len(seeds), tables), policy, 0.9, seeds, record=True)
    for e, seed in enumerate(seeds):
        env = make_env(cfg)
        state, _ = env.reset(seed=seed)
        assert ep.observations[e, 0] == state
        for t in range(30):
            state, reward, terminated, truncated, _ = env.step(int(plan[e, t]))
            assert (ep.observations[e, t + 1], ep.rewards[e, t]) == (state, reward)
            if terminated or truncated:
                break
        assert ep.steps[e] == t + 1 and ep.terminated[e] == terminated


@pytest.mark.parametrize(
    "sets, exists",
    [
        ([], False),  # CartPole: its own array implementation
        (['env.id="FrozenLake-v1"', 'env.kwargs={desc = ["FFF", "FSH", "HFG"]}'], False),  # the start is not cell 0
        (['env.id="FrozenLake-v1"', 'env.kwargs={desc = ["SFF", "FHF", "FFG"]}'], True),
        (['env.id="Taxi-v4"'], False),
    ],
)
def test_grid_tables_exist_only_where_they_step_exactly(sets, exists):
    assert (GridTables.supports(load(None, sets).env) is not None) == exists


def test_greedy_table_rows_do_not_depend_on_the_batch():
    env = make_env(load(None, ['env.id="mpidrl/SimpleGrid-v0"']).env)
    mlp = MLP(spec_of(env), (4, 4))
    thetas = np.stack([mlp.init(np.random.default_rng(i)) * 3 for i in range(6)])
    table = mlp.greedy_table(thetas)
    for i in range(6):
        np.testing.assert_array_equal(mlp.greedy_table(thetas[i : i + 1])[0], table[i])
        assert [mlp.actor(thetas[i])(np.eye(25)[s]) for s in range(25)] == table[i].tolist()


def test_davia_gradients_of_a_batch_equal_those_of_single_episodes():
    gen = np.random.default_rng(1)
    w = gen.standard_normal((3, 125))
    states, actions = gen.integers(25, size=(3, 9)), gen.integers(5, size=(3, 8))
    rewards, steps, terminated = -np.ones((3, 8)), np.array([8, 3, 5]), np.array([True, False, True])
    features = np.arange(125).reshape(25, 5)
    g, index = davia_gradients(w, features, states, actions, rewards, steps, terminated, 0.9, 1e-3)
    decrease = predicted_decreases(g, index, steps, 1.0)
    for e in range(3):
        t = steps[e]
        g1, i1 = davia_gradients(
            w[e : e + 1], features, states[e : e + 1, : t + 1], actions[e : e + 1, :t], rewards[e : e + 1, :t],
            steps[e : e + 1], terminated[e : e + 1], 0.9, 1e-3,
        )  # fmt: skip
        np.testing.assert_array_equal(g1[0], g[e])
        assert predicted_decreases(g1, i1, steps[e : e + 1], 1.0)[0] == decrease[e]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (['algo.name="rennala-nigt"', 'env.id="CartPole-v1"'], "trials run together with es, espc, es-fixed, dql"),
        (['algo.name="dql"', 'time.mode="simulated"'], 'need time.mode = "real"'),
        (['algo.downlink="returns"'], 'need algo.downlink = "params"'),
    ],
)
def test_unsupported_batches_are_refused(overrides, message):
    cfg = load(None, ['env.id="mpidrl/SimpleGrid-v0"', "run.trial_batch=4", *overrides])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate.check(cfg)


GRID = """
[run]
seed = 3
trials = 4
rounds = 25
record_messages = true
[env]
id = "mpidrl/WindyGrid-v0"
gamma = 0.9
[agents]
n = 3
[algo]
name = "{algo}"
[policy]
hidden = [4]
"""


@pytest.mark.mpi
@pytest.mark.parametrize(
    "algo, sets",
    [
        ("dql", []),
        ("dql", ['algo.greedy_ties="first"', "algo.explore_start=0.1", "algo.explore_end=0.1"]),
        ("ebcdql", []),
        ("ebcdql", ['algo.trigger_floor="exploration"', "algo.explore_end=0.3"]),
        ("davia", []),
        ("davia", ['algo.features="successor"', 'env.kwargs={wind = [["down", 0.3], ["left", 0.3]]}']),
        ("es", []),
        ("es", ['env.id="CartPole-v1"', "algo.episodes=2", 'env.variation="pole_length"']),
        ("espc", ['env.id="CartPole-v1"', "algo.m=1", "algo.k=3"]),
        ("es-fixed", ['env.id="CartPole-v1"', "algo.m=2", 'env.variation="negate_obs"']),
        ("lapg", ['env.id="CartPole-v1"', "algo.H=20", "algo.max_staleness=2"]),
    ],
)
def test_batches_and_ranks_do_not_change_a_trials_results(tmp_path, algo, sets):
    """Every synchronous algorithm, natively batched or agent by agent (LAPG), on grids and CartPole."""
    cfg = write_config(tmp_path / "c.toml", GRID.format(algo=algo))
    runs, messages = {}, {}
    extra = [word for s in sets for word in ("--set", s)]
    for ranks, batch in ((1, 1), (2, 3), (3, 4)):
        out = tmp_path / f"r{ranks}b{batch}.h5"
        mpirun(ranks, ["run", str(cfg), "--out", str(out), "--set", f"run.trial_batch={batch}", *extra], timeout=120)
        runs[ranks, batch] = read_run(out)
        rows = read_messages(out)[["trial", "round", "direction", "agent", "kind", "nbytes"]]
        messages[ranks, batch] = np.sort(
            rows, order=["trial", "round", "direction", "agent"]
        )  # batches log round-major
    ref = runs[1, 1]
    assert (ref.metrics["uplink_messages"] > 0).any()
    for key, run in runs.items():
        for name, values in ref.metrics.items():
            if name not in ("wall_time", "rank"):  # rank: where each agent ran
                np.testing.assert_array_equal(values, run.metrics[name], err_msg=f"{key} {name}")
        for name, values in ref.diagnostics.items():
            np.testing.assert_array_equal(values, run.diagnostics[name], err_msg=f"{key} {name}")
        np.testing.assert_array_equal(messages[key], messages[1, 1])


@pytest.mark.parametrize(
    "algo, sets, d",
    [
        ("dql", [], 64),
        ("ebcdql", [], 64),
        ("davia", ["algo.lam=0.001"], 64),
        ("davia", ["algo.lam=0.001", 'algo.features="successor"'], 16),
        ("es", [], 16 * 4 + 4 + 4 * 4 + 4),  # one-hot of 16 states, 4 hidden units, 4 actions
        ("espc", ["algo.m=2", "algo.k=3"], 16 * 4 + 4 + 4 * 4 + 4),
    ],
)
def test_gymnasiums_4x4_frozen_lake_runs_every_grid_algorithm(tmp_path, algo, sets, d):
    sets = ['env.id="FrozenLake-v1"', "env.kwargs={is_slippery = false}", f'algo.name="{algo}"', *sets]
    sets += ["run.trials=2", "run.rounds=30", "agents.n=3", "env.gamma=0.9", "policy.hidden=[4]"]
    runs = []
    for batch in (1, 2):
        cfg = load(None, [*sets, f"run.trial_batch={batch}"])
        checked = validate.check(cfg)
        assert (checked.env_spec.discrete_obs, checked.env_spec.n_actions, checked.d) == (16, 4, d)
        out = tmp_path / f"{batch}.h5"
        Experiment(cfg, checked.env_spec, out, Runtime(), progress=Progress(0, 2, 30, stream=io.StringIO())).run()
        runs.append(read_run(out).metrics)
    for run in runs:
        assert ((run["return"] == 0) | (run["return"] == 1)).all()  # reward 1 at the goal, holes end with 0
        assert (run["downlink_bytes"] == 8 * d).all()  # the Q table, w or theta
        assert (run["uplink_messages"] > 0).any()
        for name in ("reward", "return", "steps", "uplink_messages", "uplink_bytes"):
            np.testing.assert_array_equal(run[name], runs[0][name], err_msg=name)


BATCHED = """
[run]
seed = 2
trials = 3
rounds = {rounds}
trial_batch = {batch}
checkpoint_every = 50
log_every = 0.01
[env]
id = "mpidrl/SimpleGrid-v0"
gamma = 0.9
[agents]
n = 4
[algo]
name = "ebcdql"
"""


@pytest.mark.mpi
def test_sigterm_stops_a_batch_and_resume_equals_trials_run_one_by_one(tmp_path):
    ref, out = tmp_path / "ref.h5", tmp_path / "stopped.h5"
    mpirun(1, ["run", str(write_config(tmp_path / "one.toml", BATCHED.format(rounds=300, batch=1))), "--out", str(ref)])
    cfg = write_config(tmp_path / "batch.toml", BATCHED.format(rounds=300, batch=2))
    proc = start(2, ["run", str(cfg), "--out", str(out)])
    wait_for_round(proc, 2, 30)  # progress lines name the batch: "trials 1-2/3 round ..."
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "interrupted" and f.attrs["trials_done"] in (0, 2)
    mpirun(3, ["run", "--resume", str(out)], timeout=120)
    got, want = read_run(out), read_run(ref)
    assert got.attrs["status"] == "complete"
    for name, values in want.metrics.items():
        if name not in ("wall_time", "rank"):  # rank: where each agent ran
            np.testing.assert_array_equal(got.metrics[name], values, err_msg=name)


def test_a_failing_batch_marks_the_run_file_failed(tmp_path, monkeypatch):
    cfg = load(None, ['env.id="mpidrl/SimpleGrid-v0"', 'algo.name="dql"', "run.trials=4", "run.trial_batch=2"])
    env_spec = validate.check(cfg).env_spec
    act = DQLWorker.act

    def failing(self, round, agents):
        if self.contexts[0].trial == 2 and round == 3:
            raise RuntimeError("injected failure")
        return act(self, round, agents)

    monkeypatch.setattr(DQLWorker, "act", failing)
    out = tmp_path / "r.h5"
    with pytest.raises(RuntimeError, match="injected failure"):
        Experiment(cfg, env_spec, out, Runtime(), progress=Progress(0, 4, 100, stream=io.StringIO(), bar=False)).run()
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "failed" and f.attrs["trials_done"] == 2
        assert np.isfinite(f["metrics/reward"][:2]).all() and np.isfinite(f["metrics/reward"][2:, :3]).all()
