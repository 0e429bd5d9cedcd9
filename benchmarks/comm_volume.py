"""Communication volume per round of ES at n = 50, read from real run files.

What it measures: short ES runs (``mpiexec -n 2 mpidrl run``, 2 rounds) on CartPole-v1 with an 8-8 MLP
(d = 130) and Ant-v5 with a 64-64 MLP; the uplink and downlink bytes of a round are the sums over agents
of /metrics/uplink_bytes and /metrics/downlink_bytes in the run file (what the runtime counted as it
sent), averaged over the recorded rounds. Beside them: what a parameter-broadcast and gradient-upload
design sends, d float64 each way per agent, with d read from the same run file (the measured broadcast
bytes / 8). Ant episodes are capped at 50 steps: message sizes do not depend on episode length in ES.

Run:  .venv/bin/python benchmarks/comm_volume.py [--quick] [--np 2] [--out-dir results/bench]
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import numpy as np
from _common import BIN, ROOT, machine

from mpidrl.store import read_run

CASES = {
    # name: (env id, hidden, max_steps)
    "CartPole-v1 (8-8)": ("CartPole-v1", (8, 8), 0),
    "Ant-v5 (64-64)": ("Ant-v5", (64, 64), 50),
}


def config_text(env_id: str, hidden: tuple[int, ...], max_steps: int, n: int, rounds: int) -> str:
    return (
        f"[run]\nseed = 0\nrounds = {rounds}\ncheckpoint_every = 0\n"
        f'[env]\nid = "{env_id}"\nmax_steps = {max_steps}\n'
        f'[agents]\nn = {n}\n[algo]\nname = "es"\nsigma = 0.1\n'
        f"[policy]\nhidden = {list(hidden)}\n"
    )


def run_volume(name: str, n: int, rounds: int, nprocs: int, out_dir: Path) -> dict:
    """Run one short ES run and return its per-round byte counts."""
    env_id, hidden, max_steps = CASES[name]
    stem = out_dir / f"comm_{env_id}_{n}"
    cfg = stem.with_suffix(".toml")
    cfg.write_text(config_text(env_id, hidden, max_steps, n, rounds))
    out = stem.with_suffix(".h5")
    cmd = [
        str(BIN / "mpiexec"),
        "-n",
        str(nprocs),
        str(BIN / "mpidrl"),
        "run",
        str(cfg),
        "--out",
        str(out),
        "--overwrite",
    ]
    subprocess.run(
        cmd, check=True, cwd=ROOT, timeout=900, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    metrics = read_run(out).metrics
    up = metrics["uplink_bytes"][0].sum(axis=1)  # [R]: bytes sent by all agents in each round
    down = metrics["downlink_bytes"][0].sum(axis=1)
    d = int(metrics["downlink_bytes"][0, 0, 0]) // 8
    return {"up": float(np.mean(up)), "down": float(np.mean(down)), "d": d, "file": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CartPole only, 4 agents, 1 round (smoke test)")
    parser.add_argument("--np", type=int, default=2, help="MPI processes")
    parser.add_argument("--out-dir", default="results/bench")
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n, rounds = (4, 1) if args.quick else (50, 2)
    names = list(CASES)[:1] if args.quick else list(CASES)
    print(machine())
    print(f"n = {n}, rounds = {rounds}, mpiexec -n {args.np}")
    print("case | d | ES uplink B/round | ES downlink B/round | param-bcast+grad uplink | downlink | uplink ratio")
    for name in names:
        v = run_volume(name, n, rounds, args.np, out_dir)
        pb = n * v["d"] * 8
        print(
            f"{name} | {v['d']} | {v['up']:.0f} | {v['down']:.0f} | {pb} | {pb} | {pb / v['up']:.0f}x ({v['file']})",
            flush=True,
        )


if __name__ == "__main__":
    main()
