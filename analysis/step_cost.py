"""Seconds per environment step of one agent on one core: the measurement behind ``time.h`` in
jobs/edge_comparison.sh (docs/networks.md, "Compute model").

    .venv/bin/python analysis/step_cost.py CONFIG [CONFIG ...] [--steps N] [--repeats R]

For each config: one environment instance (``mpidrl.envs.make_env``) and the config's policy with
random initial parameters (the deterministic MLP of the ES family, the stochastic MLP of the policy
gradients, sampling its action, or the greedy Q table of the value-based methods), stepped ``--steps``
times, reset whenever an episode ends. What is timed is ``env.step`` plus the policy's forward pass (and
its action sample); not the learner, not a gradient's backward pass, not the value-based methods'
exploration or updates, not the batching over agents that mpidrl does on a rank. The best of
``--repeats`` runs is printed (the least disturbed by other work on the machine), with the step cap and
cap x seconds per step: the compute time of an episode that runs to the cap.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mpidrl.analysis import run_script
from mpidrl.config import load
from mpidrl.envs import make_env, observation_encoder, spec_of
from mpidrl.policies.mlp import make_policy
from mpidrl.policies.qfunctions import TabularQ
from mpidrl.policies.stochastic import make_stochastic_policy

STOCHASTIC = {"nigt-sync", "rennala-nigt", "malenia-nigt", "afedpg", "lapg"}
"""Algorithms whose agents sample from a stochastic policy."""
TABULAR = {"dql", "ebcdql", "davia"}
"""Algorithms whose agents act greedily on a Q table (one-hot states; their exploration is not timed)."""


def seconds_per_step(path: str, steps: int, repeats: int, seed: int = 0) -> tuple[float, int]:
    """(best seconds per step over ``repeats`` runs of ``steps`` steps, the environment's step cap)."""
    cfg = load(path)
    env = make_env(cfg.env)
    spec = spec_of(env)
    encode = observation_encoder(spec)
    rng = np.random.default_rng(seed)
    if cfg.algo.name in STOCHASTIC:
        policy = make_stochastic_policy(cfg.policy, spec)
        draw = policy.batch_sampler(policy.init(rng)[None], [rng])  # one agent: a batch of one
        one = np.zeros(1, dtype=np.int64)

        def act(obs):
            return policy.env_actions(draw(one, encode(obs)[None]))[0]
    elif cfg.algo.name in TABULAR:
        q = TabularQ(spec.discrete_obs, spec.n_actions)
        greedy = q.actor(rng.normal(size=q.size))

        def act(obs):
            return greedy(encode(obs))
    else:
        policy = make_policy(cfg.policy, spec)
        actor = policy.actor(policy.init(rng))

        def act(obs):
            return actor(encode(obs))

    cap = env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else 0
    best = np.inf
    for _ in range(repeats):
        obs, _ = env.reset(seed=seed)
        start = time.perf_counter()
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(act(obs))
            if terminated or truncated:
                obs, _ = env.reset()
        best = min(best, (time.perf_counter() - start) / steps)
    env.close()
    return float(best), int(cap)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="+")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    configs = {path: load(path) for path in args.configs}  # every config checked before the first timing
    print("| config | environment | algorithm | policy | us / step | step cap | cap x s / step |")
    print("|---|---|---|---|---|---|---|")
    for path, cfg in configs.items():
        per_step, cap = seconds_per_step(path, args.steps, args.repeats)
        hidden = "-".join(map(str, cfg.policy.hidden))
        kind = (
            f"stochastic MLP {hidden}"
            if cfg.algo.name in STOCHASTIC
            else "Q table"
            if cfg.algo.name in TABULAR
            else f"deterministic MLP {hidden}"
        )
        print(
            f"| {path} | {cfg.env.id} | {cfg.algo.name} | {kind} | {per_step * 1e6:.1f} | {cap} "
            f"| {cap * per_step:.3g} s |"
        )


if __name__ == "__main__":
    run_script(main)
