"""A sweep's final returns as grids: one Markdown table per value of ``--by``, ``--rows`` x ``--cols``.

    .venv/bin/python analysis/pg_grid.py results/pg-hopper-tune --rows algo.alpha --cols algo.eta --by algo.name

Each cell is the final return (mean over the last ``--last`` rounds of the agents' mean return): its mean
over the setting's seeds and trials and, with more than one, the half-width of its 95 % confidence
interval and their number (``mean +- half (k)``); the best mean of each table is in bold. With
``--rounds-to R`` a cell is the first round at which the setting's trial-mean curve (``--smooth``-round
moving average) reaches R.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from mpidrl.analysis import agent_mean, as_float, final_values, mean_interval, moving_average, run_script
from mpidrl.config import flatten
from mpidrl.store import read_run


def per_trial(directory: Path, metric: str) -> dict[tuple, list[np.ndarray]]:
    """{flattened config items: [agent-mean ``metric`` by round, for each trial of each complete run file]}
    over ``directory/runs``."""
    out: dict[tuple, list[np.ndarray]] = defaultdict(list)
    for path in sorted((directory / "runs").glob("*/*.h5")):
        run = read_run(path)
        if run.attrs.get("status") != "complete":
            continue
        key = tuple(sorted((k, repr(v)) for k, v in flatten(run.config).items() if k not in ("run.seed", "run.out")))
        out[key] += list(agent_mean(as_float(run)[metric]))
    return out


def finals(curves: dict[tuple, list[np.ndarray]], last: int) -> dict[tuple, list[float]]:
    """The mean of each curve's last ``last`` rounds."""
    return {key: [float(v) for v in final_values(np.array(c), last)] for key, c in curves.items()}


def rounds_to(curves: dict[tuple, list[np.ndarray]], target: float, smooth: int) -> dict[tuple, list[float]]:
    """The first round (1-based) at which the trial-mean curve, averaged over ``smooth`` rounds, reaches
    ``target`` (inf if it never does)."""
    out = {}
    for key, c in curves.items():
        mean = moving_average(np.nanmean(np.array(c), axis=0)[None, :], smooth)[0]
        hit = np.flatnonzero(mean >= target)
        out[key] = [float(hit[0] + 1) if hit.size else math.inf]
    return out


def cell(values: list[float], digits: int) -> str:
    """mean, and with several values the half-width of the mean's 95 % confidence interval and their number."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    mean, low, _ = mean_interval(np.array(values)[:, None])
    return f"{mean[0]:.{digits}f} +- {mean[0] - low[0]:.{digits}f} ({len(values)})"


def grids(
    values: dict[tuple, list[float]], rows: str, cols: str, by: str | None, digits: int = 1, best: str = "max"
) -> str:
    cells: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(dict)
    for key, v in values.items():
        cfg = dict(key)
        cells[cfg.get(by, "") if by else ""][(cfg[rows], cfg[cols])] = v
    out = []
    for group in sorted(cells):
        table = cells[group]
        rs = sorted({r for r, _ in table}, key=float)
        cs = sorted({c for _, c in table}, key=float)
        pick = {"max": max, "min": min}.get(best)
        top = pick(table, key=lambda rc: np.mean(table[rc])) if pick else None
        if top is not None and not np.isfinite(np.mean(table[top])):  # nothing reached the target
            top = None
        if by:
            out += [f"{by} = {group}", ""]
        out += [f"| {rows} \\ {cols} | " + " | ".join(cs) + " |", "|---" * (len(cs) + 1) + "|"]
        for r in rs:
            row = []
            for c in cs:
                v = table.get((r, c))
                text = "" if v is None else cell(v, digits)
                row.append(f"**{text}**" if (r, c) == top else text)
            out.append(f"| {r} | " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", type=Path, help="the sweep's output directory (with runs/)")
    p.add_argument("--rows", required=True)
    p.add_argument("--cols", required=True)
    p.add_argument("--by")
    p.add_argument("--metric", default="return")
    p.add_argument("--last", type=int, default=10, help="rounds averaged at the end")
    p.add_argument("--digits", type=int, default=1)
    p.add_argument("--best", choices=("max", "min", "none"), default="max", help="which cell is in bold")
    p.add_argument("--rounds-to", type=float, metavar="R", help="cells: the round the trial-mean curve first reaches R")
    p.add_argument("--smooth", type=int, default=10, help="rounds averaged for --rounds-to")
    args = p.parse_args()
    curves = per_trial(args.sweep, args.metric)
    values = finals(curves, args.last) if args.rounds_to is None else rounds_to(curves, args.rounds_to, args.smooth)
    print(grids(values, args.rows, args.cols, args.by, args.digits, args.best))


if __name__ == "__main__":
    run_script(main)
