"""The report's value-based comparisons (Figures 3.4, 3.5, 4.2, 4.3) from run files.

    .venv/bin/python analysis/fig_ch3.py results/value_based/fig3_4_simplegrid_*.h5 \\
        -o docs/figures/fig3_4_simplegrid.png

draws reward, messages per agent and uplink bytes per agent against the round (one episode per agent
per round), each as the mean over trials and agents with the 10th-90th percentile band across trials,
every run file on the same axes, and prints a table of the same quantities over a few windows of rounds.
``--cumulative`` plots the cumulative reward (the report's Figure 3.5a, for the noisy Frozen Lake).
``--undiscounted`` shows the undiscounted return instead of the discounted reward: what the report authors'
code plotted, and the one measure that compares runs with different discounts (configs/report_code).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from mpidrl.analysis import agent_mean, as_float, center_band, run_script
from mpidrl.store import Run, read_run

PANELS = (
    ("reward", "discounted reward"),
    ("uplink_messages", "messages / agent"),
    ("uplink_bytes", "uplink bytes / agent"),
)
UNDISCOUNTED = (("return", "undiscounted return"), *PANELS[1:])
"""The panels with ``--undiscounted``."""
WINDOWS = ((0, 10), (90, 100), (190, 200), (490, 500), (990, 1000))
"""Rounds [start, stop) averaged in the printed table."""


def per_trial(run: Run, metric: str, cumulative: bool = False) -> np.ndarray:
    """[T, R] per-trial agent means of a metric (silent agents' NaN rewards do not count)."""
    values = agent_mean(run.metrics[metric])
    return np.cumsum(values, axis=1) if cumulative else values


def draw(runs: list[Run], out: Path, title: str | None, cumulative: bool, panels=PANELS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4), constrained_layout=True)
    for run in runs:
        trials, rounds = run.metrics["reward"].shape[:2]
        xs = np.arange(1, rounds + 1)
        for ax, (metric, ylabel) in zip(axes, panels):
            mean, lo, hi = center_band(per_trial(run, metric, cumulative and metric == panels[0][0]))
            (line,) = ax.plot(xs, mean, lw=1.2, label=f"{run.config['algo']['name']} ({trials} trials)")
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.set_xlabel("episode (round)")
            ax.set_ylabel(("cumulative " if cumulative and metric == panels[0][0] else "") + ylabel)
    axes[2].set_yscale("symlog", linthresh=10)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def table(runs: list[Run], panels=PANELS) -> str:
    """Markdown table: mean reward, messages and bytes per agent over each window of rounds."""
    head = "| algo | metric | " + " | ".join(f"rounds {a + 1}-{b}" for a, b in WINDOWS) + " |"
    lines = [head, "|" + "---|" * (len(WINDOWS) + 2)]
    for run in runs:
        for metric, name in panels:
            values = per_trial(run, metric)
            cells = []
            for a, b in WINDOWS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cells.append(f"{np.nanmean(values[:, a:b]):.3f}" if b <= values.shape[1] else "")
            lines.append(f"| {run.config['algo']['name']} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN.h5")
    p.add_argument("-o", "--output", required=True, metavar="FIG.png")
    p.add_argument("--title")
    p.add_argument("--cumulative", action="store_true", help="plot the cumulative reward")
    p.add_argument("--undiscounted", action="store_true", help="the undiscounted return instead of the reward")
    args = p.parse_args(argv)
    runs = [read_run(path) for path in args.runs]
    for run in runs:  # NaN where a round was not written (a run that stopped early), not the integer fill
        run.metrics = as_float(run)
    panels = UNDISCOUNTED if args.undiscounted else PANELS
    draw(runs, Path(args.output), args.title, args.cumulative, panels)
    print(table(runs, panels))
    for run in runs:
        wall = np.nanmax(run.metrics["wall_time"], axis=1)
        batch = run.config["run"].get("trial_batch", 1)  # the trials of a batch share one clock: count it once
        seconds = sum(np.nanmax(wall[i : i + batch]) for i in range(0, len(wall), batch))
        print(f"{run.path}: {run.attrs['status']}, {len(wall)} trials, {seconds:.0f} s in trials")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    run_script(main)
