"""Failures end the job fast, run files survive them, and resumed runs equal uninterrupted ones."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import MPIEXEC, ROOT, mpidrl, mpirun, write_config

pytestmark = pytest.mark.mpi

BASE = """
[run]
seed = 5
trials = 2
rounds = {rounds}
checkpoint_every = 7
log_every = 0.01
[env]
id = "{env}"
kwargs = {kwargs}
[agents]
n = 6
[algo]
name = "es"
sigma = 0.1
fitness_shaping = "centered_rank"
[policy]
hidden = [4]
"""
FAULTY = "faulty_env:Faulty-v0"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}
COMPARED = ["reward", "return", "episodes", "steps", "uplink_messages", "uplink_bytes", "downlink_bytes"]


def config(tmp_path, name="c.toml", rounds=40, env=FAULTY, kwargs="{fail_rank = 99}"):
    return write_config(tmp_path / name, BASE.format(rounds=rounds, env=env, kwargs=kwargs))


def metrics(path):
    with h5py.File(path, "r") as f:
        return {k: f["metrics"][k][()] for k in COMPARED}, dict(f.attrs)


def start(nprocs, args):
    cmd = [MPIEXEC, "-n", str(nprocs), sys.executable, "-m", "mpidrl", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_round(proc, trial, round, timeout=60):
    """Read the progress lines until one reports ``round`` (1-based) of ``trial`` or later (a batch of
    trials run together, "trials 1-2/3", counts as its last trial)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen = re.search(r"trials? (?:\d+-)?(\d+)/\d+ round (\d+)/", line)
        if seen and (int(seen[1]), int(seen[2])) >= (trial, round):
            return
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"never saw trial {trial} round {round}")


def rank_pid(out, rank):
    """The pid of the mpidrl process of MPI rank ``rank`` writing ``out``."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(out).encode() in cmdline and b"mpidrl" in cmdline and f"PMI_RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no rank {rank} process found")


@pytest.mark.parametrize("fail_rank", [0, 1])
def test_an_exception_on_any_rank_ends_the_job_and_marks_the_file(tmp_path, fail_rank):
    cfg = config(tmp_path, rounds=400, kwargs=f'{{fail_rank = {fail_rank}, fail_after = 2000, how = "raise"}}')
    out = tmp_path / "r.h5"
    t0 = time.monotonic()
    proc = mpirun(3, ["run", str(cfg), "--out", str(out)], check=False, timeout=60, env=ENV)
    assert time.monotonic() - t0 < 30
    assert proc.returncode != 0
    assert "RuntimeError: injected failure" in proc.stderr, proc.stderr
    assert f"rank {fail_rank}/3 failed" in proc.stderr, proc.stderr
    m, attrs = metrics(out)
    assert attrs["status"] == "failed" and attrs["rounds_done"] >= 1
    done = attrs["rounds_done"]
    assert np.isfinite(m["reward"][0, :done]).all()


def test_sigkill_of_a_rank_ends_the_job_and_the_run_resumes_exactly(tmp_path):
    cfg = config(tmp_path, rounds=60)
    ref = tmp_path / "ref.h5"
    mpirun(2, ["run", str(cfg), "--out", str(ref)], env=ENV)
    out = tmp_path / "killed.h5"
    proc = start(3, ["run", str(cfg), "--out", str(out)])
    wait_for_round(proc, 1, 20)
    os.kill(rank_pid(out, 2), signal.SIGKILL)
    t0 = time.monotonic()
    proc.wait(timeout=30)
    assert time.monotonic() - t0 < 15 and proc.returncode != 0
    _, attrs = metrics(out)  # the file opens and holds the completed rounds
    assert attrs["status"] == "running" and attrs["rounds_done"] >= 20
    mpirun(2, ["run", "--resume", str(out)], env=ENV)
    got, attrs = metrics(out)
    want, _ = metrics(ref)
    assert attrs["status"] == "complete"
    for name in COMPARED:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_sigterm_checkpoints_and_resume_at_another_world_size_is_bit_identical(tmp_path):
    cfg = config(tmp_path, rounds=60)
    ref = tmp_path / "ref.h5"
    mpirun(1, ["run", str(cfg), "--out", str(ref)], env=ENV)
    out = tmp_path / "stopped.h5"
    proc = start(2, ["run", str(cfg), "--out", str(out)])
    wait_for_round(proc, 2, 10)
    proc.send_signal(signal.SIGTERM)  # what SLURM sends at the time limit; mpiexec forwards it to every rank
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint saved" in err and "--resume" in err
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "interrupted" and f.attrs["trials_done"] == 1
        ckpt_round = int(f["checkpoint"].attrs["round"])
        assert f["checkpoint"].attrs["trial"] == 1 and ckpt_round == f.attrs["rounds_done"] >= 10
        learner = f["checkpoint"][f["checkpoint"].attrs["current"]]["learner"]
        assert "theta" in learner and "optim/m" in learner
    mpirun(3, ["run", "--resume", str(out)], env=ENV)
    got, attrs = metrics(out)
    want, _ = metrics(ref)
    assert attrs["status"] == "complete" and attrs["trials_done"] == 2
    for name in COMPARED:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_resume_refuses_a_different_config_and_a_complete_run(tmp_path):
    cfg = config(tmp_path, rounds=3, env="CartPole-v1", kwargs="{}")
    out = tmp_path / "r.h5"
    mpidrl(["run", str(cfg), "--out", str(out)])
    proc = mpidrl(["run", "--resume", str(out)], check=False)
    assert proc.returncode == 2 and "is complete; nothing to resume" in proc.stderr
    with h5py.File(out, "r+") as f:
        f.attrs["status"] = "interrupted"
    proc = mpidrl(["run", str(cfg), "--resume", str(out), "--set", "algo.sigma=0.2"], check=False)
    assert proc.returncode == 2
    assert "config differs from" in proc.stderr and "at algo.sigma (0.1 in the file, 0.2 given)" in proc.stderr
    proc = mpidrl(["run", "--resume", str(tmp_path / "nope.h5")], check=False)
    assert proc.returncode == 2 and "no such file" in proc.stderr
