"""Simulated time to reach a return against the communication time kappa, one line per algorithm.

    .venv/bin/python analysis/pg_kappa.py --target 100 -o FIG.png KAPPA=RUN.h5[,RUN.h5 ...] ...

Each argument is ``kappa=run_a.h5,run_b.h5`` (one run per algorithm, same order for every kappa; ``--labels``
names them in that order);
the time is where the trial-mean smoothed return first reaches the target (analysis/pg_time.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pg_time import summarise  # noqa: E402

from mpidrl.analysis import run_script, time_to  # noqa: E402
from mpidrl.store import read_run  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("points", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--target", type=float, required=True)
    p.add_argument("--smooth", type=int, default=5)
    p.add_argument("--labels", nargs="*", help="one per run of a kappa (default: the algorithm's name)")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kappas, table = [], {}
    for point in args.points:
        kappa, paths = point.split("=", 1)
        kappas.append(float(kappa))
        for j, path in enumerate(paths.split(",")):
            run = read_run(path)
            grid, mean, _, _ = summarise(run, "sim_time", "return", args.smooth)
            t = time_to(grid, mean, args.target)
            label = args.labels[j] if args.labels else run.config["algo"]["name"]
            table.setdefault(label, []).append(t)
            print(f"kappa={kappa} {label}: reaches {args.target:g} at sim_time {t:.6g}")
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    x = np.array(kappas)
    for name, times in table.items():
        ax.plot(np.where(x > 0, x, 0.01), times, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("kappa (s per communication; 0 drawn at 0.01)")
    ax.set_ylabel(f"simulated time to return {args.target:g} (s)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    run_script(main)
