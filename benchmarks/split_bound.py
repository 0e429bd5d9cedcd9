"""What two ranks could gain: a rank's round of batched agents against each half of it, in one process.

What it measures: ES on ``--env`` (default CartPole-v1) with the default config's settings
(``--hidden`` MLP, default 8-8, antithetic pairs, centered ranks, Adam), ``--agents`` n agents in
``--trials`` trials run together, learning for ``--rounds`` rounds in one process (world size 1). Every
round, beside the worker that runs all n agents (whose messages drive the learning), two more workers run
the first and the second half of the agents from the same broadcast, one after the other, each as a rank
runs its block (in parts of at most ``[agents] batch`` sub-environments, ``--batch``); the three are timed
in turn, and the halves must return the whole's returns exactly. With two ranks the round's agent
side can take no less than the slower half, so

    bound = sum over rounds of (all agents + learner) / sum of (slower half + learner)

estimates the speed-up two ranks would give with communication, placement and the machine's two cores
costing nothing (not strictly: in one process the halves share the caches with the whole's data). It is
below 2 wherever a batch step has a fixed cost that does not shrink with the batch (a synchronous round
lasts as long as its longest episode; each of its steps costs some microseconds of numpy calls however few
agents act) and wherever the learner's share is large. Printed per n: the three agent-side times, the
learner's, the bound and the halves' imbalance (slower half over the mean of both).

Run:  .venv/bin/python benchmarks/split_bound.py [--quick] [--agents 50 1000] [--trials 1] [--rounds 30]
          [--env Ant-v5 --hidden 64 64] [--batch 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import es_config, load, machine


def measure(
    n: int, trials: int, rounds: int, env: str = "CartPole-v1", hidden: tuple[int, ...] = (8, 8), batch: int = 0
) -> dict:
    """Seconds summed over ``rounds`` learning rounds: the agent side of all n agents, of each half, and
    the learner's update."""
    from mpidrl import registry
    from mpidrl.comm import Runtime
    from mpidrl.envs import make_env, spec_of
    from mpidrl.protocols import Context, SyncRounds
    from mpidrl.protocols.workers import make_worker, parts

    cfg = es_config(env, n, hidden, rounds, trials=trials, trial_batch=trials, batch=batch)
    probe = make_env(cfg.env)
    env_spec = spec_of(probe)
    probe.close()
    spec = registry.lookup("es")
    contexts = [Context(cfg, t, env_spec) for t in range(trials)]
    protocol = SyncRounds(spec, contexts, Runtime())
    halves = [make_worker(spec, contexts, range(0, n // 2)), make_worker(spec, contexts, range(n // 2, n))]
    worker, learner = protocol.worker, protocol.learner

    def act(w, r):  # as a rank runs its block: in parts of at most [agents] batch sub-environments
        done = [w.act(r, part) for part in parts(w.agents, trials, protocol.limit)]
        return np.concatenate([d.reward for d in done]), done

    spent = {"all": 0.0, "half0": 0.0, "half1": 0.0, "slower": 0.0, "learner": 0.0, "steps": 0}
    for r in range(rounds):
        payload = learner.downlink()
        payloads = list(payload.reshape(trials, -1)) if trials > 1 else [payload]
        for w in (worker, *halves):
            w.receive(payloads)
        t0 = time.perf_counter()
        whole, done = act(worker, r)
        t1 = time.perf_counter()
        first, _ = act(halves[0], r)
        t2 = time.perf_counter()
        second, _ = act(halves[1], r)
        t3 = time.perf_counter()
        # the halves run the same episodes as the whole (agent-major rows: the first half's come first)
        if not np.array_equal(np.concatenate([first, second]), whole):
            raise RuntimeError(f"round {r}: the halves' returns differ from the whole batch's")
        messages = [[] for _ in range(trials)]
        sent = [m for d in done for m in d.messages]
        for j, message in enumerate(sent):  # agent-major: row j is agent j // T in trial j % T
            if message is not None:
                messages[j % trials].append((j // trials, message))
        learner.update(r, messages if trials > 1 else messages[0])
        t4 = time.perf_counter()
        spent["all"] += t1 - t0
        spent["half0"] += t2 - t1
        spent["half1"] += t3 - t2
        spent["slower"] += max(t2 - t1, t3 - t2)
        spent["learner"] += t4 - t3
        spent["steps"] += int(sum(np.sum(d.steps) for d in done))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few agents and rounds (smoke test)")
    parser.add_argument("--agents", type=int, nargs="+", default=[50, 200, 1000, 5000])
    parser.add_argument("--trials", type=int, default=1, help="trials run together (run.trial_batch)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--hidden", type=int, nargs="+", default=[8, 8], help="the MLP's hidden layers")
    parser.add_argument("--batch", type=int, default=0, help="[agents] batch (0: automatic)")
    args = parser.parse_args()
    agents, rounds = ([20, 100], 2) if args.quick else (args.agents, args.rounds)
    print(machine())
    print(
        f"ES {args.env}, {'-'.join(map(str, args.hidden))} MLP, trials together: {args.trials}, rounds: {rounds}, "
        f"[agents] batch: {args.batch or 'automatic'}"
    )
    print("n | steps | all agents s | half 0 s | half 1 s | slower half s | learner s | imbalance | bound | load")
    for n in agents:
        s = measure(n, args.trials, rounds, args.env, tuple(args.hidden), args.batch)
        bound = (s["all"] + s["learner"]) / (s["slower"] + s["learner"])
        imbalance = s["slower"] / ((s["half0"] + s["half1"]) / 2)
        print(
            f"{n} | {s['steps']} | {s['all']:.3f} | {s['half0']:.3f} | {s['half1']:.3f} | {s['slower']:.3f} | "
            f"{s['learner']:.3f} | {imbalance:.2f} | {bound:.2f}x | {load()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
