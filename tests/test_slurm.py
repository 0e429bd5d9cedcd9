"""The job scripts against a real single-node SLURM (jobs/slurm/local-cluster.sh starts it).

Needs root: the fixture installs slurm-wlm and munge with apt-get when they are missing, starts munged,
slurmctld and slurmd, and stops (by pid) what it started. Three jobs run side by side: run.sbatch with
the automatic launcher choice, run.sbatch forced onto a PMI the MPI library does not speak (the
world-size check must stop it), and a 4-task array of sweep.sbatch launched with mpiexec.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import BIN, ROOT, mpidrl, write_config

CLUSTER = ROOT / "jobs" / "slurm" / "local-cluster.sh"
STATE = Path(os.environ.get("MPIDRL_SLURM_DIR", "/var/tmp/mpidrl-slurm"))
CONFIG = """
[run]
rounds = 3
trials = 1
[env]
id = "CartPole-v1"
[agents]
n = 3
[algo]
name = "es"
[policy]
hidden = [4]
"""


def _launcher_block(script: Path) -> str:
    text = script.read_text()
    return text[text.index("# ---- launcher") : text.index("# ---- end of launcher")]


def test_launcher_block_is_the_same_in_both_scripts():
    run, sweep = (ROOT / "jobs" / "slurm" / name for name in ("run.sbatch", "sweep.sbatch"))
    assert _launcher_block(run) == _launcher_block(sweep)
    for script in (run, sweep, CLUSTER, ROOT / "jobs" / "local" / "sweep.sh", ROOT / "jobs" / "local" / "run.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=10)


def test_local_cluster_status_reports_a_daemon_that_died(tmp_path):
    """A daemon `start` started whose process is gone is dead (exit 1), not "not started here"."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "started").write_text("slurmd\n")
    (tmp_path / "slurmd.pid").write_text(gone.stdout)
    env = {**os.environ, "MPIDRL_SLURM_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["munged: not started here", "slurmctld: not started here"]
    assert lines[2].startswith("slurmd: dead (started here, its process is gone")
    (tmp_path / "slurmd.pid").unlink()  # slurmd removes its pid file when it exits: still dead
    proc = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 1 and "slurmd: dead" in proc.stdout


@pytest.fixture(scope="module")
def slurm():
    """Environment variables for sbatch and friends, with a running single-node SLURM."""
    if os.geteuid() != 0:
        pytest.skip("needs root to install slurm-wlm/munge and start munged, slurmctld and slurmd")
    env = {**os.environ, "MPIDRL_SLURM_DIR": str(STATE), "PATH": f"{BIN}:{os.environ['PATH']}"}
    # one test session at a time owns the cluster (several checkouts may test on one machine)
    lock = open(f"{STATE}.lock", "w")  # held until the fixture ends
    fcntl.flock(lock, fcntl.LOCK_EX)
    running = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True, text=True, env=env, timeout=30)
    started = "slurmctld: running" not in running.stdout
    if started:
        proc = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, f"local-cluster.sh start failed:\n{proc.stdout}\n{proc.stderr}"
    env["SLURM_CONF"] = str(STATE / "slurm.conf")
    yield env
    if started:
        subprocess.run(["bash", str(CLUSTER), "stop"], check=True, env=env, timeout=60)
    lock.close()


def sbatch(env: dict[str, str], cwd: Path, args: list[str], extra: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["sbatch", "--parsable", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, **(extra or {})},
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


def wait_for(env: dict[str, str], jobs: list[str], timeout: float = 150) -> None:
    """Poll squeue until none of ``jobs`` (array tasks included) is pending or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i %T", "-j", ",".join(jobs)], capture_output=True, text=True, env=env, timeout=30
        )
        if out.returncode == 0 and not out.stdout.strip():
            return
        time.sleep(0.5)
    subprocess.run(["scancel", *jobs], env=env, timeout=30)
    pytest.fail(f"jobs {jobs} still queued after {timeout} s:\n{out.stdout}")


def job_states(env: dict[str, str], job: str) -> list[tuple[str, str]]:
    """(JobState, ExitCode) of a job or of every task of an array job, from scontrol."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, env=env, timeout=30)
    return re.findall(r"JobState=(\S+) .*?ExitCode=(\S+)", out.stdout)


def test_run_and_sweep_jobs_on_a_real_slurm(slurm, tmp_path):
    (tmp_path / "logs").mkdir()
    config = write_config(tmp_path / "tiny.toml", CONFIG)
    spec = tmp_path / "tiny-sweep.toml"
    spec.write_text(
        '[sweep]\nname = "tiny-sweep"\nconfig = "tiny.toml"\nseeds = [1, 2]\n[grid]\n"agents.n" = [2, 3]\n'
        '[slurm]\nntasks = 2\nthrottle = 2\noptions = ["--overcommit", "--time=00:05:00"]\n'
    )
    mpidrl(["sweep", str(spec), "-o", str(tmp_path / "sweep")])
    submit = (tmp_path / "sweep" / "submit.sh").read_text().splitlines()[-1]
    assert "--array=0-3%2" in submit

    common = ["--ntasks=2", "--overcommit", "--time=00:05:00"]
    single = sbatch(slurm, tmp_path, [*common, "--job-name=single", str(ROOT / "jobs/slurm/run.sbatch"), str(config)])
    forced = {"MPIDRL_LAUNCHER": "srun", "MPIDRL_SRUN_MPI": "none"}
    bad = sbatch(
        slurm, tmp_path, [*common, "--job-name=nopmi", str(ROOT / "jobs/slurm/run.sbatch"), str(config)], forced
    )
    proc = subprocess.run(
        ["bash", str(tmp_path / "sweep" / "submit.sh"), "--parsable"],
        capture_output=True,
        text=True,
        env={**slurm, "MPIDRL_LAUNCHER": "mpiexec"},
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    array = proc.stdout.strip().split(";")[0]
    wait_for(slurm, [single, bad, array])

    # The single run: automatic launcher, output named after the job, SLURM ids in the run file.
    log = (tmp_path / "logs" / f"single_{single}.out").read_text()
    assert "launching with" in log, log
    with h5py.File(tmp_path / "results" / f"single_{single}.h5", "r") as f:
        assert f.attrs["status"] == "complete", log
        assert f.attrs["slurm_job_id"] == single
        assert f.attrs["slurm_array_task_id"] == ""
        assert f.attrs["world_size"] == 2
    assert job_states(slurm, single) == [("COMPLETED", "0:0")]

    # srun with a PMI the MPI does not speak: two separate worlds of 1, refused with exit 2, no file.
    log = (tmp_path / "logs" / f"nopmi_{bad}.out").read_text()
    assert "but MPI sees a world of 1 process" in log, log
    assert not (tmp_path / "results" / f"nopmi_{bad}.h5").exists()
    assert job_states(slurm, bad) == [("FAILED", "2:0")]

    # The array: four tasks, each its own line, own output file and own array id.
    states = job_states(slurm, array)
    assert sorted(states) == [("COMPLETED", "0:0")] * 4, states
    lines = (tmp_path / "sweep" / "sweep.txt").read_text().splitlines()
    for task, line in enumerate(lines):
        out = Path(line.rsplit("--out ", 1)[1].strip("'"))
        log = (tmp_path / "sweep" / "logs" / f"tiny-sweep_{array}_{task}.out").read_text()
        assert "launching with mpiexec on 2 task(s)" in log, log
        with h5py.File(out, "r") as f:
            assert f.attrs["status"] == "complete", log
            assert f.attrs["slurm_array_task_id"] == str(task)
            assert f.attrs["slurm_array_job_id"] == array
            assert f.attrs["slurm_job_id"] != ""
            assert f.attrs["n_agents"] == (2, 2, 3, 3)[task]
            assert f.attrs["seed"] == (1, 2, 1, 2)[task]
            assert f["metrics/reward"].shape == (1, 3, f.attrs["n_agents"])


SLOW = """
[run]
seed = 3
trials = 1
rounds = 150
checkpoint_every = 25
log_every = 1.0
[env]
id = "slow_env:SlowOnRank-v0"
max_steps = 50
kwargs = {delay = 0.02}
[agents]
n = 4
placement = "blocks"
[algo]
name = "es"
sigma = 0.1
[policy]
hidden = [4]
"""


def test_a_time_limit_stops_cleanly_and_a_resumed_job_finishes_bit_identically(slurm, tmp_path):
    """--signal=B:TERM@45 (run.sbatch's recipe with a 1-minute limit): the first job checkpoints and stops
    with every finished round in the file and no traceback; a second job resumes it to the end, and the
    result is the bits of an uninterrupted run."""
    (tmp_path / "logs").mkdir()
    config = write_config(tmp_path / "slow.toml", SLOW)
    out = tmp_path / "limited.h5"
    env = {**slurm, "PYTHONPATH": str(ROOT / "tests"), "MPIDRL_LAUNCHER": "mpiexec"}
    common = ["--ntasks=2", "--overcommit"]
    script = str(ROOT / "jobs/slurm/run.sbatch")
    first = sbatch(
        env,
        tmp_path,
        [*common, "--time=1", "--signal=B:TERM@45", "--job-name=limited", script, str(config), "--out", str(out)],
    )
    wait_for(env, [first], timeout=200)
    log = (tmp_path / "logs" / f"limited_{first}.out").read_text()
    assert "Traceback" not in log and "stopping before round" in log, log
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "interrupted", log
        done = int(f.attrs["rounds_done"])
        assert f["checkpoint"].attrs["round"] == done  # every finished round is in the file
        assert done < 150
    second = sbatch(env, tmp_path, [*common, "--time=5", "--job-name=resumed", script, "--resume", str(out)])
    wait_for(env, [second], timeout=400)
    log = (tmp_path / "logs" / f"resumed_{second}.out").read_text()
    assert "Traceback" not in log and job_states(env, second) == [("COMPLETED", "0:0")], log
    reference = tmp_path / "reference.h5"
    mpidrl(
        ["run", str(config), "--out", str(reference), "--set", "env.kwargs={delay = 0.0}"],
        env={"PYTHONPATH": str(ROOT / "tests")},
        timeout=300,
    )
    with h5py.File(out, "r") as got, h5py.File(reference, "r") as want:
        assert got.attrs["status"] == "complete"
        resumes = json.loads(got.attrs["resumes"])
        assert [r["slurm_job_id"] for r in resumes] == [second] and got.attrs["slurm_job_id"] == first
        for name in ("reward", "return", "episodes", "steps", "uplink_messages", "uplink_bytes", "downlink_bytes"):
            np.testing.assert_array_equal(got["metrics"][name][()], want["metrics"][name][()], err_msg=name)


def test_repeated_stops_and_resumes_under_slurm_end_bit_identical(slurm, tmp_path):
    """A soak: four jobs in a row are each stopped by a SIGTERM to their batch script (as --signal=B:TERM
    delivers it) after a few rounds and resubmitted with --resume, at 2 or 3 tasks; the fifth, on 1 task, finishes."""
    (tmp_path / "logs").mkdir()
    config = write_config(tmp_path / "slow.toml", SLOW.replace("rounds = 150", "rounds = 120"))
    out = tmp_path / "soak.h5"
    env = {**slurm, "PYTHONPATH": str(ROOT / "tests"), "MPIDRL_LAUNCHER": "mpiexec"}
    script = str(ROOT / "jobs/slurm/run.sbatch")
    args = [str(config), "--out", str(out)]
    done = 0
    for cycle, ntasks in enumerate((2, 3, 2, 3, 1)):  # 1 task last: rank 0's steps are not slow
        job = sbatch(
            env, tmp_path, [f"--ntasks={ntasks}", "--overcommit", "--time=5", f"--job-name=soak{cycle}", script, *args]
        )
        if cycle < 4:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # a few more rounds than the last job left
                try:
                    with h5py.File(out, "r", locking=False) as f:
                        if int(f.attrs["rounds_done"]) >= done + 8:
                            break
                except (OSError, KeyError):
                    pass
                time.sleep(0.2)
            subprocess.run(["scancel", "--signal=TERM", "--batch", job], env=env, check=True, timeout=30)
        wait_for(env, [job], timeout=300)
        log = (tmp_path / "logs" / f"soak{cycle}_{job}.out").read_text()
        assert "Traceback" not in log, log
        with h5py.File(out, "r") as f:
            status, done = f.attrs["status"], int(f.attrs["rounds_done"])
        assert status == ("interrupted" if cycle < 4 else "complete"), log
        args = ["--resume", str(out)]
    reference = tmp_path / "reference.h5"
    mpidrl(
        ["run", str(config), "--out", str(reference), "--set", "env.kwargs={delay = 0.0}"],
        env={"PYTHONPATH": str(ROOT / "tests")},
        timeout=300,
    )
    with h5py.File(out, "r") as got, h5py.File(reference, "r") as want:
        assert len(json.loads(got.attrs["resumes"])) == 4
        for name in ("reward", "return", "episodes", "steps", "uplink_messages", "uplink_bytes", "downlink_bytes"):
            np.testing.assert_array_equal(got["metrics"][name][()], want["metrics"][name][()], err_msg=name)
