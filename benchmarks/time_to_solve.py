"""Time to solve CartPole-v1: mpidrl's ES on 2 processes against pycma (CMA-ES) on the same machine.

What it measures: wall time until the mean undiscounted return of one round's agents (one generation's
population) first reaches 475, for several seeds, alternating the two programs seed by seed:

* mpidrl: ``mpiexec -n 2 mpidrl run`` with the settings of configs/default.toml (ES, n = 50, sigma 0.1,
  centered ranks, antithetic pairs, Adam lr 0.05, 8-8 tanh MLP, one episode per agent and round); the
  time is /metrics/wall_time of the first round that meets the criterion (measured from the start of the
  trial, after the environments are made).
* pycma 4.x (``pip install cma`` into the benchmark environment only; not a dependency of mpidrl):
  ``cma.CMAEvolutionStrategy(x0, sigma0, {"popsize": 50, "seed": ...})`` (sigma0 = 0.1, ES's sigma,
  unless ``--cma-sigma`` says otherwise) on the same 8-8 MLP (mpidrl's policy, x0 from its initialiser),
  the fitness of a candidate being minus the return of one episode run by mpidrl's episode loop; the
  50 episodes of a generation are spread over 2 processes with a ``multiprocessing.Pool(2)``, so both
  programs use the same 2 cores. The time is counted from the
  creation of the strategy (the pool and its environments exist before).

Both stop looking at ``--rounds`` rounds/generations; a seed that has not met the criterion by then is
reported as not solved (with the seconds it ran). Median and range over the solved seeds are printed.

Run:  .venv/bin/python benchmarks/time_to_solve.py [--quick] [--seeds 0 1 2] [--rounds 60] [--only mpidrl|cma]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import time
from pathlib import Path

import numpy as np
from _common import BIN, ROOT, load, machine, spread

from mpidrl import rng
from mpidrl.config import from_dict
from mpidrl.envs import make_env, observation_encoder, rollout, spec_of
from mpidrl.policies import make_policy
from mpidrl.store import read_run

TARGET = 475.0
"""mean return of a round's agents that counts as solved"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def es_config(seed: int, n: int, rounds: int) -> str:
    return (
        f'[run]\nseed = {seed}\nrounds = {rounds}\ncheckpoint_every = 0\n[env]\nid = "CartPole-v1"\n'
        f'[agents]\nn = {n}\n[algo]\nname = "es"\nsigma = 0.1\nfitness_shaping = "centered_rank"\n'
        'antithetic = true\n[policy]\nhidden = [8, 8]\n[optim]\nname = "adam"\nlr = 0.05\nl2 = 0.005\n'
    )


def solve_mpidrl(seed: int, n: int, rounds: int, out_dir: Path) -> tuple[float, int, float, float]:
    """(seconds until solved or inf, rounds taken, best mean return, seconds run) of one mpidrl run."""
    cfg = out_dir / f"tts_seed{seed}_n{n}.toml"
    cfg.write_text(es_config(seed, n, rounds))
    out = cfg.with_suffix(".h5")
    cmd = [str(BIN / "mpiexec"), "-n", "2", str(BIN / "mpidrl"), "run", str(cfg), "--out", str(out), "--overwrite"]
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=1800, capture_output=True, env=ENV)
    m = read_run(out).metrics
    mean = m["return"][0].mean(axis=1)
    hit = np.flatnonzero(mean >= TARGET)
    best = float(mean.max())
    spent = float(m["wall_time"][0, -1])
    if hit.size:
        return float(m["wall_time"][0, hit[0]]), int(hit[0]) + 1, best, spent
    return float("inf"), rounds, best, spent


_worker: dict = {}


def _init_worker() -> None:
    cfg = from_dict({"env": {"id": "CartPole-v1"}, "policy": {"hidden": [8, 8]}})
    env = make_env(cfg.env, 1)
    spec = spec_of(env)
    _worker.update(env=env, policy=make_policy(cfg.policy, spec), encode=observation_encoder(spec))


def _episode(job: tuple[np.ndarray, int]) -> float:
    """Undiscounted return of one episode of parameters ``theta`` from reset seed ``seed``."""
    theta, seed = job
    w = _worker
    return rollout(w["env"], w["policy"].actor(theta), w["encode"], 1.0, seed).undiscounted


def solve_cma(seed: int, popsize: int, generations: int, pool, sigma0: float = 0.1) -> tuple[float, int, float, float]:
    """(seconds until solved or inf, generations taken, best mean return, seconds run) of pycma."""
    import cma

    cfg = from_dict({"env": {"id": "CartPole-v1"}, "policy": {"hidden": [8, 8]}})
    env = make_env(cfg.env, 1)
    policy = make_policy(cfg.policy, spec_of(env))
    env.close()
    x0 = policy.init(rng.generator(seed, 0, rng.Stream.INIT, 0, rng.LEARNER))
    t0 = time.perf_counter()
    es = cma.CMAEvolutionStrategy(x0, sigma0, {"popsize": popsize, "seed": seed + 1, "verbose": -9})
    best = -np.inf
    for g in range(generations):
        xs = es.ask()
        jobs = [(np.asarray(x), rng.reset_seed(seed, 0, g, i)) for i, x in enumerate(xs)]
        returns = pool.map(_episode, jobs, chunksize=max(1, popsize // 2))
        best = max(best, float(np.mean(returns)))
        if np.mean(returns) >= TARGET:
            return time.perf_counter() - t0, g + 1, best, time.perf_counter() - t0
        es.tell(xs, [-r for r in returns])
    return float("inf"), generations, best, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 agents, 1 round, one seed (smoke test)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=60, help="rounds (generations) before giving up")
    parser.add_argument("--only", choices=("mpidrl", "cma"), help="measure one program only")
    parser.add_argument("--cma-sigma", type=float, default=0.1, help="pycma's initial step size sigma0")
    parser.add_argument("--out-dir", default="results/bench")
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n, rounds, seeds = (4, 1, args.seeds[:1]) if args.quick else (50, args.rounds, args.seeds)
    print(machine())
    print(f"n = {n}, up to {rounds} rounds, target mean return {TARGET}")
    print("seed | program | seconds to solve | rounds | best mean return of a round | seconds run | load")
    times: dict[str, list[float]] = {}
    if args.only != "cma":
        times["mpidrl ES (mpiexec -n 2)"] = []
    if args.only != "mpidrl":
        times["pycma CMA-ES (Pool(2))"] = []
    pool = None if args.only == "mpidrl" else mp.get_context("fork").Pool(2, initializer=_init_worker)
    try:
        for k, seed in enumerate(seeds):
            order = list(times) if k % 2 == 0 else list(reversed(times))
            for name in order:
                t, r, best, spent = (
                    solve_mpidrl(seed, n, rounds, out_dir)
                    if name.startswith("mpidrl")
                    else solve_cma(seed, n, rounds, pool, args.cma_sigma)
                )
                times[name].append(t)
                print(f"{seed} | {name} | {t:.2f} | {r} | {best:.1f} | {spent:.2f} | {load()}", flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    for name, ts in times.items():
        solved = [t for t in ts if np.isfinite(t)]
        if ts:
            summary = spread(solved) if solved else "none solved"
            print(f"{name}: solved {len(solved)}/{len(ts)}; seconds median [min, max] over solved = {summary}")


if __name__ == "__main__":
    main()
