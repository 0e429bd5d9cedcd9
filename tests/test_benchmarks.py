"""Smoke runs of every benchmark's --quick mode, so the scripts keep working as the code changes."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.mpi


def bench(script: str, *args: str, timeout: float = 120) -> str:
    """Run ``benchmarks/SCRIPT --quick ARGS`` and return its output; fail on an error or a hang."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_speed_reproduces_the_episodes_and_reports_a_ratio():
    out = bench("speed.py")
    # the script raises unless the bare loop got mpidrl's returns; each env reports a ratio
    for env_id in ("CartPole-v1", "Ant-v5"):
        assert re.search(rf"^{env_id}, 1 trial\(s\): speed-up median", out, re.M), out
    out = bench("speed.py", "--env", "CartPole-v1", "--trials", "3")
    assert re.search(r"^CartPole-v1 \| 3 x 10 x 2 \| \d+ \|", out, re.M), out


def test_learner_reports_rates_for_each_cell():
    out = bench("learner.py")
    rows = re.findall(r"^(\d+) \| (\d+) \| ([\d.e+]+) ", out, re.M)
    assert len(rows) == 4 and all(float(rate) > 0 for _, _, rate in rows), out


def test_comm_volume_reads_exact_bytes_from_the_run_file(tmp_path):
    out = bench("comm_volume.py", "--out-dir", str(tmp_path))
    # ES, 4 agents: each sends one float64 return and receives the 130 float64 parameters, no control
    assert re.search(r"^es \| 2 \| 130 \| 4 \| 32 \| 4160 \| 0 \| 0 \| 4160 \| 130x$", out, re.M), out
    # DQL on Simple Grid: the 25 x 5 Q table goes down to each agent, trajectories of 12-byte steps come up
    dql = re.search(r"^dql \(grid\) \| 2 \| 125 \| 4 \| [\d.]+ \([\d.]+\) \| 4000 \| 0 \| 0 \| 4000 \|", out, re.M)
    assert dql, out
    # Rennala NIGT: one gradient sum per agent per round plus counted control messages
    assert re.search(r"^rennala-nigt \(M 50\) \| 2 \| 130 \| 4 \| \d+ \| \d+ \| [1-9]\d* \| [1-9]\d* \|", out, re.M), (
        out
    )


def test_scaling_measures_both_process_counts_and_both_waits(tmp_path):
    out = bench("scaling.py", "--out-dir", str(tmp_path), "--iterations", "50")
    assert "speed-up 2 vs 1 process, blocks" in out and "speed-up 2 vs 1 process, dynamic" in out, out
    assert re.search(r"^blocking: worker wall s", out, re.M) and re.search(r"^polite: worker wall s", out, re.M)


def test_time_to_solve_runs_mpidrl(tmp_path):
    out = bench("time_to_solve.py", "--out-dir", str(tmp_path), "--only", "mpidrl")
    assert re.search(r"^0 \| mpidrl ES \(mpiexec -n 2\) \| (inf|[\d.]+) \| 1 \| [\d.-]+ \|", out, re.M), out


@pytest.mark.skipif(importlib.util.find_spec("cma") is None, reason="pycma (pip install cma) is not installed")
def test_time_to_solve_runs_pycma(tmp_path):
    out = bench("time_to_solve.py", "--out-dir", str(tmp_path), "--only", "cma")
    assert re.search(r"^0 \| pycma CMA-ES \(Pool\(2\)\) \| (inf|[\d.]+) \| 1 \| [\d.-]+ \|", out, re.M), out


def test_gradient_ab_checks_identity_and_reports_speedups():
    out = bench("gradient_ab.py")
    # the script raises unless es_gradient equals the plain sum bit for bit
    assert len(re.findall(r"^(True|False) \| \d+ \| \d+ \| [\d.e-]+ \| [\d.e-]+ \| ", out, re.M)) == 4, out


def test_gridworlds_times_both_modes_and_checks_their_results_agree(tmp_path):
    out = bench("gridworlds.py", "--out-dir", str(tmp_path), "--algos", "dql,es")
    # the script exits non-zero in --quick mode unless batched and one-by-one results are identical
    assert len(re.findall(r"^1 \| (dql|es) \| [\d.]+ \| [\d.]+ \| [\d.]+x \| yes \|", out, re.M)) == 2, out


def test_before_after_runs_both_codes_and_checks_they_agree():
    out = bench("before_after.py", "HEAD", timeout=300)
    # the script raises unless both codes ran the same steps and rewards; each setting reports a ratio
    assert len(re.findall(r"^.*: after / before steps per second, median", out, re.M)) == 8, out
    assert "Hopper-v5 rennala-nigt n=5: after / before" in out and "CartPole-v1 lapg n=10: after / before" in out


def test_many_agents_reports_memory_and_the_learners_share():
    out = bench("many_agents.py", "--batch", "0", "50")
    rows = re.findall(
        r"^(\d+) \| (\d+) \| 2 \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+% \| \d+ \| \d+ \| [\d.-]+ \|", out, re.M
    )
    # each n with the automatic limit (2016 for the 8-8 MLP) and with 50 (200 agents then run in 4 parts)
    assert rows == [("20", "2016"), ("20", "50"), ("200", "2016"), ("200", "50")], out


def test_step_cost_times_every_piece_at_each_batch_size():
    out = bench("step_cost.py")
    assert re.search(r"^Gymnasium CartPoleEnv.step, one environment: [\d.]+ us$", out, re.M), out
    rows = re.findall(r"^(.+) \| (\d+) \| [\d.]+ \| [\d.]+$", out, re.M)
    assert len(rows) == 4 * 2 and {int(b) for _, b in rows} == {1, 3}, out


def test_split_bound_times_the_whole_and_both_halves():
    out = bench("split_bound.py")  # the script raises unless both halves return the whole batch's returns
    rows = re.findall(
        r"^(\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+)x", out, re.M
    )
    assert [int(row[0]) for row in rows] == [20, 100], out
    for _, steps, _, half0, half1, slower, bound in rows:
        h0, h1, s = float(half0), float(half1), float(slower)
        # per round the slower half counts: at least the larger sum, at most both together (printed to 1 ms)
        assert int(steps) > 0 and max(h0, h1) - 0.002 <= s <= h0 + h1 + 0.002 and float(bound) > 0, out
