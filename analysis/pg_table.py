"""A Markdown table of policy-gradient run files: time to a target return and final return, with spread.

    .venv/bin/python analysis/pg_table.py --target 100 [--at T|end] RUN.h5[=LABEL] [RUN.h5[=LABEL] ...] \\
        [--x sim_time|wall_time]

Per run: the number of trials; the first time the trial-mean smoothed return reaches the target (as
analysis/pg_time.py prints and plots it); the same per trial (median, min-max, and how many trials
reached it; a trial that never does counts as infinite in the median); the final return (mean over the
last 10 rounds of the agents' mean return: mean +- standard deviation over trials, analysis/pg_final.py);
with ``--at T`` the smoothed return of the last round finished by time T (mean +- standard deviation
over trials), which compares runs whose rounds last differently at one time (``--at end``: the time the
first of the runs ends); and the clock at the last round (mean over trials).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pg_final import final_return  # noqa: E402
from pg_time import curves, summarise  # noqa: E402

from mpidrl.analysis import as_float, on_grid, run_script, time_to, trial_ends  # noqa: E402
from mpidrl.store import read_run  # noqa: E402


def _fmt(x: float) -> str:
    return "never" if not np.isfinite(x) else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def row(path: str, label: str, target: float, x: str, smooth: int, at: float | None) -> str:
    run = read_run(path)
    grid, mean, _, _ = summarise(run, x, "return", smooth)
    times, values = curves(run, x, "return", smooth)
    each = np.nan_to_num(time_to(times, values, target), nan=np.inf)  # a trial that never reaches it: inf
    reached = int(np.isfinite(each).sum())
    spread = f"{_fmt(float(np.median(each)))} ({_fmt(each.min())}-{_fmt(each.max())}), {reached}/{each.size}"
    final, std = final_return(path)
    then = ""
    if at is not None:
        value = on_grid(times, values, np.array([at]))[:, 0]
        then = f" {np.mean(value):.0f} +- {np.std(value):.0f} |"
    return (
        f"| {label} | {each.size} | {_fmt(time_to(grid, mean, target))} | {spread} | {final:.0f} +- {std:.0f} "
        f"|{then} {_fmt(float(np.mean(trial_ends(times))))} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="RUN.h5 or RUN.h5=LABEL")
    p.add_argument("--target", type=float, required=True)
    p.add_argument("--x", choices=("sim_time", "wall_time"), default="sim_time")
    p.add_argument("--smooth", type=int, default=5)
    p.add_argument("--at", help="also the return at this time (a number, or 'end': when the first run ends)")
    args = p.parse_args()
    runs = [(path, label or Path(path).stem) for path, _, label in (item.partition("=") for item in args.runs)]
    if args.at == "end":
        args.at = min(float(np.min(trial_ends(as_float(read_run(path))[args.x]))) for path, _ in runs)
    elif args.at is not None:
        args.at = float(args.at)
    unit = "simulated" if args.x == "sim_time" else "wall-clock"
    at = f" return at {args.at:.0f} s |" if args.at is not None else ""
    print(
        f"| run | trials | {unit} s to {args.target:g} (trial mean) | per trial: median (min-max), reached "
        f"| final return (last 10 rounds) |{at} {unit} s at the end |"
    )
    print("|---" * (7 if at else 6) + "|")
    for path, label in runs:
        print(row(path, label, args.target, args.x, args.smooth, args.at))


if __name__ == "__main__":
    run_script(main)
