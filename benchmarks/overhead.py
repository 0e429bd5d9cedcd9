"""Framework overhead of ES rounds against a bare loop of the same episodes.

What it measures: for ES on CartPole-v1 (8-8 MLP) and Ant-v5 (64-64 MLP), in one process (world size 1),
the wall time of mpidrl rounds -- ``comm.rounds.sync_round`` (broadcast, every agent's perturbation,
reset seed and episode, gather) followed by the learner's update -- against the time the same episodes
take in a bare loop: ``gymnasium.make(id)`` environments stepped by a plain numpy forward pass of the same
perturbed parameters from the same reset seeds (the perturbations are computed outside the bare timing,
so everything ES adds around the environment and the policy counts as overhead). Two bare loops: "bare"
uses ``gymnasium.make(id)`` as a user would (with the passive env checker wrapper); "lean bare" uses
``gymnasium.make(id, disable_env_checker=True)`` and the ndarray ``argmax`` method, the cheapest stack.
The three are interleaved round by round (rotating which goes first) so that load drift on a shared
machine cancels, and the returns of all three are checked to be identical (the same episodes).
Overhead = framework / bare - 1.

With ``--inner K`` each round's episodes run K times in each of the three (the framework's round without
the learner's update, which is timed once) and the fastest counts: on a shared machine other work only
ever adds time, so minima are steadier than single timings.

Run:  .venv/bin/python benchmarks/overhead.py [--quick] [--repeats 3] [--inner 1] [--env CartPole-v1]
      [--profile out.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import time

import gymnasium as gym
import numpy as np
from _common import es_config, load, machine, spread

from mpidrl import registry, rng
from mpidrl.algorithms.es import perturbation
from mpidrl.comm import Runtime
from mpidrl.envs import make_env, spec_of
from mpidrl.policies import make_policy
from mpidrl.protocols import Context, SyncRounds

SETTINGS = {
    # env id: (hidden, agents, rounds, quick agents, quick rounds)
    "CartPole-v1": ((8, 8), 50, 10, 10, 2),
    "Ant-v5": ((64, 64), 10, 4, 2, 1),
}


def bare_episode(env: gym.Env, layers: list, discrete: bool, low, half, seed: int, lean: bool) -> tuple[float, int]:
    """One episode with a plain numpy forward pass: (undiscounted return, steps)."""
    argmax = np.ndarray.argmax if lean else np.argmax
    hidden, (w_out, b_out) = layers[:-1], layers[-1]
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        x = np.asarray(obs, dtype=np.float64)
        for w, b in hidden:
            x = np.tanh(x @ w + b)
        out = x @ w_out + b_out
        action = int(argmax(out)) if discrete else low + (np.tanh(out) + 1.0) * half
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        steps += 1
        if terminated or truncated:
            return total, steps


def measure(
    env_id: str, n: int, rounds: int, hidden: tuple[int, ...], profile: cProfile.Profile | None, inner: int = 1
) -> dict:
    """Interleaved framework and bare timings over ``rounds`` rounds of ``n`` agents; with ``inner`` > 1
    each round's episodes are run that many times by each of the three and the fastest time counts
    (interference from other work only ever adds time)."""
    cfg = es_config(env_id, n, hidden, rounds)
    probe = make_env(cfg.env)
    spec = spec_of(probe)
    probe.close()
    ctx = Context(cfg, 0, spec)
    rounds_ = SyncRounds(registry.lookup("es"), ctx, Runtime())
    learner = rounds_.learner
    policy = make_policy(cfg.policy, spec)
    bare_envs = {
        "bare": [gym.make(env_id) for _ in range(n)],
        "lean": [gym.make(env_id, disable_env_checker=True) for _ in range(n)],
    }
    discrete = spec.discrete_actions
    low, half = (None, None) if discrete else (spec.act_low, (spec.act_high - spec.act_low) / 2.0)
    times = {"frame": 0.0, "bare": 0.0, "lean": 0.0}
    steps = 0
    for r in range(rounds):
        thetas = [learner.theta + cfg.algo.sigma * perturbation(ctx, r, a, policy.size) for a in range(n)]
        seeds = [rng.reset_seed(cfg.run.seed, 0, r, a) for a in range(n)]
        returns = {}

        def frame(r=r, returns=returns):
            if profile:
                profile.enable()
            times = []
            for _ in range(inner):  # the round's episodes only depend on the learner's theta: repeatable
                t0 = time.perf_counter()
                state = learner.state_dict()
                (record,) = rounds_.run(r)
                times.append(time.perf_counter() - t0)
                if len(times) < inner:
                    learner.load_state_dict(state)  # the same round again, from the same theta
            dt = min(times)
            if profile:
                profile.disable()
            returns["frame"] = list(record.values["return"])
            return dt

        def bare(kind, thetas=thetas, seeds=seeds, returns=returns):
            envs = bare_envs[kind]
            times = []
            for _ in range(inner):
                t0 = time.perf_counter()
                out = [
                    bare_episode(
                        envs[a], policy.layers(thetas[a]), spec.discrete_actions, low, half, seeds[a], kind == "lean"
                    )
                    for a in range(n)
                ]
                times.append(time.perf_counter() - t0)
            returns[kind] = [ret for ret, _ in out]
            returns["steps"] = sum(s for _, s in out)
            return min(times)

        parts = {"frame": frame, "bare": lambda: bare("bare"), "lean": lambda: bare("lean")}
        order = list(parts)[r % 3 :] + list(parts)[: r % 3]  # rotate who goes first against load drift
        for kind in order:
            times[kind] += parts[kind]()
        if not returns["frame"] == returns["bare"] == returns["lean"]:
            raise AssertionError(f"round {r}: the bare loops did not reproduce the framework's episodes")
        steps += returns["steps"]
    return {**times, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few agents and rounds (smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="independent repetitions per environment")
    parser.add_argument("--env", action="append", help="environment ids (default: CartPole-v1 and Ant-v5)")
    parser.add_argument("--inner", type=int, default=1, help="runs of each round's episodes; the fastest counts")
    parser.add_argument("--profile", help="only profile the framework rounds (cProfile, to this file); no timings")
    args = parser.parse_args()
    print(machine())
    profile = cProfile.Profile() if args.profile else None
    if not profile:
        print(
            "env | agents x rounds | steps | framework s | bare s | lean bare s | overhead % vs bare | vs lean | load"
        )
    for env_id in args.env or list(SETTINGS):
        hidden, n, rounds, qn, qr = SETTINGS[env_id]
        if args.quick:
            n, rounds = qn, qr
        if profile:
            measure(env_id, n, rounds, hidden, profile)
            continue
        overheads: dict[str, list[float]] = {"bare": [], "lean": []}
        for _ in range(1 if args.quick else args.repeats):
            m = measure(env_id, n, rounds, hidden, profile, args.inner)
            for kind in overheads:
                overheads[kind].append(100 * (m["frame"] / m[kind] - 1))
            print(
                f"{env_id} | {n} x {rounds} | {m['steps']} | {m['frame']:.3f} | {m['bare']:.3f} | {m['lean']:.3f} | "
                f"{overheads['bare'][-1]:+.2f} | {overheads['lean'][-1]:+.2f} | {load()}",
                flush=True,
            )
        print(
            f"{env_id}: overhead % median [min, max] vs bare = {spread(overheads['bare'])}, "
            f"vs lean bare = {spread(overheads['lean'])}"
        )
    if profile:
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
