"""Reward against simulated time on several networks: one figure and one table per environment.

    .venv/bin/python analysis/edge_comparison.py RESULTS_DIR [...] -o FIG.png --target R [R ...] [--metric return]

Reads every run file under the directories (``jobs/edge_comparison.sh`` writes ENV/PROFILE/ALGO.h5),
groups them by algorithm and ``time.network``, and draws one panel per network: the agents' mean
``--metric`` of each round, smoothed over ``--smooth`` rounds, against the simulated clock, mean and band
over trials (:func:`mpidrl.figures.plot_by`). It prints Markdown tables: for each target R, the time to R
per algorithm (rows) and network (columns) with each network's places; then, for the first R, one row per
algorithm and network:

- time to R: the first simulated time at which the mean over trials of the smoothed curves reaches R
  (each trial read as a step function of its round ends, :func:`mpidrl.analysis.on_grid`, over the
  trials still running; evaluated at every round end), "-" if it never does;
- how many trials' own smoothed curves reach R at some round, and the median of their own first times
  (a trial that never does counts as later than all; "-" when half the trials or more never do);
- rounds to R and episodes (or gradients) per agent to R: as the time, against those axes;
- seconds per round (simulated, mean over trials and rounds) and bytes per agent per round (uplink,
  downlink, control: means over trials, rounds and agents);
- final: the mean over trials of the last 10 % of rounds.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from mpidrl.analysis import (
    Setting,
    center_band,
    final_values,
    load,
    moving_average,
    on_grid,
    run_script,
    time_to,
)
from mpidrl.config import flatten
from mpidrl.figures import plot_by

KEY = "time.network"
ORDER = "dql ebcdql davia es espc es-fixed nigt-sync rennala-nigt malenia-nigt afedpg lapg".split()
"""Rows and legend in this order (value-based, ES family, policy gradients); other names after them."""
NETWORKS = "infiniband ethernet wifi lte lte-stragglers links kappa".split()
"""Panels and columns in this order (fastest first)."""


def rank(algo: str) -> tuple[int, str]:
    return (ORDER.index(algo) if algo in ORDER else len(ORDER), algo)


def network(s: Setting) -> str:
    return str(flatten(s.config).get(KEY))


def prepare(settings: list[Setting], metric: str, smooth: int) -> list[Setting]:
    """Label each setting by its algorithm and replace ``metric`` by its smoothed agent mean [T, R]."""
    for s in settings:
        s.label = s.algo
        s.metrics[metric] = moving_average(s.per_trial(metric), smooth)
    place = {name: i for i, name in enumerate([*NETWORKS, *sorted({network(s) for s in settings} - set(NETWORKS))])}
    return sorted(settings, key=lambda s: (place[network(s)], rank(s.algo)))


def axis(s: Setting, x: str) -> np.ndarray:
    """[T, R] a trial's position at each round's end: simulated time, round, or episodes (or gradients) per
    agent so far."""
    if x == "round":
        return np.where(np.isfinite(s.metrics["sim_time"]), np.arange(1.0, s.rounds + 1), np.nan)
    if x == "episodes":
        return np.cumsum(s.per_trial("episodes"), axis=1)
    return s.metrics[x]


def time_to_target(s: Setting, metric: str, target: float, x: str = "sim_time") -> float:
    """First ``x`` at which the mean over the running trials reaches ``target`` (exact: evaluated at every
    round end of every trial)."""
    times = axis(s, x)
    grid = np.unique(times[np.isfinite(times)])
    center, _, _ = center_band(on_grid(times, s.metrics[metric], grid))
    return time_to(grid, center, target)


def row(s: Setting, metric: str, target: float) -> dict[str, object]:
    values = s.metrics[metric]
    own = time_to(s.metrics["sim_time"], values, target)  # each trial's own first time
    reached = np.isfinite(own)
    sim = s.metrics["sim_time"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a trial without a written round is NaN
        per_round = np.nanmean(np.nanmax(sim, axis=1) / np.isfinite(sim).sum(axis=1))
    traffic = {m: float(np.nanmean(s.per_trial(m))) for m in ("uplink_bytes", "downlink_bytes", "control_bytes")}
    return {
        "algorithm": s.algo,
        "network": network(s),
        "time": time_to_target(s, metric, target),
        "reached": f"{int(reached.sum())}/{s.trials}",
        "median": float(np.median(np.where(reached, own, np.inf))),  # inf: half the trials or more never did
        "rounds": time_to_target(s, metric, target, x="round"),
        "episodes": time_to_target(s, metric, target, x="episodes"),
        "per_round": float(per_round),
        **traffic,
        "final": float(np.nanmean(final_values(values))),
        "total_rounds": s.rounds,
    }


def number(v: float, digits: int = 3) -> str:
    return "-" if not np.isfinite(v) else f"{v:.{digits}g}" if abs(v) < 10**digits else f"{v:.0f}"


def table(rows: list[dict[str, object]], target: float, metric: str) -> str:
    head = (
        f"| algorithm | network | sim. time to {metric} {target:g} (s) | trials reaching it | median of their times "
        "| rounds to it "
        "| episodes / agent to it "
        "| s / round | uplink B / agent / round | downlink B | control B | final (last 10 %) | rounds |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append(
            f"| {r['algorithm']} | {r['network']} | {number(r['time'])} | {r['reached']} | {number(r['median'])} "
            f"| {number(r['rounds'])} "
            f"| {number(r['episodes'])} "
            f"| {number(r['per_round'])} | {r['uplink_bytes']:.0f} | {r['downlink_bytes']:.0f} "
            f"| {r['control_bytes']:.0f} | {r['final']:.2f} | {r['total_rounds']} |"
        )
    return "\n".join(lines)


def pivot(rows: list[dict[str, object]], target: float, metric: str) -> str:
    """Time to the target per algorithm (rows) and network (columns), with each network's ordering."""
    networks = list(dict.fromkeys(str(r["network"]) for r in rows))
    algos = sorted(dict.fromkeys(str(r["algorithm"]) for r in rows), key=rank)
    cell = {(r["algorithm"], r["network"]): r for r in rows}
    place = {}
    for net in networks:
        # places of the times as printed: equal numbers share a place
        times = {
            a: float(number(cell[a, net]["time"]))
            for a in algos
            if np.isfinite(cell.get((a, net), {}).get("time", np.nan))
        }
        place.update({(a, net): 1 + sum(u < t for u in times.values()) for a, t in times.items()})
    head = "| algorithm | " + " | ".join(f"{net}: time to {target:g} (place)" for net in networks) + " |"
    lines = [head, "|---|" + "---|" * len(networks)]
    for a in algos:
        cells = []
        for net in networks:
            r = cell.get((a, net))
            cells.append(
                "" if r is None else f"{number(r['time'])}" + (f" ({place[a, net]})" if (a, net) in place else "")
            )
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run files or directories of them")
    p.add_argument("-o", "--output", required=True, help="figure (PNG)")
    p.add_argument("--metric", default="reward", help="per-agent metric: reward (discounted) or return")
    p.add_argument(
        "--target",
        type=float,
        nargs="+",
        required=True,
        help="reward thresholds: a table of times for each, details for the first",
    )
    p.add_argument("--smooth", type=int, default=5, help="rounds in the moving average")
    p.add_argument("--title", default="")
    p.add_argument("--table", help="also write the table to this Markdown file")
    args = p.parse_args()

    settings = prepare(load(args.runs).settings, args.metric, args.smooth)
    pivots = [pivot([row(s, args.metric, t) for s in settings], t, args.metric) for t in args.target]
    rows = sorted((row(s, args.metric, args.target[0]) for s in settings), key=lambda r: rank(str(r["algorithm"])))
    text = "\n\n".join([*pivots, table(rows, args.target[0], args.metric)])
    print(text)
    if args.table:
        Path(args.table).write_text(text + "\n")
    smoothed = f"{args.smooth}-round average" if args.smooth > 1 else "per round"
    title = (f"{args.title}: " if args.title else "") + f"{args.metric} ({smoothed}) against simulated time"
    print(f"wrote {plot_by(settings, args.output, KEY, args.metric, title=title, order=ORDER)}")


if __name__ == "__main__":
    run_script(main)
