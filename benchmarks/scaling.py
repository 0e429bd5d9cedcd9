"""Parallel efficiency on this machine, and the cost of a learner waiting inside a blocking MPI call.

1. Throughput: environment steps per second of an ES run on ``--env`` (default CartPole-v1; configs/default.toml's
   ES: ``--hidden`` MLP, default 8-8, antithetic pairs, centered ranks, Adam; ``--agents`` agents, default 50,
   ``--rounds`` rounds, ``--trials`` trials run together) under
   ``mpiexec -n 1`` and ``mpiexec -n 2`` (rank 0 is the learner and hosts agents too), the latter with
   ``[agents] placement`` "blocks" (each rank runs its block) and "dynamic" (a rank that finishes its
   block takes over agents the other has not started). Steps and time come from the run file: the sum of
   /metrics/steps over the wall time at the last round. The three settings take turns, repeated
   ``--repeats`` times; the speed-up is the ratio of medians and of each repeat's pair. Also printed:
   the step-count bound of fixed blocks (all steps over the larger block's, round by round: the
   speed-up of lock-step blocks if every step cost the same), and, as the
   machine's own limit, two independent 1-process runs at the same time ("two copies": the sum of
   their rates over one run's rate).
2. Waiting: ``mpiexec -n 3`` (oversubscribed on 2 cores): ranks 1 and 2 each do the same fixed amount of
   numpy work while rank 0 waits for their result, either in a blocking ``Gather`` or in ``Igather``
   completed by ``Runtime.wait`` (test, then short growing sleeps). Reported: the workers' wall time for
   their work and rank 0's CPU time while waiting (a spinning wait burns a core the workers need).

Run:  .venv/bin/python benchmarks/scaling.py [--quick] [--repeats 3] [--skip-throughput] [--skip-wait]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import BIN, ROOT, load, machine, spread

from mpidrl.store import read_run

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def throughput(
    nprocs: int,
    n: int,
    rounds: int,
    out_dir: Path,
    placement: str = "blocks",
    copies: int = 1,
    trials: int = 1,
    env: str = "CartPole-v1",
    hidden: tuple[int, ...] = (8, 8),
) -> float:
    """Environment steps per second of an ES run on ``nprocs`` processes; with ``copies`` > 1, that many
    identical independent runs at the same time and the sum of their rates (what the machine allows)."""
    cfg = out_dir / f"scaling_{n}_{placement}.toml"
    cfg.write_text(
        f"[run]\nseed = 0\nrounds = {rounds}\ncheckpoint_every = 0\ntrials = {trials}\ntrial_batch = {trials}\n"
        f'[env]\nid = "{env}"\n[agents]\nn = {n}\nplacement = "{placement}"\n'
        '[algo]\nname = "es"\nsigma = 0.1\nfitness_shaping = "centered_rank"\nantithetic = true\n'
        f'[policy]\nhidden = {list(hidden)}\n[optim]\nname = "adam"\nlr = 0.05\nl2 = 0.005\n'
    )
    outs = [out_dir / f"scaling_{n}_np{nprocs}_{placement}_{c}.h5" for c in range(copies)]
    cmd = [str(BIN / "mpiexec"), "-n", str(nprocs), str(BIN / "mpidrl"), "run", str(cfg), "--overwrite", "--out"]
    procs = [
        subprocess.Popen([*cmd, str(out)], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for out in outs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(proc.args)} exited {proc.returncode}: {err.decode()}")
    runs = [read_run(out).metrics for out in outs]
    return float(sum(m["steps"].sum() / m["wall_time"][0, -1] for m in runs))


def lockstep_cap(path: Path) -> float:
    """Best speed-up of lock-step rounds with these episodes in two fixed blocks: sum over rounds of all
    steps over the sum of the larger block's steps."""
    steps = read_run(path).metrics["steps"].sum(axis=0)  # trials run together share the rounds
    half = steps.shape[1] // 2
    return float(steps.sum() / np.maximum(steps[:, :half].sum(axis=1), steps[:, half:].sum(axis=1)).sum())


def work(iterations: int) -> None:
    """A fixed amount of single-threaded numpy work."""
    x = np.random.default_rng(0).standard_normal((100, 100))
    for _ in range(iterations):
        x = np.tanh(x @ x * 0.01)


def wait_child(mode: str, iterations: int) -> None:
    """Body of the ``mpiexec -n 3`` job: rank 0 waits (``mode``), the others work and report their time."""
    from mpidrl.comm import Runtime

    rt = Runtime()
    rt.barrier()
    send = np.zeros(2)
    if rt.rank:
        t0 = time.perf_counter()
        work(iterations)
        send[0] = time.perf_counter() - t0
    recv = np.empty((rt.size, 2)) if rt.is_root else None
    cpu0 = time.process_time()
    if mode == "blocking":
        rt.comm.Gather(send, recv, root=0)
    else:
        rt.wait(rt.comm.Igather(send, recv, root=0))
    if rt.is_root:
        cpu = time.process_time() - cpu0
        print(f"{np.mean(recv[1:, 0]):.4f} {cpu:.4f}", flush=True)


def wait_cost(mode: str, iterations: int) -> tuple[float, float]:
    """(mean worker wall time, rank 0 CPU seconds while waiting) of one ``mpiexec -n 3`` job."""
    cmd = [
        str(BIN / "mpiexec"),
        "-n",
        "3",
        sys.executable,
        __file__,
        "--wait-child",
        mode,
        "--iterations",
        str(iterations),
    ]
    out = subprocess.run(cmd, check=True, cwd=ROOT, timeout=600, capture_output=True, text=True, env=ENV)
    worker, cpu = out.stdout.split()[-2:]
    return float(worker), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny runs (smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out-dir", default="results/bench")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of each throughput run")
    parser.add_argument("--trials", type=int, default=1, help="trials run together in each throughput run")
    parser.add_argument("--agents", type=int, default=50, help="agents of each throughput run")
    parser.add_argument("--env", default="CartPole-v1", help="environment of the throughput runs")
    parser.add_argument("--hidden", type=int, nargs="+", default=[8, 8], help="the MLP's hidden layers")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-wait", action="store_true")
    parser.add_argument("--wait-child", choices=("blocking", "polite"), help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=20000, help="work units of each waiting-test worker")
    args = parser.parse_args()
    if args.wait_child:
        wait_child(args.wait_child, args.iterations)
        return
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    repeats = 1 if args.quick else args.repeats
    print(machine())
    if not args.skip_throughput:
        n, rounds = (4, 1) if args.quick else (args.agents, args.rounds)
        settings = [(1, "blocks"), (2, "blocks"), (2, "dynamic"), (1, "two copies")]
        rates: dict[tuple[int, str], list[float]] = {k: [] for k in settings}
        print(
            f"throughput: ES {args.env} ({'-'.join(map(str, args.hidden))} MLP), n = {n}, "
            f"{args.trials} trial(s) together, {rounds} rounds"
        )
        print("repeat | processes | placement | steps/s | load")
        for rep in range(repeats):
            k = rep % len(settings)
            for p, placement in settings[k:] + settings[:k]:  # rotate the order against drift
                copies = 2 if placement == "two copies" else 1
                rate = throughput(
                    p,
                    n,
                    rounds,
                    out_dir,
                    "blocks" if copies > 1 else placement,
                    copies,
                    args.trials,
                    args.env,
                    tuple(args.hidden),
                )
                rates[p, placement].append(rate)
                print(f"{rep} | {p} | {placement} | {rate:.0f} | {load()}", flush=True)
        one = rates[1, "blocks"]
        for p, placement in settings[1:]:
            two = rates[p, placement]
            pairs = [b / a for a, b in zip(one, two)]
            print(
                f"speed-up 2 vs 1 process, {placement}: ratio of medians {np.median(two) / np.median(one):.3f}; "
                f"per repeat median [min, max] = {spread(pairs)}"
            )
        cap = lockstep_cap(out_dir / f"scaling_{n}_np2_blocks_0.h5")
        print(f"step-count bound of fixed blocks (equal step costs), last 2-process blocks run: {cap:.3f}")
    if not args.skip_wait:
        iterations = 200 if args.quick else args.iterations
        print(f"waiting: mpiexec -n 3, workers do {iterations} work units each")
        print("repeat | rank-0 wait | worker wall s | rank-0 CPU s while waiting | load")
        res: dict[str, list[tuple[float, float]]] = {"blocking": [], "polite": []}
        for rep in range(repeats):
            for mode in ("blocking", "polite") if rep % 2 == 0 else ("polite", "blocking"):
                res[mode].append(wait_cost(mode, iterations))
                w, c = res[mode][-1]
                print(f"{rep} | {mode} | {w:.3f} | {c:.3f} | {load()}", flush=True)
        for mode, vals in res.items():
            print(f"{mode}: worker wall s {spread([w for w, _ in vals])}, rank-0 CPU s {spread([c for _, c in vals])}")


if __name__ == "__main__":
    main()
