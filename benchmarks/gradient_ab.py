"""The ES gradient before and after its speed-up, interleaved in one process (an A/B under equal load).

What it measures: for each (n, d) cell and with and without antithetic pairs, the time of
``mpidrl.algorithms.es.es_gradient`` against the plain sum it replaced (a fresh ``rng.generator`` per
agent, ``g += f * eps`` with new arrays each time, as the code of commit 7ceb4ea did), alternating the two
``--repeats`` times so that both see the same machine load. It also checks that both give the same
vector bit for bit. Printed: median time of each, and the median and range of the per-pair speed-ups.

Run:  .venv/bin/python benchmarks/gradient_ab.py [--quick] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import es_config, machine, spread

from mpidrl import rng
from mpidrl.algorithms.es import centered_ranks, es_gradient
from mpidrl.protocols import Context


def plain_gradient(ctx: Context, round: int, agents: list[int], returns: np.ndarray, size: int) -> np.ndarray:
    """The ES gradient as computed before: one fresh generator and new arrays per agent."""
    g = np.zeros(size)
    for agent, f in zip(agents, centered_ranks(returns)):
        if ctx.cfg.algo.antithetic:
            pair, sign = divmod(agent, 2)
            eps = rng.generator(ctx.seed, ctx.trial, rng.Stream.NOISE, round, pair).standard_normal(size)
            eps = -eps if sign else eps
        else:
            eps = rng.generator(ctx.seed, ctx.trial, rng.Stream.NOISE, round, agent).standard_normal(size)
        g += f * eps
    return g / (len(agents) * ctx.cfg.algo.sigma)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small cells, one repeat (smoke test)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cells = (
        [(10, 1000), (100, 1000)]
        if args.quick
        else [(10, 1_000), (100, 1_000), (1000, 1_000), (10, 100_000), (100, 10_000), (100, 100_000), (10, 1_000_000)]
    )
    print(machine())
    print("antithetic | n | d | plain s (median) | es_gradient s (median) | speed-up median [min, max]")
    for antithetic in (False, True):
        for n, d in cells:
            ctx = Context(es_config("CartPole-v1", n, (8, 8), antithetic=antithetic), 0, None)
            agents = list(range(n))
            returns = np.random.default_rng(1).standard_normal(n)
            times: dict[str, list[float]] = {"plain": [], "fast": []}
            for rep in range(1 if args.quick else args.repeats):
                order = (("plain", plain_gradient), ("fast", es_gradient))
                out = {}
                for name, fn in order if rep % 2 == 0 else order[::-1]:
                    t0 = time.perf_counter()
                    out[name] = fn(ctx, rep, agents, returns, d)
                    times[name].append(time.perf_counter() - t0)
                if not np.array_equal(out["plain"], out["fast"]):
                    raise AssertionError(f"n={n} d={d}: es_gradient differs from the plain sum")
            ratios = [p / f for p, f in zip(times["plain"], times["fast"])]
            print(
                f"{antithetic} | {n} | {d} | {np.median(times['plain']):.4g} | {np.median(times['fast']):.4g} | "
                f"{spread(ratios)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
