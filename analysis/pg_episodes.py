"""What a policy-gradient run's episodes look like: how long they last and what a step earns.

One row per run file (each trial of a file its own row): the peak of the agents' mean undiscounted return
averaged over ``--smooth`` rounds (and its round), the mean return over the last ``--last`` rounds, and over
those rounds the steps per episode and the return per step (all episodes' returns over all their steps).
On Hopper the return per step tells standing from hopping: the healthy bonus is 1 a step, forward
progress adds to it.

    .venv/bin/python analysis/pg_episodes.py results/pg-hopper-discount/runs/*/*.h5 --keys env.gamma algo.alpha
"""

from __future__ import annotations

import argparse

import numpy as np

from mpidrl.analysis import agent_mean, as_float, moving_average, run_script
from mpidrl.config import flatten
from mpidrl.store import read_run


def rows(path: str, keys: list[str], smooth: int, last: int) -> list[list[str]]:
    """The table rows of one run file, one per trial that wrote a round."""
    run = read_run(path)
    metrics, config = as_float(run), flatten(run.config)
    out = []
    for t, ret in enumerate(agent_mean(metrics["return"])):
        done = int(np.isfinite(ret).sum())
        if not done:
            continue
        mean = moving_average(ret[None, :done], smooth)[0]
        peak = int(np.nanargmax(mean))
        window = slice(max(0, done - last), done)
        episodes = metrics["episodes"][t, window]
        total = np.nansum(metrics["return"][t, window] * episodes)
        steps = np.nansum(metrics["steps"][t, window])
        out.append(
            [path, str(t), *(str(config.get(k, "-")) for k in keys), str(done)]
            + [f"{mean[peak]:.0f} ({peak + 1})", f"{np.nanmean(ret[window]):.1f}"]
            + [f"{steps / np.nansum(episodes):.0f}", f"{total / steps:.2f}"]
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN.h5")
    ap.add_argument("--keys", nargs="*", default=[], help="config keys to show as columns")
    ap.add_argument("--smooth", type=int, default=5, help="rounds in the moving average of the peak")
    ap.add_argument("--last", type=int, default=20, help="rounds at the end for the other columns")
    args = ap.parse_args()
    head = ["run", "trial", *args.keys, "rounds", f"peak of the {args.smooth}-round mean (round)"]
    head += [f"last {args.last} rounds", "steps per episode", "return per step"]
    table = [row for path in args.runs for row in rows(path, args.keys, args.smooth, args.last)]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in table:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    run_script(main)
