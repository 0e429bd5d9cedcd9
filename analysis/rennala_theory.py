"""Rennala's simulated time per round against the closed form t*(M) of its time complexity.

    python analysis/rennala_theory.py -o docs/figures/rennala_theory.png [--rounds 200]

For several h profiles (n = 10 agents), the mean over ``--rounds`` rounds of the time
:func:`mpidrl.protocols.plans.plan_first` gives Rennala's collection (stop at the M-th gradient
from any agents; the Allreduce is left out), against :mod:`mpidrl.theory`: the exact time (constant h:
the M-th smallest of {k h_i}; exponential times: the Gamma mean M / sum 1/mu_i) and
t*(M) = min_m (1/m sum_{i<=m} 1/h_(i))^-1 (1 + M/m) computed with the h_i (random tables: their means).
Prints a Markdown table and draws time per round against M for four profiles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mpidrl import theory, timing
from mpidrl.analysis import run_script
from mpidrl.config import from_dict
from mpidrl.protocols.plans import plan_first

N = 10
PROFILES = {
    "equal, h = 1": 1.0,
    "h = sqrt(i)": "sqrt(i)",
    "straggler, h = 1 x 9, 100": "100 if i == 10 else 1",
    "linear, h = i": "i",
    "exponential, mean sqrt(i)": {"dist": "exponential", "mean": "sqrt(i)"},
    "lognormal, mean sqrt(i), sigma 1": {"dist": "lognormal", "mean": "sqrt(i)", "sigma": 1.0},
}
TABLE_M = (1, 10, 100, 1000)
FIGURE = ("equal, h = 1", "h = sqrt(i)", "straggler, h = 1 x 9, 100", "exponential, mean sqrt(i)")
FIGURE_M = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000)


def model(h) -> tuple[timing.TimeModel, np.ndarray]:
    cfg = from_dict({"agents": {"n": N}, "time": {"mode": "simulated", "h": h}})
    return timing.TimeModel(cfg.time, N), theory.agent_times(cfg.time, N)


def simulated(m: timing.TimeModel, M: int, rounds: int) -> np.ndarray:
    """Rennala's collection time in each of the first ``rounds`` rounds."""
    return np.array([plan_first(m, r, lambda counts: counts.sum() >= M)[1] for r in range(rounds)])


def exact(h, means: np.ndarray, M: int) -> float:
    """The exact time (mean) of the round, where mpidrl.theory has one; NaN otherwise."""
    if not isinstance(h, dict):
        return theory.rennala_exact(means, M)
    if h["dist"] == "exponential":
        return theory.rennala_exponential(means, M)[0]
    return float("nan")


def table(rounds: int) -> None:
    print(
        f"n = {N} agents. Simulated: constant h, one round (every round is the same); random times, the mean"
        f" +- its standard error over {rounds} rounds. t*(M) and best m (its minimiser) use the h_i, or their means."
    )
    print()
    print("| h profile | n | M | simulated s per round | exact | t*(M) | best m | simulated / t*(M) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, h in PROFILES.items():
        m, means = model(h)
        for M in TABLE_M:
            times = simulated(m, M, rounds if isinstance(h, dict) else 1)
            se = times.std(ddof=1) / np.sqrt(times.size) if times.size > 1 else 0.0
            sim = f"{times.mean():.4g}" + (f" +- {se:.2g}" if isinstance(h, dict) else "")
            ex = exact(h, means, M)
            bound = theory.rennala_bound(means, M)
            best = theory.rennala_best_m(means, M)
            row = [name, N, M, sim, "-" if np.isnan(ex) else f"{ex:.4g}", f"{bound:.4g}", best]
            print("| " + " | ".join(str(v) for v in row) + f" | {times.mean() / bound:.3f} |")


def figure(path: str, rounds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(9, 6.4), sharex=True)
    dense = np.unique(np.round(np.logspace(0, 3, 200)).astype(int))
    for ax, name in zip(axes.ravel(), FIGURE):
        h = PROFILES[name]
        m, means = model(h)
        bound = np.array([theory.rennala_bound(means, M) for M in dense])
        ax.fill_between(dense, bound / 2, bound, color="C0", alpha=0.15, lw=0, label="t*(M)/2 to t*(M)")
        ax.plot(dense, bound, color="C0", lw=1.5, label="closed form t*(M)")
        sync = np.array([theory.sync_exact(means, M) for M in dense])
        if isinstance(h, dict):
            gamma = np.array([theory.rennala_exponential(means, M)[0] for M in dense])
            ax.plot(dense, gamma, color="C2", ls=":", lw=1.5, label="exact mean M / sum 1/mu_i")
        else:
            ax.plot(dense, sync, color="0.5", lw=1, ls="--", label="synchronous: ceil(M/n) max h")
        sims = [simulated(m, M, rounds if isinstance(h, dict) else 1).mean() for M in FIGURE_M]
        ax.plot(FIGURE_M, sims, "o", color="C3", ms=4, label="simulated (plan_first)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name + (f" ({rounds} rounds)" if isinstance(h, dict) else ""), fontsize=10)
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[1]:
        ax.set_xlabel("M (gradients per round)")
    for ax in axes[:, 0]:
        ax.set_ylabel("time per round (s)")
    fig.suptitle(f"Rennala's collection time per round, n = {N}: simulated clock against the closed form", fontsize=11)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", help="the figure (PNG); none: the table only")
    p.add_argument("--rounds", type=int, default=200, help="rounds averaged for random times")
    args = p.parse_args()
    table(args.rounds)
    if args.output:
        figure(args.output, args.rounds)


if __name__ == "__main__":
    run_script(main)
