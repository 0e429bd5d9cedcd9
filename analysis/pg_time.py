"""Return against (simulated or wall-clock) time for several run files, with 20-80 % bands across trials.

    .venv/bin/python analysis/pg_time.py RUN.h5 [RUN.h5 ...] -o FIG.png [--x sim_time|wall_time] [--target R]

Each trial's curve is the agents' mean undiscounted return of the round (the trajectories that counted),
smoothed over ``--smooth`` rounds, as a step function of the time at each round's end
(:func:`mpidrl.analysis.on_grid`: the value of the last round finished by each time); curves are sampled on
a common time grid from 0 to the end of the fastest trial, so that every point is a statistic of all
trials, and summarised by the mean and the 20th-80th percentiles across trials (the paper's bands), or with
``--band ci`` the 95 % confidence interval of the mean (Student t over the trials).
``--target R`` prints, per run, the first time the mean curve reaches R.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mpidrl.analysis import (
    agent_mean,
    as_float,
    center_band,
    moving_average,
    on_grid,
    run_script,
    time_grid,
    time_to,
    trial_ends,
)
from mpidrl.store import Run, read_run

BAND = (20.0, 80.0)
"""Percentiles of the paper's bands."""


def curves(run: Run, x: str, metric: str, smooth: int) -> tuple[np.ndarray, np.ndarray]:
    """Per trial: (times [T, R], smoothed agent-mean metric [T, R]), NaN where a round was not written."""
    metrics = as_float(run)
    return metrics[x], moving_average(agent_mean(metrics[metric]), smooth)


def summarise(run: Run, x: str, metric: str, smooth: int, points: int = 400, stat: str = "mean"):
    """(grid, mean, low, high) of the smoothed curves, up to the fastest trial's end: the 20th and 80th
    percentiles, or with ``stat = "ci"`` the 95 % confidence interval of the mean."""
    times, values = curves(run, x, metric, smooth)
    if not np.isfinite(times).any():
        raise SystemExit(f"{run.path}: no {x} values (a run with a real clock has no sim_time)")
    grid = time_grid(times, points, start=0.0, stop=float(np.nanmin(trial_ends(times))))
    return (grid, *center_band(on_grid(times, values, grid), stat=stat, band=BAND))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--x", choices=("sim_time", "wall_time"), default="sim_time")
    p.add_argument("--metric", default="return")
    p.add_argument("--smooth", type=int, default=5, help="rounds in the moving average")
    p.add_argument("--labels", nargs="*", help="legend labels, one per run")
    p.add_argument("--title", default="")
    p.add_argument("--logx", action="store_true")
    p.add_argument("--target", type=float, help="print the time each run's mean curve first reaches this")
    p.add_argument(
        "--band",
        choices=("percentiles", "ci"),
        default="percentiles",
        help="20-80 %% of the trials (the paper's), or the 95 %% confidence interval of the mean",
    )
    args = p.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    labels = args.labels or [Path(r).stem for r in args.runs]
    for path, label in zip(args.runs, labels):
        run = read_run(path)
        grid, mean, lo, hi = summarise(
            run, args.x, args.metric, args.smooth, stat="ci" if args.band == "ci" else "mean"
        )
        (line,) = ax.plot(grid, mean, label=label)
        ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        if args.target is not None:
            print(
                f"{path}: {label}: first reaches {args.target:g} at {args.x} = {time_to(grid, mean, args.target):.6g}"
            )
    ax.set_xlabel("simulated time (s)" if args.x == "sim_time" else "wall-clock time (s)")
    ax.set_ylabel(f"{args.metric} (mean over agents, {args.smooth}-round average)")
    band = "95 % confidence interval of the mean" if args.band == "ci" else "20-80 % of trials"
    ax.text(0.01, 0.01, f"bands: {band}", transform=ax.transAxes, fontsize=7, alpha=0.7)
    if args.logx:
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_title(args.title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    run_script(main)
