"""Wall time of the chapter-3 grid-world comparison, trials one by one against trials in a batch.

What it measures: for each algorithm, the wall time of ``mpiexec -n NP mpidrl run
configs/report/fig3_4_simplegrid_ALGO.toml`` (process start-up included) with ``run.trial_batch = 1``
("one by one") and with all trials in one batch ("batched"), the two alternating algorithm by algorithm,
``--repeats`` times. "One by one" can also run another commit's code (``--before COMMIT``, exported
with ``git archive`` and put first on PYTHONPATH; commits without trial_batch get no --set for it).
After each pair it checks that both run files hold the same metrics (all but wall_time and rank) and
diagnostics, and says so; ``--quick`` (the smoke test) fails unless they do. The load average is
printed beside every time: the machine may be shared.

Run:  .venv/bin/python benchmarks/gridworlds.py [--quick] [--np 2] [--trials 10] [--rounds 1000]
          [--algos dql,ebcdql,davia,es] [--repeats 1] [--before COMMIT] [--out-dir results/bench]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import BIN, ROOT, load, machine

from mpidrl.store import read_run


def export(commit: str) -> Path:
    """The mpidrl package of ``commit``, unpacked in a temporary directory (for PYTHONPATH)."""
    where = Path(tempfile.mkdtemp(prefix="mpidrl-before-"))
    archive = where / "src.tar"
    subprocess.run(["git", "archive", "-o", str(archive), commit, "mpidrl"], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where


def timed_run(algo: str, args: argparse.Namespace, batch: int | None, out: Path, path: Path | None) -> float:
    """Seconds one ``mpidrl run`` takes; ``batch`` None leaves run.trial_batch unset (older code)."""
    # the report's config without its trial_batch line, which code from before the option refuses
    text = (ROOT / "configs" / "report" / f"fig3_4_simplegrid_{algo}.toml").read_text().splitlines()
    cfg = out.with_suffix(".toml")
    cfg.write_text("\n".join(line for line in text if not line.startswith("trial_batch")) + "\n")
    sets = [f"run.trials={args.trials}", f"run.rounds={args.rounds}", "run.record_messages=true"]
    if batch is not None:
        sets.append(f"run.trial_batch={batch}")
    cmd = [str(BIN / "mpiexec"), "-n", str(args.np), str(BIN / "python"), "-m", "mpidrl", "run", str(cfg)]
    cmd += [arg for s in sets for arg in ("--set", s)] + ["--out", str(out), "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=3600, capture_output=True, env=env)
    return time.perf_counter() - start


def same_results(a: Path, b: Path) -> bool:
    """Whether two run files hold the same metrics (but wall_time and rank) and diagnostics, NaN where NaN."""
    x, y = read_run(a), read_run(b)
    names = [k for k in x.metrics if k not in ("wall_time", "rank")]  # rank: where agents ran
    return all(np.array_equal(x.metrics[k], y.metrics[k], equal_nan=True) for k in names) and all(
        np.array_equal(x.diagnostics[k], y.diagnostics[k], equal_nan=True) for k in x.diagnostics
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 trials x 20 rounds (smoke test)")
    parser.add_argument("--np", type=int, default=2, help="MPI processes")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--algos", default="dql,ebcdql,davia,es")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before", help="commit whose code runs the one-by-one runs (default: this tree)")
    parser.add_argument("--out-dir", default="results/bench")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.rounds = 3, 20
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = export(args.before) if args.before else None
    print(machine())
    print(f"Simple Grid, 5 agents, {args.trials} trials x {args.rounds} rounds, mpiexec -n {args.np}")
    print(f"one by one: {'commit ' + args.before if before else 'this tree, run.trial_batch=1'}")
    print("repeat | algo | one by one s | batched s | speed-up | same results | load before, after")
    totals = {"one": 0.0, "batched": 0.0}
    for rep in range(args.repeats):
        for algo in args.algos.split(","):
            start_load = load()
            one, batched = out_dir / f"grid_{algo}_one.h5", out_dir / f"grid_{algo}_batched.h5"
            t_one = timed_run(algo, args, None if before else 1, one, before)
            t_batched = timed_run(algo, args, args.trials, batched, None)
            totals["one"] += t_one
            totals["batched"] += t_batched
            same = same_results(one, batched)
            print(
                f"{rep + 1} | {algo} | {t_one:.1f} | {t_batched:.1f} | {t_one / t_batched:.1f}x | "
                f"{'yes' if same else 'NO'} | {start_load}, {load()}",
                flush=True,
            )
            if args.quick and not same:
                raise SystemExit(f"{algo}: batched and one-by-one results differ")
    print(f"total | all | {totals['one']:.1f} | {totals['batched']:.1f} | {totals['one'] / totals['batched']:.1f}x")


if __name__ == "__main__":
    main()
