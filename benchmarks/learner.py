"""Learner cost of ES as the number of agents n and of parameters d grow.

What it measures: rounds per second of ``ESLearner.update`` (regenerating the n perturbations of d
parameters from their (seed, trial, NOISE, round, agent) streams, summing F_i eps_i in agent order and
stepping Adam) for n in {10, 100, 1000} and d in {1e3, 1e4, 1e5, 1e6}, on a CartPole-shaped MLP with one
hidden layer sized to give d parameters (cells with n d above ``--max-nd``, 1e8 by default, are
skipped: on a shared 2-core machine one round of n = 1000, d = 1e6 takes minutes). No environment is
stepped. Each cell runs rounds until at least ``--min-time`` seconds have passed (at least one round);
with ``--repeats`` the cell is measured several times and the median and range are printed. Also
printed: ns per generated number (time / (n d)).

Run:  .venv/bin/python benchmarks/learner.py [--quick] [--repeats 3] [--antithetic] [--cells 100:10000 ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import es_config, load, machine

from mpidrl import registry
from mpidrl.envs import EnvSpec
from mpidrl.protocols import Context

SPEC = EnvSpec(obs_dim=4, discrete_obs=0, n_actions=2, act_dim=0)
"""CartPole's shapes: d = 7 h + 2 for one hidden layer of h units"""


def rounds_per_second(n: int, d: int, antithetic: bool, min_time: float) -> tuple[float, int]:
    """(rounds per second of the learner update, actual d) for n agents and about d parameters."""
    h = max(1, round((d - 2) / 7))
    cfg = es_config("CartPole-v1", n, (h,), antithetic=antithetic)
    learner = registry.lookup("es").learner(Context(cfg, 0, SPEC))
    returns = np.random.default_rng(0).standard_normal(n)
    messages = [(a, np.array([returns[a]])) for a in range(n)]
    done, t0 = 0, time.perf_counter()
    while True:
        learner.update(done, messages)
        done += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return done / elapsed, learner.policy.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small n and d only (smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--antithetic", action="store_true", help="antithetic pairs (the default config)")
    parser.add_argument("--max-nd", type=float, default=1e8, help="skip cells with n d above this (time)")
    parser.add_argument("--cells", nargs="+", help="only these n:d cells, e.g. 100:10000")
    args = parser.parse_args()
    ns, ds = ((10, 100), (1000, 10_000)) if args.quick else ((10, 100, 1000), (1000, 10_000, 100_000, 1_000_000))
    cells = [(n, d) for n in ns for d in ds]
    if args.cells:
        cells = [(int(float(n)), int(float(d))) for n, d in (c.split(":") for c in args.cells)]
    print(machine())
    print(f"antithetic: {args.antithetic}")
    print("n | d | rounds/s median [min, max] | ns per number (median) | load")
    for n, d in cells:
        if n * d > args.max_nd:
            print(f"{n} | {d} | skipped (n d > --max-nd {args.max_nd:g})")
            continue
        rates = []
        for _ in range(1 if args.quick else args.repeats):
            rate, actual = rounds_per_second(n, d, args.antithetic, 0.05 if args.quick else args.min_time)
            rates.append(rate)
        med = float(np.median(rates))
        print(
            f"{n} | {actual} | {med:.4g} [{min(rates):.4g}, {max(rates):.4g}] | "
            f"{1e9 / (med * n * actual):.2f} | {load()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
