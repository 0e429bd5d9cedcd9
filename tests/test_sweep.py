"""Sweep expansion (grid x seeds, unique outputs, clear errors), the world-size check, SLURM provenance."""

from __future__ import annotations

import json
import os
import shlex

import h5py
import pytest
from helpers import ROOT, mpidrl, write_config

from mpidrl.comm.slurm import world_size_mismatch
from mpidrl.config import load
from mpidrl.sweep import SweepError, expand, toml_value

BASE = """
[run]
rounds = 2
[env]
id = "CartPole-v1"
[agents]
n = 2
[policy]
hidden = [4]
"""


def spec(tmp_path, text: str):
    write_config(tmp_path / "base.toml", BASE)
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_grid_times_seeds(tmp_path):
    path = spec(
        tmp_path,
        '[sweep]\nconfig = "base.toml"\nseeds = [3, 4, 5]\nset = ["run.rounds=4"]\n'
        '[grid]\n"agents.n" = [2, 6]\nalgo.sigma = [0.05, 0.2]\n"policy.hidden" = [[4], [8, 8]]\n',
    )
    sweep = expand(path, tmp_path / "out")
    assert sweep.name == "spec"
    assert len(sweep.tasks) == 2 * 2 * 2 * 3
    assert len({t.out for t in sweep.tasks}) == len(sweep.tasks)
    seen = set()
    for task in sweep.tasks:
        cfg = load(task.config, task.overrides)
        assert cfg.run.seed == task.seed and cfg.run.rounds == 4
        assert cfg.agents.n == task.values["agents.n"] and cfg.algo.sigma == task.values["algo.sigma"]
        assert list(cfg.policy.hidden) == task.values["policy.hidden"]
        seen.add((cfg.agents.n, cfg.algo.sigma, cfg.policy.hidden, cfg.run.seed))
    assert len(seen) == 24  # every combination exactly once
    # seed varies fastest; tasks of one setting share a directory, one file per seed
    first = sweep.tasks[:3]
    assert [t.seed for t in first] == [3, 4, 5] and len({t.setting for t in first}) == 1
    assert len({os.path.dirname(t.out) for t in first}) == 1


def test_tied_keys_move_together(tmp_path):
    path = spec(
        tmp_path,
        '[sweep]\nconfig = "base.toml"\nseeds = [1, 2]\n[grid]\n"algo.sigma" = [0.05, 0.2]\n'
        'shape = [{"agents.n" = 2, "policy.hidden" = [4]}, {agents = {n = 6}, policy = {hidden = [8, 8]}}]\n',
    )
    sweep = expand(path, tmp_path / "out")
    assert len(sweep.tasks) == 2 * 2 * 2  # two tied values, not four combinations
    seen = set()
    for task in sweep.tasks:
        cfg = load(task.config, task.overrides)
        assert set(task.values) == {"algo.sigma", "agents.n", "policy.hidden"}
        assert cfg.agents.n == task.values["agents.n"] and list(cfg.policy.hidden) == task.values["policy.hidden"]
        seen.add((cfg.algo.sigma, cfg.agents.n, cfg.policy.hidden, cfg.run.seed))
    assert {(n, h) for _, n, h, _ in seen} == {(2, (4,)), (6, (8, 8))} and len(seen) == 8
    assert "agents.n=6_policy.hidden=-8-8" in sweep.tasks[-1].out


def test_sweep_command_writes_task_lines(tmp_path):
    path = spec(
        tmp_path,
        '[sweep]\nname = "s"\nconfig = "base.toml"\nseeds = [1, 2]\n[grid]\n"agents.n" = [2, 3]\n'
        "[slurm]\nntasks = 2\nthrottle = 3\n",
    )
    out = tmp_path / "sweep"
    proc = mpidrl(["sweep", str(path), "-o", str(out)])
    assert "2 setting(s) x 2 seed(s) = 4 tasks" in proc.stdout
    lines = (out / "sweep.txt").read_text().splitlines()
    assert len(lines) == 4
    outs = []
    for line in lines:
        words = shlex.split(line)
        assert words[0] == str(tmp_path / "base.toml")
        outs.append(words[words.index("--out") + 1])
    assert len(set(outs)) == 4 and all(o.startswith(str(out / "runs")) for o in outs)
    submit = (out / "submit.sh").read_text()
    assert "--array=0-3%3" in submit and "--ntasks=2" in submit and str(out / "sweep.txt") in submit
    assert (out / "logs").is_dir()
    # a task line is exactly what `mpidrl run` takes
    mpidrl(["run", *shlex.split(lines[3])])
    with h5py.File(outs[3], "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["seed"] == 2 and f.attrs["n_agents"] == 3


@pytest.mark.parametrize(
    "text, message",
    [
        ("[grid]\n", "missing the [sweep] table"),
        ("[sweep]\nseeds = [1]\n", "[sweep] config: expected the path"),
        ('[sweep]\nconfig = "nope.toml"\n', "nope.toml is not a file"),
        ('[sweep]\nconfig = "base.toml"\nseeds = []\n', "[sweep] seeds: expected a non-empty list"),
        ('[sweep]\nconfig = "base.toml"\nseeds = [1, 1]\n', "repeated seed"),
        ('[sweep]\nconfig = "base.toml"\nseed = [1]\n', "[sweep] seed: unknown key"),
        ('[sweep]\nconfig = "base.toml"\n[grid]\n"agents.n" = 4\n', "[grid] agents.n: expected a non-empty list"),
        ('[sweep]\nconfig = "base.toml"\n[grid]\n"agents.n" = []\n', "[grid] agents.n: expected a non-empty list"),
        ('[sweep]\nconfig = "base.toml"\n[grid]\n"run.seed" = [1, 2]\n', "[grid] run.seed: set by the sweep"),
        ('[sweep]\nconfig = "base.toml"\nset = ["run.out=x.h5"]\n', "is set by the sweep itself"),
        ('[sweep]\nconfig = "base.toml"\n[grid]\nn = [2, 4]\n', "[grid] n: expected a dotted config key"),
        (
            '[sweep]\nconfig = "base.toml"\n[grid]\nb = [{"agents.n" = 2}, {"algo.sigma" = 0.1}]\n',
            "[grid] b: every table must set the same keys",
        ),
        ('[sweep]\nconfig = "base.toml"\n[grid]\nb = [{n = 2}]\n', "[grid] b: n: expected a dotted config key"),
        ('[sweep]\nconfig = "base.toml"\n[grid]\nb = [{"run.seed" = 2}]\n', "run.seed is set by the sweep"),
        (
            '[sweep]\nconfig = "base.toml"\n[grid]\n"agents.n" = [2]\nb = [{"agents.n" = 4}]\n',
            "[grid] agents.n: set by more than one grid entry",
        ),
        (
            '[sweep]\nconfig = "base.toml"\n[grid]\n"agents.n" = [2, 0]\n',
            "task 1 (agents.n=0, seed 0): agents.n: must be >= 1",
        ),
        ('[sweep]\nconfig = "base.toml"\n[grid]\n"algo.sigmaa" = [1.0]\n', "algo.sigmaa: unknown key"),
        (  # d = 30 with hidden [4] (fine), 58 with [8]: every seed of a setting is checked with its d
            '[sweep]\nconfig = "base.toml"\nseeds = [1, 2]\nset = [\'time.kappa="sqrt(40 - d)"\']\n'
            '[grid]\n"policy.hidden" = [[4], [8]]\n',
            "task 2 (policy.hidden=[8], seed 1): time.kappa: formula 'sqrt(40 - d)' fails",
        ),
        ('[sweep]\nconfig = "base.toml"\n[grid]\n"env.id" = ["NoSuchEnv-v0"]\n', "unknown environment"),
        ('[sweep]\nconfig = "base.toml"\n[slurm]\nthrottle = 0\n', "[slurm] throttle: expected an integer >= 1"),
        ('[sweep]\nconfig = "base.toml"\n[slurm]\nnodes = 2\n', "[slurm] nodes: unknown key"),
        ("[sweep\n", "not valid TOML"),
    ],
)
def test_bad_spec_is_one_line(tmp_path, text, message):
    path = spec(tmp_path, text)
    with pytest.raises(SweepError) as err:
        expand(path, tmp_path / "out")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["[sweep\n", '[sweep]\nconfig = "base.toml"\n[grid]\n"agents.n" = [2, 0]\n'])
def test_bad_spec_exits_2_and_writes_nothing(tmp_path, text):
    proc = mpidrl(["sweep", str(spec(tmp_path, text)), "-o", str(tmp_path / "out")], check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("mpidrl: error: ") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_toml_values_round_trip():
    import tomllib

    for value in [3, -2.5, 1e-9, True, 'a "q" b', [1, 2], [[4], [8, 8]], {"k": 1, "s": "x"}]:
        assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value


STEP = {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "4", "SLURM_NPROCS": "4"}


def test_world_size_check_logic():
    assert "SLURM started 4 tasks in job step 77.0 but MPI sees a world of 1" in world_size_mismatch(1, STEP)
    assert world_size_mismatch(4, STEP) is None  # srun with a matching PMI
    batch = {k: v for k, v in STEP.items() if k != "SLURM_STEP_ID"}
    assert world_size_mismatch(1, batch) is None  # the batch script itself is not a step
    hydra_proxy = {**STEP, "SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "1"}
    assert world_size_mismatch(1, hydra_proxy) is None  # mpiexec's one-task helper steps
    assert world_size_mismatch(1, {**STEP, "SLURM_NTASKS": "1", "SLURM_NPROCS": "1"}) is None
    assert world_size_mismatch(1, {"SLURM_STEP_ID": "0", "SLURM_NPROCS": "3"}) is not None
    assert world_size_mismatch(1, {**STEP, "MPIDRL_SKIP_WORLD_CHECK": "1"}) is None
    assert world_size_mismatch(1, {}) is None


def test_run_refuses_n_copies_of_a_world_of_one(tmp_path):
    config = write_config(tmp_path / "c.toml", BASE)
    out = tmp_path / "r.h5"
    proc = mpidrl(["run", str(config), "--out", str(out)], check=False, env=STEP)
    assert proc.returncode == 2
    assert "MPI sees a world of 1 process" in proc.stderr and "MPIDRL_LAUNCHER=mpiexec" in proc.stderr
    assert not out.exists()
    # the same variables with the check skipped, or outside a step, run and record the SLURM ids
    env = {**STEP, "MPIDRL_SKIP_WORLD_CHECK": "1", "SLURM_ARRAY_JOB_ID": "70", "SLURM_ARRAY_TASK_ID": "7"}
    mpidrl(["run", str(config), "--out", str(out)], env=env)
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"
        ids = [f.attrs[f"slurm_{name}"] for name in ("job_id", "array_job_id", "array_task_id")]
        assert ids == ["77", "70", "7"]


def test_no_slurm_no_ids(tmp_path, monkeypatch):
    config = write_config(tmp_path / "c.toml", BASE)
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_STEP_ID"):
        monkeypatch.delenv(name, raising=False)
    mpidrl(["run", str(config), "--out", str(tmp_path / "r.h5")])
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert f.attrs["slurm_job_id"] == "" and f.attrs["slurm_array_task_id"] == ""


def test_local_sweep_script_runs_every_line_with_mpiexec(tmp_path):
    import subprocess

    from helpers import BIN, ROOT

    path = spec(tmp_path, '[sweep]\nconfig = "base.toml"\nseeds = [1, 2]\n')
    mpidrl(["sweep", str(path), "-o", str(tmp_path / "sw")])
    script = [str(ROOT / "jobs" / "local" / "sweep.sh"), str(tmp_path / "sw" / "sweep.txt"), "-j", "1", "-n", "2"]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.run(script, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 of 2 task(s) done" in proc.stdout
    for seed in (1, 2):
        with h5py.File(tmp_path / "sw" / "runs" / "s000" / f"seed{seed}.h5", "r") as f:
            assert f.attrs["status"] == "complete" and f.attrs["world_size"] == 2 and f.attrs["seed"] == seed
    # run again: complete tasks are skipped, as sweep.sbatch skips them
    proc = subprocess.run([*script, "-t", "1-1"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "seed2.h5 is complete; nothing to do" in proc.stdout, proc.stdout
    # a failed file is neither skipped nor replaced: mpidrl run refuses it, the script reports it and exits 1
    with h5py.File(tmp_path / "sw" / "runs" / "s000" / "seed2.h5", "r+") as f:
        f.attrs["status"] = "failed"
    proc = subprocess.run([*script, "-t", "1-1"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1 and "task 1: FAILED (exit 2)" in proc.stdout and "0 of 1 task(s) done" in proc.stdout
    assert "exists; pass --overwrite" in (tmp_path / "sw" / "logs" / "local_1.out").read_text()


SLOW_BASE = """
[run]
rounds = 6
checkpoint_every = 1
[env]
id = "slow_env:SlowOnRank-v0"
kwargs = {slow_rank = 0, delay = 0.01}
[agents]
n = 2
[policy]
hidden = [4]
"""


def test_skip_done_and_sweep_sbatch_continue_what_is_unfinished(tmp_path):
    """Task 0 complete, task 1 interrupted: --skip-done leaves task 0 out; sweep.sbatch (run here without
    SLURM, as its array task) ends at once for task 0 and continues task 1 from its checkpoint."""
    import signal
    import subprocess
    import sys
    import time

    from helpers import BIN, ROOT

    write_config(tmp_path / "base.toml", SLOW_BASE)
    (tmp_path / "spec.toml").write_text('[sweep]\nconfig = "base.toml"\nseeds = [1, 2]\n')
    sw = tmp_path / "sw"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}
    mpidrl(["sweep", str(tmp_path / "spec.toml"), "-o", str(sw)], env=env)
    lines = [shlex.split(line) for line in (sw / "sweep.txt").read_text().splitlines()]
    outs = [words[words.index("--out") + 1] for words in lines]
    mpidrl(["run", *lines[0]], env=env)
    run = subprocess.Popen([sys.executable, "-m", "mpidrl", "run", *lines[1]], cwd=ROOT, env=env, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with h5py.File(outs[1], "r", locking=False) as f:
                if f.attrs["rounds_done"] >= 2:
                    break
        except (OSError, KeyError):
            pass
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 128 + signal.SIGTERM
    assert mpidrl(["status", *outs], env=env).stdout == f"complete {outs[0]}\ninterrupted {outs[1]}\n"

    skipped = mpidrl(["sweep", str(tmp_path / "spec.toml"), "-o", str(sw), "--skip-done"], env=env)
    assert "1 setting(s) x 2 seed(s) = 2 tasks\n  1 complete, left out; 1 to run" in skipped.stdout
    assert [shlex.split(line) for line in (sw / "sweep.txt").read_text().splitlines()] == [lines[1]]
    assert "--array=0-0 " in (sw / "submit.sh").read_text()

    def task(k):
        variables = {"SLURM_ARRAY_TASK_ID": str(k), "SLURM_NTASKS": "1", "MPIDRL_LAUNCHER": "mpiexec"}
        variables |= {"MPIEXEC": str(BIN / "mpiexec"), "MPIDRL": f"{sys.executable} -m mpidrl"}
        script = [str(ROOT / "jobs" / "slurm" / "sweep.sbatch"), str(tmp_path / "all.txt")]
        return subprocess.run(["bash", *script], capture_output=True, text=True, env={**env, **variables}, timeout=120)

    (tmp_path / "all.txt").write_text("".join(shlex.join(words) + "\n" for words in lines))
    before = os.path.getmtime(outs[0])
    first = task(0)
    assert first.returncode == 0 and f"task 0: {outs[0]} is complete; nothing to do" in first.stderr
    assert os.path.getmtime(outs[0]) == before
    second = task(1)
    assert second.returncode == 0, second.stderr
    assert f"task 1: {outs[1]} is interrupted; continuing it (--resume)" in second.stderr
    with h5py.File(outs[1], "r") as f:
        assert f.attrs["status"] == "complete" and len(json.loads(f.attrs["resumes"])) == 1

    done = mpidrl(["sweep", str(tmp_path / "spec.toml"), "-o", str(sw), "--skip-done"], env=env)
    assert "2 complete, left out; 0 to run" in done.stdout and "submit:" not in done.stdout
    assert (sw / "sweep.txt").read_text() == ""
    nothing = subprocess.run(["bash", str(sw / "submit.sh")], capture_output=True, text=True)
    assert nothing.returncode == 0 and "every task is complete; nothing to submit" in nothing.stderr


def test_a_grid_over_algorithms_names_the_keys_each_switch_drops(tmp_path):
    """As ``--set algo.name=X`` does: the base config's ES keys ESPC accepts are kept, those DQL has not are
    dropped with one warning per setting (not per seed)."""
    path = spec(
        tmp_path,
        '[sweep]\nconfig = "es.toml"\nseeds = [1, 2]\n[grid]\n"algo.name" = ["es", "dql"]\n'
        '"env.id" = ["mpidrl/SimpleGrid-v0"]\n',
    )
    write_config(tmp_path / "es.toml", BASE + '[algo]\nname = "es"\nsigma = 0.2\n')
    proc = mpidrl(["sweep", str(path), "-o", str(tmp_path / "sw")])
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert warnings == ["mpidrl: warning: setting s001: algo.name=dql: dropped algo.sigma (dql has no such parameters)"]


@pytest.mark.parametrize("path", sorted((ROOT / "jobs" / "sweeps").glob("*.toml")), ids=lambda p: p.stem)
def test_every_sweep_spec_of_the_repository_expands(tmp_path, path):
    """The specs the docs name are checked as `mpidrl sweep` would check them: every task's config valid."""
    sweep = expand(path, tmp_path / "out")
    assert sweep.tasks and len({t.out for t in sweep.tasks}) == len(sweep.tasks)
    assert f"mpidrl sweep jobs/sweeps/{path.name}" in path.read_text()  # the spec says how to run it
