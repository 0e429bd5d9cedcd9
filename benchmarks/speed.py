"""Speed of a rank's batched agents against a bare per-agent Gymnasium loop of the same episodes.

What it measures: ES learning (configs/default.toml's settings: 8-8 MLP, sigma 0.1, antithetic pairs,
centered ranks, Adam) on CartPole-v1 with n = 50 agents, and on Ant-v5 with 10 agents and a 64-64 MLP,
in one process (world size 1): the environment steps per second of mpidrl's rounds (``SyncRounds.run``:
broadcast, every agent's perturbation, reset seed and episode as one batch, gather, the learner's update)
against a bare loop that runs the same episodes agent by agent, the way one writes it without a
framework: ``gymnasium.make(id, disable_env_checker=True)`` per agent, a numpy forward pass of the
same perturbed parameters per step, the same reset seeds (the perturbations are drawn outside the
bare timing). With ``--trials T`` the rounds run T trials together (``[run] trial_batch = T``) and the
bare loop runs the T x n episodes. The two alternate round by round (rotating which goes first) so
that load drift on a shared machine cancels, the returns of both are checked to be identical, and with
``--inner K`` each round's episodes run K times in each and the fastest counts (other work on a shared
machine only ever adds time). Speed-up = bare time / mpidrl time for the same steps.

Run:  .venv/bin/python benchmarks/speed.py [--quick] [--repeats 3] [--inner 1] [--trials 1]
      [--env CartPole-v1] [--rounds R] [--profile out.prof]
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
    "CartPole-v1": ((8, 8), 50, 30, 10, 2),
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
        action = int(out.argmax()) if discrete else low + (np.tanh(out) + 1.0) * half
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        steps += 1
        if terminated or truncated:
            return total, steps


def fastest(run, inner: int, reset=None) -> tuple[float, object]:
    """The shortest of ``inner`` timings of ``run()`` (``reset()`` between them) and its last result."""
    times = []
    for k in range(inner):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
        if reset is not None and k < inner - 1:
            reset()
    return min(times), out


def measure(env_id: str, n: int, rounds: int, hidden: tuple[int, ...], trials: int, inner: int, profile=None) -> dict:
    """Interleaved mpidrl and bare timings over ``rounds`` learning rounds of ``n`` agents in ``trials`` trials."""
    cfg = es_config(env_id, n, hidden, rounds, trials=trials, trial_batch=trials)
    probe = make_env(cfg.env)
    spec = spec_of(probe)
    probe.close()
    contexts = [Context(cfg, t, spec) for t in range(trials)]
    protocol = SyncRounds(registry.lookup("es"), contexts, Runtime())
    learners = protocol.learners
    policy = make_policy(cfg.policy, spec)
    bare_envs = [[gym.make(env_id, disable_env_checker=True) for _ in range(n)] for _ in range(trials)]
    discrete = spec.discrete_actions
    low, half = (None, None) if discrete else (spec.act_low, (spec.act_high - spec.act_low) / 2.0)
    times = {"mpidrl": 0.0, "bare": 0.0}
    steps = 0
    for r in range(rounds):
        thetas = [
            [learner.theta + cfg.algo.sigma * perturbation(ctx, r, a, policy.size) for a in range(n)]
            for learner, ctx in zip(learners, contexts)
        ]
        seeds = [[rng.reset_seed(cfg.run.seed, t, r, a) for a in range(n)] for t in range(trials)]
        returns = {}

        def framework(r=r, returns=returns):
            state = protocol.learner.state_dict()
            if profile:
                profile.enable()
            dt, records = fastest(lambda: protocol.run(r), inner, lambda: protocol.learner.load_state_dict(state))
            if profile:
                profile.disable()
            returns["mpidrl"] = [list(record.values["return"]) for record in records]
            return dt

        def bare(thetas=thetas, seeds=seeds, returns=returns):
            def episodes():
                return [
                    [bare_episode(envs[a], policy.layers(row[a]), discrete, low, half, seed[a]) for a in range(n)]
                    for envs, row, seed in zip(bare_envs, thetas, seeds)
                ]

            dt, out = fastest(episodes, inner)
            returns["bare"] = [[ret for ret, _ in trial] for trial in out]
            returns["steps"] = sum(s for trial in out for _, s in trial)
            return dt

        parts = {"mpidrl": framework, "bare": bare}
        for kind in list(parts)[r % 2 :] + list(parts)[: r % 2]:  # rotate who goes first against load drift
            times[kind] += parts[kind]()
        if returns["mpidrl"] != returns["bare"]:
            raise AssertionError(f"round {r}: the bare loop did not reproduce mpidrl's episodes")
        steps += returns["steps"]
    return {**times, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few agents and rounds (smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="independent repetitions per environment")
    parser.add_argument("--env", action="append", help="environment ids (default: CartPole-v1 and Ant-v5)")
    parser.add_argument("--rounds", type=int, help="learning rounds measured (default: per environment)")
    parser.add_argument("--trials", type=int, default=1, help="trials run together (run.trial_batch)")
    parser.add_argument("--inner", type=int, default=1, help="runs of each round's episodes; the fastest counts")
    parser.add_argument("--profile", help="only profile mpidrl's rounds (cProfile, to this file); no timings")
    args = parser.parse_args()
    print(machine())
    profile = cProfile.Profile() if args.profile else None
    if not profile:
        print(
            "env | trials x agents x rounds | steps | mpidrl s | bare s | mpidrl steps/s | bare steps/s | speed-up "
            "| load"
        )
    for env_id in args.env or list(SETTINGS):
        hidden, n, rounds, qn, qr = SETTINGS[env_id]
        if args.quick:
            n, rounds = qn, qr
        rounds = args.rounds or rounds
        if profile:
            measure(env_id, n, rounds, hidden, args.trials, 1, profile)
            continue
        ratios = []
        for _ in range(1 if args.quick else args.repeats):
            m = measure(env_id, n, rounds, hidden, args.trials, args.inner)
            ratios.append(m["bare"] / m["mpidrl"])
            print(
                f"{env_id} | {args.trials} x {n} x {rounds} | {m['steps']} | {m['mpidrl']:.3f} | {m['bare']:.3f} | "
                f"{m['steps'] / m['mpidrl']:.0f} | {m['steps'] / m['bare']:.0f} | {ratios[-1]:.2f}x | {load()}",
                flush=True,
            )
        print(f"{env_id}, {args.trials} trial(s): speed-up median [min, max] = {spread(ratios)}")
    if profile:
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
