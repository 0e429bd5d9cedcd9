"""Cost of one step of a batch: the native CartPole, the policies' forward passes and draws, by batch size.

What it measures: microseconds per call of the pieces a rank's batched rollout calls once a step, for B
sub-environments (or agents) acting at once: ``CartPoleBatch.step_active`` (B = 1 takes the Python-float
path, B > 1 the array path), Gymnasium's own ``CartPoleEnv.step`` on one unwrapped environment for
comparison, ``MLP.batch_actor`` (ES's 8-8 deterministic MLP, a row of parameters per agent) and
``CategoricalMLP.batch_sampler`` / ``GaussianMLP.batch_sampler`` (the policy gradients' 32-32 and
64-64 stochastic MLPs, one generator per agent). Each figure is the best of ``--repeats`` timings of
``--calls`` calls (other work on a shared machine only ever adds time). This is the fixed cost per step
that decides how a batch's time grows with the number of agents acting (docs/benchmarks.md, section 1).

Run:  .venv/bin/python benchmarks/step_cost.py [--quick] [--sizes 1 2 10 50 1000] [--calls 500] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from _common import machine

from mpidrl.envs import EnvSpec
from mpidrl.envs.vector import CartPoleBatch
from mpidrl.policies import CategoricalMLP, GaussianMLP
from mpidrl.policies.mlp import MLP


def best_us(call: Callable[[], object], calls: int, repeats: int) -> float:
    """Best over ``repeats`` of the mean microseconds per call of ``calls`` calls."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def cartpole_step(size: int) -> Callable[[], object]:
    """One step of ``size`` native CartPoles acting together. Episodes that end are stepped on (the cost
    of a step does not depend on the state), so no reset enters the timing."""
    batch = CartPoleBatch(size, cap=0)
    batch.reset(seed=list(range(size)))
    active, actions = np.arange(size), np.arange(size) % 2
    return lambda: batch.step_active(active, actions)


def policies(size: int) -> dict[str, Callable[[], object]]:
    """Each policy's per-step call for ``size`` agents acting."""
    rng = np.random.default_rng(0)
    active = np.arange(size)
    es = MLP(EnvSpec(4, 0, 2, 0), (8, 8))
    thetas = np.stack([es.init(rng) for _ in range(size)])
    act = es.batch_actor(thetas)
    obs4 = rng.standard_normal((size, 4)).astype(np.float32)
    out = {"ES MLP 8-8 (batch_actor)": lambda: act(active, obs4)}
    cat = CategoricalMLP(EnvSpec(4, 0, 2, 0), (32, 32))
    gens = [np.random.default_rng(i) for i in range(size)]
    draw_c = cat.batch_sampler(np.broadcast_to(cat.init(rng), (size, cat.size)), gens)
    x4 = obs4.astype(np.float64)
    out["categorical 32-32 (batch_sampler)"] = lambda: draw_c(active, x4)
    gauss = GaussianMLP(EnvSpec(11, 0, 0, 3, -np.ones(3), np.ones(3)), (64, 64))
    draw_g = gauss.batch_sampler(
        np.broadcast_to(gauss.init(rng), (size, gauss.size)), [np.random.default_rng(i) for i in range(size)]
    )
    x11 = rng.standard_normal((size, 11))
    out["Gaussian 64-64 (batch_sampler + squash)"] = lambda: gauss.env_actions(draw_g(active, x11))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 10, 50, 1000])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="few calls (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.calls, args.repeats = [1, 3], 20, 1
    print(machine())
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=0)

    def gym_step() -> None:
        _, _, terminated, _, _ = env.step(1)
        if terminated:
            env.reset()

    print(f"Gymnasium CartPoleEnv.step, one environment: {best_us(gym_step, args.calls, args.repeats):.1f} us")
    print("piece | B | us per call | us per agent")
    for size in args.sizes:
        pieces = {"CartPoleBatch.step_active": cartpole_step(size), **policies(size)}
        for name, call in pieces.items():
            us = best_us(call, args.calls, args.repeats)
            print(f"{name} | {size} | {us:.1f} | {us / size:.2f}", flush=True)


if __name__ == "__main__":
    main()
