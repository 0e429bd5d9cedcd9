"""Following runs: progress lines with an ETA and the simulated clock, mpidrl status for scripts,
mpidrl watch on a live run."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

import h5py
import pytest
from helpers import ROOT, mpidrl, write_config

from mpidrl.log import Progress
from mpidrl.store import read_run

TINY = """
[run]
seed = 1
rounds = 3
[agents]
n = 2
[policy]
hidden = [4]
"""
# one process, each CartPole step 10 ms slower: a run of a few seconds to watch
SLOW = """
[run]
seed = 1
rounds = 8
log_every = 0.2
[env]
id = "slow_env:SlowOnRank-v0"
kwargs = {slow_rank = 0, delay = 0.01}
[agents]
n = 2
[policy]
hidden = [4]
"""
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}


def test_progress_lines_carry_an_eta_and_the_simulated_clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    out = io.StringIO()
    progress = Progress(0, trials=2, rounds=10, every=0.0, stream=out, bar=False)
    for r in range(4):  # 4 rounds of 20 in 2 s: 16 left, 8 s
        now[0] += 0.5
        progress.update(0, r, 1.0, 1.0, 8.0, 80.0, sim_time=12.5 * (r + 1) if r < 3 else None)
    lines = out.getvalue().splitlines()
    assert lines[2].endswith("elapsed 00:01 eta 00:08 sim 37.5 s")
    assert lines[3].endswith("elapsed 00:02 eta 00:08")  # a real clock: no sim
    resumed = Progress(0, trials=1, rounds=100, every=0.0, stream=out, bar=False)
    now[0] += 6.0
    resumed.update(0, 89, 1.0, 1.0, 8.0, 80.0)  # resumed at round 90: one round of its own in 6 s
    assert out.getvalue().splitlines()[-1].endswith("elapsed 00:06 eta 01:00")


def test_a_simulated_run_shows_its_clock(tmp_path):
    cfg = write_config(tmp_path / "c.toml", TINY)
    proc = mpidrl(
        ["run", str(cfg), "--out", str(tmp_path / "s.h5"), "--set", 'algo.name="nigt-sync"']
        + ["--set", 'time.mode="simulated"', "--set", "time.h=2.0", "--set", "algo.M=1", "--set", "algo.M_init=1"]
    )
    sim = read_run(tmp_path / "s.h5").metrics["sim_time"][0, -1]
    assert re.search(rf"round 3/3 .* eta 00:00 sim {sim:.6g} s$", proc.stderr, re.M), proc.stderr


def test_status_prints_one_word_per_file(tmp_path):
    cfg = write_config(tmp_path / "c.toml", TINY)
    done = tmp_path / "done.h5"
    mpidrl(["run", str(cfg), "--out", str(done)])
    stopped, interrupted = tmp_path / "stopped.h5", tmp_path / "interrupted.h5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for path, attrs in ((stopped, {"status": "running", "writer_pid": int(dead.stdout)}), (interrupted, {})):
        path.write_bytes(done.read_bytes())
        with h5py.File(path, "a") as f:
            f.attrs.update({"status": "interrupted", **attrs})
    paths = [done, stopped, interrupted, tmp_path / "none.h5"]
    proc = mpidrl(["status", *map(str, paths)])
    words = ["complete", "stopped", "interrupted", "missing"]
    assert proc.stdout.splitlines() == [f"{w} {p}" for w, p in zip(words, paths)]
    bad = mpidrl(["status", str(done), str(cfg)], check=False)
    assert bad.returncode == 2 and bad.stdout == f"complete {done}\n"
    assert bad.stderr.startswith(f"mpidrl: error: {cfg}: not a readable HDF5 file") and bad.stderr.count("\n") == 1


def test_watch_follows_a_live_run_until_it_ends(tmp_path):
    cfg = write_config(tmp_path / "slow.toml", SLOW)
    out, fig = tmp_path / "live.h5", tmp_path / "live.png"
    run = subprocess.Popen(
        [sys.executable, "-m", "mpidrl", "run", str(cfg), "--out", str(out)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        status = mpidrl(["status", str(out)], env=ENV)
        assert status.stdout == f"running {out}\n"
        watch = mpidrl(["watch", str(out), "--every", "0.3", "--png", str(fig)], env=ENV, timeout=120)
    finally:
        run.wait(timeout=120)
    assert run.returncode == 0
    heads = re.findall(rf"^\d\d:\d\d:\d\d {re.escape(str(out))}: (.*)$", watch.stdout, re.M)
    assert len(heads) >= 3 and heads[-1] == "complete", watch.stdout
    assert any(h.startswith("running, round ") for h in heads)
    assert watch.stdout.rstrip().splitlines()[-1].startswith(f"| {out} | es | slow_env:SlowOnRank-v0 | 2 | 1 | 8 |")
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--every", "0"], "--every: must be > 0 seconds, got 0.0"),
        (["--png", "x.jpg"], "--png: x.jpg must end in .png"),
    ],
)
def test_watch_refuses_bad_input_with_one_line(tmp_path, args, message):
    cfg = write_config(tmp_path / "c.toml", TINY)
    mpidrl(["run", str(cfg), "--out", str(tmp_path / "r.h5")])
    proc = mpidrl(["watch", str(tmp_path / "r.h5"), *args], check=False)
    assert proc.returncode == 2 and proc.stderr == f"mpidrl: error: {message}\n"
    missing = mpidrl(["watch", str(tmp_path / "none.h5")], check=False)
    assert missing.returncode == 2 and missing.stderr == f"mpidrl: error: {tmp_path / 'none.h5'}: no such file\n"
