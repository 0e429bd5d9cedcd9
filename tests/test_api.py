"""The Python API: mpidrl.run in this process and under mpiexec, mpidrl.launch, mpidrl.load, and the
example script that shows them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import MPIEXEC, ROOT, write_config

import mpidrl
from mpidrl.api import unique_out
from mpidrl.config import load as load_config
from mpidrl.store import read_run

TINY = """
[run]
seed = 5
trials = 1
rounds = 3
[env]
id = "CartPole-v1"
[agents]
n = 4
[algo]
name = "es"
sigma = 0.1
[policy]
hidden = [4]
"""
SECTIONS = {"run": {"seed": 5, "rounds": 3}, "agents": {"n": 4}, "algo": {"name": "es", "sigma": 0.1}}


@pytest.mark.mpi
def test_example_script_runs_in_one_process_and_on_two_ranks(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api.py"), str(tmp_path), "--rounds", "3"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1 rank and 2 ranks give the same rewards and bytes: True" in out
    assert "refused: agents.n: must be >= 1, got 0 (exit status 2)" in out
    assert "reloaded: (1, 3, 50) (trials, rounds, agents)" in out
    assert "trial 1/1 round 3/3" in out  # launch streamed the ranks' progress lines
    one, two = read_run(tmp_path / "one_rank.h5"), read_run(tmp_path / "two_ranks.h5")
    assert (one.status, one.attrs["world_size"], two.status, two.attrs["world_size"]) == ("complete", 1, "complete", 2)
    assert np.array_equal(one.metrics["reward"], two.metrics["reward"])


def test_run_returns_the_run_file_it_wrote(tmp_path):
    cfg = write_config(tmp_path / "tiny.toml", TINY)
    run = mpidrl.run(cfg, out=tmp_path / "a.h5", set="run.rounds=2")
    again = mpidrl.load(tmp_path / "a.h5")
    assert isinstance(run, mpidrl.store.Run) and run.path == str(tmp_path / "a.h5")
    assert run.status == "complete" and run.metrics["reward"].shape == (1, 2, 4)
    assert np.array_equal(run.metrics["reward"], again.metrics["reward"])
    # the same config as sections and as a Config: the same bits
    as_data = mpidrl.run(SECTIONS | {"policy": {"hidden": [4]}}, out=tmp_path / "b.h5", set=["run.rounds=2"])
    as_config = mpidrl.run(load_config(cfg), out=tmp_path / "c.h5", set={"run.rounds": 2})
    for other in (as_data, as_config):
        assert np.array_equal(run.metrics["reward"], other.metrics["reward"])


def test_run_refuses_bad_input_with_one_line_and_writes_nothing(tmp_path):
    cfg = write_config(tmp_path / "tiny.toml", TINY)
    with pytest.raises(mpidrl.RunError) as bad:
        mpidrl.run(cfg, out=tmp_path / "x.h5", set={"algo.sigma": -1})
    assert (str(bad.value), bad.value.status) == ("algo.sigma: must be > 0, got -1.0", 2)
    assert list(tmp_path.iterdir()) == [cfg]
    mpidrl.run(cfg, out=tmp_path / "x.h5")
    before = (tmp_path / "x.h5").read_bytes()
    with pytest.raises(mpidrl.RunError, match=r"run.out: .*x.h5 exists; pass --overwrite to replace it"):
        mpidrl.run(cfg, out=tmp_path / "x.h5")
    assert (tmp_path / "x.h5").read_bytes() == before
    with pytest.raises(mpidrl.RunError, match="config: expected a TOML file, a table of sections or a Config"):
        mpidrl.run(42)
    with pytest.raises(mpidrl.store.RunFileError, match="no such file"):
        mpidrl.load(tmp_path / "missing.h5")


def test_run_puts_back_the_signal_handlers_it_found(tmp_path):
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        mpidrl.run(SECTIONS, out=tmp_path / "r.h5")
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_default_output_gets_a_name_of_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "tiny.toml", TINY)
    first = mpidrl.run(cfg)
    second = mpidrl.run(SECTIONS)
    assert re.fullmatch(r"results/tiny_\d{8}-\d{6}(-\d+)?\.h5", first.path), first.path
    assert re.fullmatch(r"results/run_\d{8}-\d{6}(-\d+)?\.h5", second.path), second.path
    (tmp_path / "results" / "x_20250102-030405.h5").touch()
    assert unique_out("x", "results", now=_at(2025, 1, 2, 3, 4, 5)).name == "x_20250102-030405-2.h5"
    # run.out set in the config is kept
    assert mpidrl.run(SECTIONS, set='run.out="mine.h5"').path == "mine.h5"


def _at(*when: int) -> float:
    import time

    return time.mktime((*when, 0, 0, -1))


def test_import_is_cheap_and_run_stays_both_module_and_function(tmp_path):
    script = (
        "import sys\n"
        "import mpidrl\n"
        "print('mpi4py' in sys.modules, 'numpy' in sys.modules, 'h5py' in sys.modules)\n"
        "from mpidrl.run import Experiment\n"
        "print(callable(mpidrl.run), mpidrl.run.Experiment is Experiment)\n"
        "from mpidrl import run, launch, load, RunError\n"
        "print(run is mpidrl.run, launch.__module__, load.__module__, RunError.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split("\n")[:3] == [
        "False False False",
        "True True",
        "True mpidrl.launcher mpidrl.api RunError",
    ]


@pytest.mark.mpi
def test_run_under_mpiexec_is_collective(tmp_path):
    """Every rank calls mpidrl.run: rank 0 gets the run, the others None."""
    script = tmp_path / "script.py"
    script.write_text(
        "import mpidrl\n"
        f"run = mpidrl.run({SECTIONS!r}, out={str(tmp_path / 'r.h5')!r})\n"
        "from mpi4py import MPI\n"
        "print(MPI.COMM_WORLD.Get_rank(), None if run is None else (run.status, run.attrs['world_size']))\n"
    )
    proc = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split("\n")[:2]) == ["0 ('complete', 2)", "1 None"]


@pytest.mark.mpi
def test_launch_raises_the_one_line_error_of_a_refused_run(tmp_path):
    cfg = write_config(tmp_path / "tiny.toml", TINY)
    shown = tmp_path / "shown.txt"
    with shown.open("w") as stream, pytest.raises(mpidrl.RunError) as bad:
        mpidrl.launch(cfg, np=2, out=tmp_path / "x.h5", set="agents.n=0", stream=stream)
    assert (str(bad.value), bad.value.status) == ("agents.n: must be >= 1, got 0", 2)
    assert "mpidrl: error: agents.n: must be >= 1, got 0" in shown.read_text()
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(ValueError, match="np: expected a number of ranks >= 1, got 0"):
        mpidrl.launch(cfg, np=0)


@pytest.mark.mpi
def test_launch_of_sections_names_the_run_file_itself(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shown = tmp_path / "shown.txt"
    with shown.open("w") as stream:
        run = mpidrl.launch(SECTIONS, np=2, stream=stream)
    assert re.fullmatch(r"results/run_\d{8}-\d{6}(-\d+)?\.h5", run.path)
    assert run.status == "complete" and run.attrs["world_size"] == 2
    assert f"-> {run.path}" in shown.read_text()


LAUNCH_AND_INTERRUPT = """
import signal
import sys
import mpidrl
# a caller started in the background by a non-interactive shell inherits SIGINT ignored, and Python then
# installs no KeyboardInterrupt handler: restore it, as an interactive caller (or a notebook) has it
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    mpidrl.launch(sys.argv[1], np=2, out=sys.argv[2])
except KeyboardInterrupt:
    print("launch: KeyboardInterrupt", flush=True)
    sys.exit(130)
"""


@pytest.mark.mpi
@pytest.mark.parametrize("interrupts", [1, 2])
def test_interrupting_launch_stops_every_rank(tmp_path, interrupts):
    # once: cleanly at the end of a round; twice: at once (every rank killed, none left behind)
    cfg = write_config(tmp_path / "long.toml", TINY.replace("rounds = 3", "rounds = 100000\nlog_every = 1"))
    out = tmp_path / "long.h5"
    cmd = [sys.executable, "-c", LAUNCH_AND_INTERRUPT, str(cfg), str(out)]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            for line in proc.stdout:  # the ranks' progress lines, copied by launch
                if re.search(r"round [3-9]\d*/", line):
                    break
            for _ in range(interrupts):
                proc.send_signal(signal.SIGINT)  # what Ctrl-C or a notebook's interrupt does to the caller
                time.sleep(0.05)
            rest, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "launch: KeyboardInterrupt" in rest
    if interrupts == 1:
        stopped = read_run(out)
        assert stopped.status == "interrupted" and stopped.metrics["reward"].shape[1] >= 3
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and str(out).encode() in _cmdline(pid)]


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""
