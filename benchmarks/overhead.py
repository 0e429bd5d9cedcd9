"""Framework overhead of ES rounds against a bare loop of the same episodes.

What it measures: for ES on CartPole-v1 (8-8 MLP) and Ant-v5 (64-64 MLP), in one process (world size 1),
the wall time of mpidrl rounds -- ``comm.rounds.sync_round`` (broadcast, every agent's perturbation,
reset seed and episode, gather) followed by the learner's update -- against the time the same episodes
take in a bare loop: ``gymnasium.make(id)`` environments stepped by a plain numpy forward pass of the same
perturbed parameters from the same reset seeds (the perturbations are computed outside the bare timing,
so everything ES adds around the environment and the policy counts as overhead). The two are interleaved
round by round (alternating which goes first) so that load drift on a shared machine cancels, and the
returns of both are checked to be identical (the same episodes). Overhead = framework / bare - 1.

Run:  .venv/bin/python benchmarks/overhead.py [--quick] [--repeats 3] [--env CartPole-v1] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import time

import gymnasium as gym
import numpy as np
from _common import es_config, load, machine, spread

from mpidrl import rng
from mpidrl.algorithms import Context, lookup
from mpidrl.algorithms.es import perturbation
from mpidrl.comm import Runtime
from mpidrl.comm.rounds import sync_round
from mpidrl.envs import make_env, spec_of
from mpidrl.policies import make_policy

SETTINGS = {
    # env id: (hidden, agents, rounds, quick agents, quick rounds)
    "CartPole-v1": ((8, 8), 50, 10, 10, 2),
    "Ant-v5": ((64, 64), 10, 4, 2, 1),
}


def bare_episode(env: gym.Env, layers: list, discrete: bool, low, half, seed: int) -> tuple[float, int]:
    """One episode with a plain numpy forward pass: (undiscounted return, steps)."""
    hidden, (w_out, b_out) = layers[:-1], layers[-1]
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        x = np.asarray(obs, dtype=np.float64)
        for w, b in hidden:
            x = np.tanh(x @ w + b)
        out = x @ w_out + b_out
        action = int(np.argmax(out)) if discrete else low + (np.tanh(out) + 1.0) * half
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        steps += 1
        if terminated or truncated:
            return total, steps


def measure(env_id: str, n: int, rounds: int, hidden: tuple[int, ...], profile: cProfile.Profile | None) -> dict:
    """Interleaved framework and bare timings over ``rounds`` rounds of ``n`` agents."""
    cfg = es_config(env_id, n, hidden, rounds)
    probe = make_env(cfg.env)
    spec = spec_of(probe)
    probe.close()
    ctx = Context(cfg, 0, spec)
    algo = lookup("es")
    rt = Runtime()
    learner, worker = algo.learner(ctx), algo.worker(ctx, range(n))
    policy = make_policy(cfg.policy, spec)
    bare_envs = [gym.make(env_id) for _ in range(n)]
    low, half = (None, None) if spec.discrete_actions else (spec.act_low, (spec.act_high - spec.act_low) / 2.0)
    t_frame = t_bare = 0.0
    steps = 0
    for r in range(rounds):
        thetas = [learner.theta + cfg.algo.sigma * perturbation(ctx, r, a, policy.size) for a in range(n)]
        seeds = [rng.reset_seed(cfg.run.seed, 0, r, a) for a in range(n)]

        def frame(r=r):
            if profile:
                profile.enable()
            t0 = time.perf_counter()
            res = sync_round(rt, algo, learner, worker, r, n)
            learner.update(r, res.messages)
            dt = time.perf_counter() - t0
            if profile:
                profile.disable()
            return dt, res.stats[:, 1]

        def bare(thetas=thetas, seeds=seeds):
            t0 = time.perf_counter()
            out = [
                bare_episode(bare_envs[a], policy.layers(thetas[a]), spec.discrete_actions, low, half, seeds[a])
                for a in range(n)
            ]
            return time.perf_counter() - t0, out

        if r % 2 == 0:
            (tf, rets), (tb, bare_out) = frame(), bare()
        else:
            (tb, bare_out), (tf, rets) = bare(), frame()
        if not np.array_equal(rets, [ret for ret, _ in bare_out]):
            raise AssertionError(f"round {r}: the bare loop did not reproduce the framework's episodes")
        t_frame += tf
        t_bare += tb
        steps += sum(s for _, s in bare_out)
    return {"frame": t_frame, "bare": t_bare, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few agents and rounds (smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="independent repetitions per environment")
    parser.add_argument("--env", action="append", help="environment ids (default: CartPole-v1 and Ant-v5)")
    parser.add_argument("--profile", help="only profile the framework rounds (cProfile, to this file); no timings")
    args = parser.parse_args()
    print(machine())
    profile = cProfile.Profile() if args.profile else None
    if not profile:
        print("env | agents x rounds | steps | framework s | bare s | overhead % | load")
    for env_id in args.env or list(SETTINGS):
        hidden, n, rounds, qn, qr = SETTINGS[env_id]
        if args.quick:
            n, rounds = qn, qr
        if profile:
            measure(env_id, n, rounds, hidden, profile)
            continue
        overheads = []
        for _ in range(1 if args.quick else args.repeats):
            m = measure(env_id, n, rounds, hidden, profile)
            overheads.append(100 * (m["frame"] / m["bare"] - 1))
            print(
                f"{env_id} | {n} x {rounds} | {m['steps']} | {m['frame']:.3f} | {m['bare']:.3f} | "
                f"{overheads[-1]:+.2f} | {load()}",
                flush=True,
            )
        print(f"{env_id}: overhead % median [min, max] = {spread(overheads)}")
    if profile:
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
