"""Faults while a run goes: failures are recorded in seconds, killed runs keep their rounds and say so,
live runs can be read and are never overwritten, damaged checkpoints fall back, finished runs extend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from helpers import MPIEXEC, ROOT, mpidrl, mpirun, write_config

from mpidrl.store import read_final, read_run

pytestmark = pytest.mark.mpi

BASE = """
[run]
seed = 4
trials = 2
rounds = {rounds}
checkpoint_every = 5
log_every = 0.05
[env]
id = "{env}"
kwargs = {kwargs}
[agents]
n = 4
placement = "blocks"
[algo]
name = "{algo}"
{algo_keys}
[policy]
hidden = [4]
{time}
"""
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}
COMPARED = ["reward", "return", "episodes", "steps", "uplink_messages", "uplink_bytes", "downlink_bytes"]
PG = "M = 4\nM_init = 4\nH = 40"


def config(tmp_path, rounds=20, env="CartPole-v1", kwargs="{}", algo="es", algo_keys="sigma = 0.1", time=""):
    text = BASE.format(rounds=rounds, env=env, kwargs=kwargs, algo=algo, algo_keys=algo_keys, time=time)
    return write_config(tmp_path / "c.toml", text)


def start(args, nprocs=2):
    cmd = [MPIEXEC, "-n", str(nprocs), sys.executable, "-m", "mpidrl", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_rounds(path, rounds, timeout=60):
    """Wait until the run file (read while it is written) holds ``rounds`` rounds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if int(read_run(path).attrs["rounds_done"]) >= rounds:
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {rounds} rounds")


def metrics(path):
    with h5py.File(path, "r") as f:
        return {k: f["metrics"][k][()] for k in COMPARED}


@pytest.mark.parametrize(
    "algo, algo_keys, time_keys",
    [
        ("es", "sigma = 0.1", ""),  # set-up: the environment fails where rank 1 makes it
        ("rennala-nigt", PG, ""),
        ("malenia-nigt", PG, ""),
        ("afedpg", PG, ""),
    ],
)
def test_a_failure_on_another_rank_is_recorded_in_seconds(tmp_path, algo, algo_keys, time_keys):
    how = '{fail_rank = 1, how = "init"}' if algo == "es" else "{fail_rank = 1, fail_after = 60}"
    cfg = config(tmp_path, rounds=200, env="faulty_env:Faulty-v0", kwargs=how, algo=algo, algo_keys=algo_keys)
    out = tmp_path / "r.h5"
    t0 = time.monotonic()
    proc = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, "-m", "mpidrl", "run", str(cfg), "--out", str(out)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0 and "injected failure" in proc.stderr
    assert read_run(out).attrs["status"] == "failed", proc.stderr
    assert elapsed < 12, f"took {elapsed:.1f} s to end"  # start-up (~3 s) + notice (<0.1 s) + the abort's 0.5 s


def test_rounds_reach_the_disk_while_a_rank_is_stuck_and_a_killed_run_says_so(tmp_path):
    """Rank 1 sleeps for a minute in round 11; rank 0 waits in the round. The rounds before are on disk
    within a second, a live reader sees the run as running, and after SIGKILL the file says its writer died."""
    cfg = config(
        tmp_path, rounds=40, env="slow_env:SlowOnRank-v0", kwargs="{delay = 0.0, stall_round = 10, stall = 60.0}"
    )
    out = tmp_path / "r.h5"
    proc = start(["run", str(cfg), "--out", str(out)])
    wait_rounds(out, 10)
    time.sleep(1.5)  # rank 0 now waits inside round 11 for rank 1
    live = mpidrl(["summary", str(out)], env={"PYTHONPATH": str(ROOT / "tests")})
    assert "running" in live.stdout and "round 10 of 40" in live.stdout, live.stdout
    os.kill(_rank_pid(out, 0), signal.SIGKILL)  # the writer dies without a word; mpiexec ends the rest
    proc.wait(timeout=30)
    run = read_run(out)
    assert run.attrs["rounds_done"] == 10 and np.isfinite(run.metrics["reward"][0, :10]).all()
    assert run.status.startswith("stopped without closing, last write"), run.status
    after = mpidrl(["summary", str(out)])
    assert "stopped without closing" in after.stdout


def test_overwrite_refuses_a_live_run_and_two_runs_on_one_path_refuse_one_line(tmp_path):
    cfg = config(tmp_path, rounds=400)
    out = tmp_path / "r.h5"
    live = start(["run", str(cfg), "--out", str(out)])
    wait_rounds(out, 3)
    other = mpirun(
        2, ["run", str(cfg), "--out", str(out), "--overwrite"], check=False, env={"PYTHONPATH": str(ROOT / "tests")}
    )
    assert other.returncode == 2 and "not touching a live run" in other.stderr.strip().splitlines()[-1]
    again = mpirun(1, ["run", str(cfg), "--out", str(out)], check=False)
    assert again.returncode == 2 and f"run.out: {out} exists" in again.stderr
    live.send_signal(signal.SIGTERM)
    assert live.wait(timeout=60) == 143
    assert read_run(out).attrs["status"] == "interrupted"  # the live run was not harmed


def test_a_signal_at_start_up_writes_nothing(tmp_path):
    cfg = config(tmp_path)
    out = tmp_path / "r.h5"
    proc = start(["run", str(cfg), "--out", str(out)])
    time.sleep(0.3)  # inside Python start-up or the checks, before any round
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert not out.exists() or read_run(out).attrs["status"] == "interrupted"
    assert not list(tmp_path.glob(".*.partial"))


def test_a_signal_to_one_rank_and_a_second_signal_stop_the_whole_job_cleanly(tmp_path):
    cfg = config(tmp_path, rounds=300)
    ref = tmp_path / "ref.h5"
    mpirun(1, ["run", str(cfg), "--out", str(ref)])
    for how in ("rank 1", "twice"):
        out = tmp_path / f"{how.replace(' ', '')}.h5"
        proc = start(["run", str(cfg), "--out", str(out)])
        wait_rounds(out, 20)
        if how == "rank 1":
            os.kill(_rank_pid(out, 1), signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.5)  # beyond the echo of one signal delivered twice
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143 and "Traceback" not in err, (how, err)
        assert read_run(out).attrs["status"] == "interrupted"
        mpirun(3, ["run", "--resume", str(out)], timeout=120)
        for key, value in metrics(ref).items():
            np.testing.assert_array_equal(metrics(out)[key], value, err_msg=f"{how}: {key}")


def _rank_pid(out, rank):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if str(out).encode() in cmdline and f"PMI_RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no rank {rank} process for {out}")


def test_damaged_checkpoints_fall_back_or_are_refused_without_touching_the_file(tmp_path):
    cfg = config(tmp_path, rounds=30)
    ref, out = tmp_path / "ref.h5", tmp_path / "r.h5"
    mpirun(1, ["run", str(cfg), "--out", str(ref)])
    proc = start(["run", str(cfg), "--out", str(out)])
    wait_rounds(out, 12)
    # a clean stop leaves both slots whole (a kill may land while the older slot is being rewritten)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    with h5py.File(out, "r+") as f:  # damage the current slot: the other (older) one is used
        slot = f["checkpoint"].attrs["current"]
        key = next(iter(f["checkpoint"][slot]["learner"]))
        f["checkpoint"][slot]["learner"][key][...] = f["checkpoint"][slot]["learner"][key][()] + 1
    resumed = mpirun(2, ["run", "--resume", str(out)], timeout=120)
    assert "warning: checkpoint slot" in resumed.stderr and "fails its checksum" in resumed.stderr
    for key, value in metrics(ref).items():
        np.testing.assert_array_equal(metrics(out)[key], value, err_msg=key)
    # a checkpoint whose round lies past the run's end is refused with one line, the file left as it was
    past = tmp_path / "past.h5"
    proc = start(["run", str(cfg), "--out", str(past)])
    wait_rounds(past, 12)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    with h5py.File(past, "r+") as f:
        for slot in ("a", "b"):
            if slot in f["checkpoint"]:
                f["checkpoint"][slot].attrs["round"] = 99
        before = dict(f.attrs)
    refused = mpirun(2, ["run", "--resume", str(past)], check=False)
    assert refused.returncode == 2 and "outside the run's 30 round(s)" in refused.stderr.strip().splitlines()[-1]
    with h5py.File(past, "r") as f:
        assert f.attrs["status"] == before["status"] == "interrupted"


def test_a_finished_run_extends_to_more_rounds_exactly_and_keeps_its_policy(tmp_path):
    cfg = config(tmp_path, rounds=12)
    short, long = tmp_path / "short.h5", tmp_path / "long.h5"
    mpirun(2, ["run", str(cfg), "--out", str(short)])
    with h5py.File(short, "r") as f:
        finals = read_final(f)
        assert sorted(finals) == [0, 1] and all(s.round == 12 and "theta" in s.learner for s in finals.values())
    refused = mpirun(1, ["run", "--resume", str(short)], check=False)
    assert (
        refused.returncode == 2 and "is complete; nothing to resume (--set run.rounds=N extends it)" in refused.stderr
    )
    mpirun(3, ["run", "--resume", str(short), "--set", "run.rounds=20"], timeout=120)
    mpirun(1, ["run", str(cfg), "--out", str(long), "--set", "run.rounds=20"])
    assert read_run(short).attrs["status"] == "complete" and read_run(short).config["run"]["rounds"] == 20
    for key, value in metrics(long).items():
        np.testing.assert_array_equal(metrics(short)[key], value, err_msg=key)
