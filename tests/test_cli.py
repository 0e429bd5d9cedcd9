"""The command line in one process: validate, run, summary, plot, and bad input refused with exit 2."""

import os

import h5py
import numpy as np
import pytest
from helpers import mpidrl, write_config

TINY = """
[run]
seed = 3
trials = 2
rounds = 3
[env]
id = "CartPole-v1"
[agents]
n = 4
[algo]
name = "es"
[policy]
hidden = [4]
"""


@pytest.fixture
def tiny(tmp_path):
    return write_config(tmp_path / "tiny.toml", TINY)


def test_validate_accepts_and_rejects(tiny):
    ok = mpidrl(["validate", str(tiny)])
    assert "valid" in ok.stdout
    bad = mpidrl(["validate", str(tiny), "--set", "algo.sigma=-1"], check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "mpidrl: error: algo.sigma: must be > 0, got -1.0"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (['env.id="NoSuchEnv-v0"'], "env.id: unknown environment 'NoSuchEnv-v0'"),
        (["env.kwargs.bogus=1"], "env.kwargs: CartPole-v1 does not accept them"),
        (['time.h="sqrt(-i)"'], "time.h: formula 'sqrt(-i)' fails"),
        (["time.h=\"__import__('os')\""], "time.h: unknown name '__import__'"),
        (["time.kappa=[1.0, 2.0]"], "time.kappa: list has 2 entries, expected one per agent (4)"),
        (['time.kappa="sqrt(i) * D"'], "time.kappa: unknown name 'D' in 'sqrt(i) * D'"),
        (['time.kappa="sqrt(20 - d)"'], "time.kappa: formula 'sqrt(20 - d)' fails"),  # d = 30 here
    ],
)
def test_validate_reports_environment_and_time_problems(tiny, overrides, message):
    args = ["validate", str(tiny)]
    for o in overrides:
        args += ["--set", o]
    proc = mpidrl(args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_run_writes_a_complete_run_file(tiny, tmp_path):
    out = tmp_path / "sub" / "run.h5"
    proc = mpidrl(["run", str(tiny), "--out", str(out)])
    assert "| es | CartPole-v1 | 4 | 2 | 3 | complete |" in proc.stdout
    with h5py.File(out, "r") as f:
        assert f.attrs["schema"] == "mpidrl/1" and f.attrs["status"] == "complete"
        assert f.attrs["world_size"] == 1 and f.attrs["n_agents"] == 4 and f.attrs["rounds_done"] == 3
        assert f["metrics/reward"].shape == (2, 3, 4)
        assert np.all(f["metrics/uplink_bytes"][()] == 8) and np.all(f["metrics/uplink_messages"][()] == 1)
        d = (4 * 4 + 4) + (4 * 2 + 2)
        assert np.all(f["metrics/downlink_bytes"][()] == 8 * d)
        assert np.all(f["metrics/steps"][()] >= 8) and np.all(f["metrics/episodes"][()] == 1)
        assert np.all(np.diff(f["metrics/wall_time"][0]) > 0)
        assert np.isnan(f["metrics/sim_time"][()]).all()
    summary = mpidrl(["summary", str(out)])
    assert "complete" in summary.stdout
    fig = tmp_path / "fig.png"
    mpidrl(["plot", str(out), str(out), "-o", str(fig)])
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_output_needs_overwrite_and_bad_config_leaves_no_file(tiny, tmp_path):
    out = tmp_path / "run.h5"
    out.write_text("precious")
    proc = mpidrl(["run", str(tiny), "--out", str(out)], check=False)
    assert proc.returncode == 2 and "exists; pass --overwrite" in proc.stderr
    assert out.read_text() == "precious"
    fresh = tmp_path / "fresh.h5"
    proc = mpidrl(["run", str(tiny), "--out", str(fresh), "--set", "agents.n=0"], check=False)
    assert proc.returncode == 2 and "agents.n: must be >= 1" in proc.stderr
    assert not fresh.exists()


def test_summary_and_plot_refuse_foreign_files(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"junk")
    for cmd in (["summary", str(junk)], ["plot", str(junk), "-o", str(tmp_path / "f.png")]):
        proc = mpidrl(cmd, check=False)
        assert proc.returncode == 2 and "not a readable HDF5 file" in proc.stderr


def test_simulated_clock_of_a_synchronous_run(tiny, tmp_path):
    out = tmp_path / "sim.h5"
    mpidrl(
        [
            "run",
            str(tiny),
            "--out",
            str(out),
            "--set",
            'time.mode="simulated"',
            "--set",
            'time.h="i"',
            "--set",
            "time.kappa=0.5",
        ]
    )
    with h5py.File(out, "r") as f:
        # each round waits for the slowest agent (h_4 = 4 per episode) and then communicates (0.5)
        np.testing.assert_allclose(f["metrics/sim_time"][0], [4.5, 9.0, 13.5])


def test_synchronous_simulated_clock_with_a_formula_of_d(tiny, tmp_path):
    out = tmp_path / "sim.h5"
    sets = ['time.mode="simulated"', 'time.h="i"', 'time.kappa="d / 60"']  # CartPole 4 -> 4 -> 2: d = 30
    mpidrl(["run", str(tiny), "--out", str(out), *(a for s in sets for a in ("--set", s))])
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(f["metrics/sim_time"][0], [4.5, 9.0, 13.5])


def test_info_and_module_entry_point():
    proc = mpidrl(["info"])
    assert "mpi4py" in proc.stdout and "world size: 1" in proc.stdout


def test_output_into_a_closed_pipe_is_not_an_error(tiny):
    # `mpidrl ... | head`: the reader may be gone before the first line is written
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run(
        [sys.executable, "-m", "mpidrl", "validate", str(tiny)],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    os.close(write)
    assert proc.returncode == 0 and proc.stderr == ""


def test_es_runs_on_mujoco_ant(tmp_path):
    out = tmp_path / "ant.h5"
    cfg = write_config(
        tmp_path / "ant.toml",
        '[env]\nid = "Ant-v5"\nmax_steps = 10\ngamma = 0.99\n[agents]\nn = 2\n'
        "[run]\nrounds = 2\n[policy]\nhidden = [8]\n[algo]\nsigma = 0.02\n",
    )
    mpidrl(["run", str(cfg), "--out", str(out)])
    with h5py.File(out, "r") as f:
        d = (105 * 8 + 8) + (8 * 8 + 8)  # 105 observations, 8 continuous actions
        assert np.all(f["metrics/downlink_bytes"][()] == 8 * d)
        assert np.all(f["metrics/steps"][()] == 10) and np.isfinite(f["metrics/reward"][()]).all()


def test_switching_the_algorithm_warns_on_one_line_and_runs(tmp_path):
    cfg = write_config(tmp_path / "c.toml", TINY.replace('name = "es"', 'name = "es"\nsigma = 0.2'))
    proc = mpidrl(["validate", str(cfg), "--set", 'algo.name="nigt-sync"', "--set", "time.mode='simulated'"])
    warning = "mpidrl: warning: algo.name=nigt-sync: dropped algo.sigma (nigt-sync has no such parameters)"
    assert proc.stderr == warning + "\n"
    assert "valid (nigt-sync on CartPole-v1" in proc.stdout


@pytest.mark.mpi
def test_ranks_without_agents_are_warned_of(tiny, tmp_path):
    from helpers import mpirun

    proc = mpirun(3, ["run", str(tiny), "--set", "agents.n=2", "--out", str(tmp_path / "r.h5")])
    assert "mpidrl: warning: 3 ranks for 2 agent(s): 1 rank(s) will have no agent to run" in proc.stderr
    assert "warning" not in mpirun(2, ["run", str(tiny), "--out", str(tmp_path / "s.h5")]).stderr
