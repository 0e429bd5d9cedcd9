"""Many agents on one rank: rounds per second, the learner's share and peak memory per agent.

What it measures: ES on CartPole-v1 with the default config's settings (8-8 MLP, antithetic pairs,
centered ranks, Adam) and n agents in one process (world size 1), for ``--rounds`` learning rounds of
``SyncRounds``: the wall time of each round split into the agents' side (perturbations, reset seeds, the
batched episodes, packing the messages) and the learner's update (regenerating every reporting agent's
noise for the gradient), the environment steps per second, and the process's peak resident memory
(``ru_maxrss``) before the protocol is built and after the rounds; memory per agent is their difference
over n. Each n runs in a fresh process, so peaks do not carry over.

``--batch``: the ``[agents] batch`` values to run each n with (0, the default: automatic; the batch column
shows the limit in force, a block of more sub-environments running in consecutive parts).

Run:  .venv/bin/python benchmarks/many_agents.py [--quick] [--agents 50 1000 10000] [--rounds 5] [--batch 0 10000]
          [--hidden 8 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import es_config, load, machine


def one(n: int, rounds: int, batch: int = 0, hidden: tuple[int, ...] = (8, 8)) -> dict:
    """Measure n agents in this process."""
    from mpidrl import registry
    from mpidrl.comm import Runtime
    from mpidrl.envs import make_env, spec_of
    from mpidrl.protocols import Context, SyncRounds

    cfg = es_config("CartPole-v1", n, hidden, rounds, batch=batch)
    probe = make_env(cfg.env)
    spec = spec_of(probe)
    probe.close()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    protocol = SyncRounds(registry.lookup("es"), [Context(cfg, 0, spec)], Runtime())
    learner, update = protocol.learner, protocol.learner.update
    spent = {"learner": 0.0}

    def timed_update(round, messages):
        t0 = time.perf_counter()
        update(round, messages)
        spent["learner"] += time.perf_counter() - t0

    learner.update = timed_update
    steps, t0 = 0, time.perf_counter()
    for r in range(rounds):
        (record,) = protocol.run(r)
        steps += int(record.values["steps"].sum())
    total = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "n": n,
        "batch": protocol.limit,
        "rounds": rounds,
        "steps": steps,
        "seconds": total,
        "learner_seconds": spent["learner"],
        "rss_before": before,
        "rss_peak": after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few agents and rounds (smoke test)")
    parser.add_argument("--agents", type=int, nargs="+", default=[50, 1000, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--batch", type=int, nargs="+", default=[0], help="[agents] batch values to run each n with (0: automatic)"
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[8, 8], help="the MLP's hidden layers")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure this n, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.rounds, args.batch[0], tuple(args.hidden))))
        return
    agents, rounds = ([20, 200], 2) if args.quick else (args.agents, args.rounds)
    print(machine())
    print(f"ES CartPole-v1, {'-'.join(map(str, args.hidden))} MLP")
    print(
        "n | batch | rounds | steps | s/round | learner s/round | learner share | steps/s | peak RSS MiB | "
        "KiB/agent | load"
    )
    for n, batch in ((n, b) for n in agents for b in args.batch):
        cmd = [sys.executable, __file__, "--one", str(n), "--rounds", str(rounds), "--batch", str(batch), "--hidden"]
        cmd += [str(h) for h in args.hidden]
        m = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        per_agent = (m["rss_peak"] - m["rss_before"]) / n / 1024
        print(
            f"{n} | {m['batch']} | {rounds} | {m['steps']} | {m['seconds'] / rounds:.3f} | "
            f"{m['learner_seconds'] / rounds:.3f} | "
            f"{m['learner_seconds'] / m['seconds']:.1%} | {m['steps'] / m['seconds']:.0f} | "
            f"{m['rss_peak'] / 2**20:.0f} | {per_agent:.1f} | {load()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
