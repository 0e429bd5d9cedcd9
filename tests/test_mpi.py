"""MPI runs at several process counts: results do not depend on how agents are spread over ranks."""

import h5py
import numpy as np
import pytest
from helpers import ROOT, mpirun, write_config

CONFIG = """
[run]
seed = 11
trials = 2
rounds = 4
record_messages = true
eval_every = 2
eval_episodes = 2
[agents]
n = 7
[algo]
name = "es"
sigma = 0.1
fitness_shaping = "centered_rank"
[policy]
hidden = [5]
"""
DETERMINISTIC = [
    "reward",
    "return",
    "episodes",
    "steps",
    "uplink_messages",
    "uplink_bytes",
    "downlink_bytes",
    "eval_return",
    "sim_time",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mpi")
    cfg = write_config(tmp / "c.toml", CONFIG)
    out = {}
    for nprocs in (1, 2, 3):
        path = tmp / f"run{nprocs}.h5"
        mpirun(nprocs, ["run", str(cfg), "--out", str(path)], timeout=120)
        out[nprocs] = path
    return out


def read(path):
    with h5py.File(path, "r") as f:
        return {k: f["metrics"][k][()] for k in f["metrics"]}, f["messages"][()], dict(f.attrs)


@pytest.mark.mpi
def test_metrics_are_bit_identical_at_1_2_and_3_ranks(runs):
    ref, ref_log, _ = read(runs[1])
    for nprocs in (2, 3):
        got, log, attrs = read(runs[nprocs])
        assert attrs["world_size"] == nprocs and attrs["status"] == "complete"
        for name in DETERMINISTIC:
            np.testing.assert_array_equal(got[name], ref[name], err_msg=f"{name} differs at -n {nprocs}")
        for field in ("trial", "round", "agent", "direction", "kind", "nbytes"):
            np.testing.assert_array_equal(log[field], ref_log[field])


@pytest.mark.mpi
def test_bytes_are_exactly_what_crossed_the_wire(runs):
    metrics, log, attrs = read(runs[2])
    d = (4 * 5 + 5) + (5 * 2 + 2)
    assert np.all(metrics["uplink_messages"] == 1)
    assert np.all(metrics["uplink_bytes"] == 8)  # one float64 return per agent per round
    assert np.all(metrics["downlink_bytes"] == 8 * d)  # theta broadcast to every agent
    up = log[log["direction"] == 0]
    down = log[log["direction"] == 1]
    assert len(up) == len(down) == 2 * 4 * 7
    assert set(up["nbytes"]) == {8} and set(down["nbytes"]) == {8 * d}
    assert set(up["kind"]) == {b"return"} and set(down["kind"]) == {b"params"}
    assert np.isfinite(metrics["eval_return"][:, 1::2]).all() and np.isnan(metrics["eval_return"][:, 0::2]).all()


@pytest.mark.mpi
def test_bad_config_under_mpi_exits_2_on_every_rank(tmp_path):
    cfg = write_config(tmp_path / "c.toml", CONFIG)
    proc = mpirun(
        3, ["run", str(cfg), "--out", str(tmp_path / "x.h5"), "--set", "algo.sigma=0"], check=False, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.count("algo.sigma: must be > 0") == 1  # rank 0 alone speaks
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.mpi
def test_the_memory_check_counts_the_agents_of_this_node(tmp_path):
    """With MPICH emulating two nodes of two ranks, agents that fit on each node but not on one pass; rank 0
    alone checks (every rank re-checking with the whole job on its node refused such a run)."""
    from mpidrl.envs import available_memory

    mb = 256
    n = int(1.5 * available_memory() / (mb * 2**20))  # 1.5x this machine's memory, 0.75x per emulated node
    cfg = write_config(tmp_path / "c.toml", CONFIG)
    args = ["run", str(cfg), "--set", f"agents.n={n}", "--set", 'env.id="heavy_env:Heavy-v0"', "--set", "run.trials=1"]
    args += ["--set", "run.rounds=1", "--set", 'agents.placement="blocks"', "--set", f"env.kwargs={{mb = {mb}}}"]
    env = {"PYTHONPATH": str(ROOT / "tests"), "MPIR_CVAR_NUM_CLIQUES": "1"}
    one_node = mpirun(4, [*args, "--out", str(tmp_path / "one.h5")], check=False, timeout=120, env=env)
    assert one_node.returncode == 2 and "use fewer agents or more nodes" in one_node.stderr
    two_nodes = {**env, "MPIR_CVAR_NUM_CLIQUES": "2"}
    mpirun(4, [*args, "--out", str(tmp_path / "two.h5")], timeout=120, env=two_nodes)
    with h5py.File(tmp_path / "two.h5") as f:
        assert f.attrs["status"] == "complete" and f.attrs["n_agents"] == n
