"""A sweep's final returns as grids: one Markdown table per value of ``--by``, ``--rows`` x ``--cols``.

    .venv/bin/python analysis/pg_grid.py results/pg-hopper-tune --rows algo.alpha --cols algo.eta --by algo.name

Each cell is the final return (mean over the last ``--last`` rounds of the agents' mean return; mean over
the setting's seeds and trials, with the number of seeds if more than one); the best cell of each table is
in bold.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from mpidrl.analysis import agent_mean, as_float, final_values
from mpidrl.config import flatten
from mpidrl.store import read_run


def finals(directory: Path, metric: str, last: int) -> dict[tuple, list[float]]:
    """{flattened config items: [final value of each trial of each run file]} over ``directory/runs``."""
    out: dict[tuple, list[float]] = defaultdict(list)
    for path in sorted((directory / "runs").glob("*/*.h5")):
        run = read_run(path)
        if run.attrs.get("status") != "complete":
            continue
        key = tuple(sorted((k, repr(v)) for k, v in flatten(run.config).items() if k not in ("run.seed", "run.out")))
        out[key] += [float(v) for v in final_values(agent_mean(as_float(run)[metric]), last)]
    return out


def grids(values: dict[tuple, list[float]], rows: str, cols: str, by: str | None) -> str:
    cells: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(dict)
    for key, v in values.items():
        cfg = dict(key)
        cells[cfg.get(by, "") if by else ""][(cfg[rows], cfg[cols])] = v
    out = []
    for group in sorted(cells):
        table = cells[group]
        rs = sorted({r for r, _ in table}, key=float)
        cs = sorted({c for _, c in table}, key=float)
        best = max(table, key=lambda rc: np.mean(table[rc]))
        if by:
            out += [f"{by} = {group}", ""]
        out += [f"| {rows} \\ {cols} | " + " | ".join(cs) + " |", "|---" * (len(cs) + 1) + "|"]
        for r in rs:
            row = []
            for c in cs:
                v = table.get((r, c))
                text = "" if v is None else f"{np.mean(v):.1f}" + (f" ({len(v)})" if len(v) > 1 else "")
                row.append(f"**{text}**" if (r, c) == best else text)
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
    args = p.parse_args()
    print(grids(finals(args.sweep, args.metric, args.last), args.rows, args.cols, args.by))


if __name__ == "__main__":
    main()
