"""Figures 4.1 and 4.7 of the report: ESPC's probability of communication against m (n = 50).

Figure 4.1: E[p_comm] when z is standard normal, by Monte Carlo (100,000 samples, as the report) and
exactly (m/n, and a numerical integral over p in [0, 1]). We add what an agent sees in a stationary run:
its window of k utilities includes the current one, so z is not standard normal and E[p_comm] departs
from m/n for small k (:func:`mpidrl.algorithms.espc.stationary_comm_fraction`).
Figure 4.7: p_comm in the first round, where p = 1/2: P[Bi(n-1, 1/2) >= n-m].

    .venv/bin/python analysis/espc_pcomm.py --out docs/figures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.integrate import quad
from scipy.special import ndtr

from mpidrl.algorithms.espc import comm_probability, stationary_comm_fraction
from mpidrl.analysis import run_script


def expected_p_comm(n: int, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m = 1..n, the Monte Carlo estimate of E[p_comm] over z ~ N(0, 1), and the integral over p."""
    ms = np.arange(1, n + 1)
    z = np.random.default_rng(seed).standard_normal(samples)
    p = ndtr(z)
    monte_carlo = np.array([comm_probability(p, n, m).mean() for m in ms])
    exact = np.array([quad(lambda q, m=m: comm_probability(q, n, m), 0, 1, epsabs=1e-13, limit=200)[0] for m in ms])
    return ms, monte_carlo, exact


def figure_4_1(n: int, samples: int, seed: int, ks: tuple[int, ...], out: Path) -> None:
    import matplotlib.pyplot as plt

    ms, mc, exact = expected_p_comm(n, samples, seed)
    mse = np.mean((mc - ms / n) ** 2)
    print(f"Figure 4.1 (n={n}): Monte Carlo with {samples} samples, MSE against m/n = {mse:.3g}")
    print(f"  numerical integral over p: max |E[p_comm] - m/n| = {np.max(np.abs(exact - ms / n)):.3g}")
    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    ax.plot(ms, ms / n, "r:", lw=2, label="m / n")
    ax.plot(ms, mc, "b-", lw=1, label=f"Monte Carlo, z ~ N(0,1), {samples:,} samples")
    for k in ks:
        stat = np.array([stationary_comm_fraction(n, m, k) for m in ms])
        print(f"  window k={k}, i.i.d. normal utilities: max |E[p_comm] - m/n| = {np.max(np.abs(stat - ms / n)):.3f}")
        ax.plot(ms, stat, "--", lw=1, label=f"i.i.d. utilities, window k={k} (exact)")
    ax.set_xlabel("m")
    ax.set_ylabel("expected p_comm")
    ax.set_title(f"Expected probability of communication, n = {n}")
    ax.legend(fontsize="small")
    fig.savefig(out, dpi=120)
    plt.close(fig)


def figure_4_7(n: int, out: Path) -> None:
    import matplotlib.pyplot as plt

    ms = np.arange(1, n + 1)
    first = np.array([comm_probability(0.5, n, m) for m in ms])
    for m in (5, 10, 15, 20, 25, 30, 35, 45):
        print(f"Figure 4.7 (n={n}): first-round p_comm at m={m}: {first[m - 1]:.4g}")
    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    ax.plot(ms, first, "b.-", label="P[Bi(n-1, 1/2) >= n-m]")
    ax.plot(ms, ms / n, "r:", label="m / n")
    ax.set_xlabel("m")
    ax.set_ylabel("p_comm in the first round")
    ax.set_title(f"First-round probability of communication, n = {n}")
    ax.legend(fontsize="small")
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/figures", help="directory of the PNG files")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, nargs="*", default=[5, 10], help="windows of the stationary curves")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure_4_1(args.n, args.samples, args.seed, tuple(args.k), out / "fig4_1_expected_p_comm.png")
    figure_4_7(args.n, out / "fig4_7_first_round_p_comm.png")
    print(f"wrote {out / 'fig4_1_expected_p_comm.png'} and {out / 'fig4_7_first_round_p_comm.png'}")


if __name__ == "__main__":
    run_script(main)
