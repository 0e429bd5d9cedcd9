"""Communication volume per round of every algorithm at n = 50, read from real run files.

What it measures: short runs (``mpiexec -n 2 mpidrl run``) of each algorithm with n = 50 agents; the
uplink messages and bytes, downlink bytes and (for the asynchronous aggregation protocols) control
messages and bytes of a round are the sums over agents of /metrics/uplink_messages, uplink_bytes,
downlink_bytes, control_messages and control_bytes in the run file (what the runtime counted as it sent),
averaged over the recorded rounds. Beside them: what a parameter-broadcast and gradient-upload design
sends, d float64 each way per agent and round, d being the size of the learned parameters (the policy's,
or the Q table's / weight vector's for the value-based algorithms).

Cases: the ES family and the policy-gradient algorithms on CartPole-v1 with an 8-8 MLP (d = 130), the
value-based algorithms and ES on mpidrl/SimpleGrid-v0 (d = 100 Q values), ES on Ant-v5 with a 64-64 MLP
(episodes capped at 50 steps: ES message sizes do not depend on episode length). Value-based messages
shrink as the agents learn, so those cases run more rounds; the table gives the mean over all rounds and
over the last quarter.

Run:  .venv/bin/python benchmarks/comm_volume.py [--quick] [--np 2] [--out-dir results/bench] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import BIN, ROOT, machine

from mpidrl.store import read_run

CARTPOLE = {"env": {"id": "CartPole-v1"}, "policy": {"hidden": [8, 8]}}
GRID = {"env": {"id": "mpidrl/SimpleGrid-v0", "gamma": 0.9}}
PG_TIME = {"time": {"mode": "simulated", "h": "sqrt(i)", "kappa": 0.0}}
PG = {"eta": 0.1, "alpha": 0.03125, "M": 50, "M_init": 50, "H": 200}


@dataclass(frozen=True)
class Case:
    """One algorithm setting: its config sections and how many rounds to run."""

    sections: dict
    rounds: int = 4
    quick: bool = False
    algo: dict = field(default_factory=dict)


CASES = {
    "es": Case(CARTPOLE, algo={"name": "es", "sigma": 0.1}, quick=True),
    "es, downlink returns": Case(CARTPOLE, algo={"name": "es", "sigma": 0.1, "downlink": "returns"}),
    "espc (m 25, k 5)": Case(CARTPOLE, algo={"name": "espc", "sigma": 0.1, "m": 25, "k": 5}, rounds=10),
    "es-fixed (m 25)": Case(CARTPOLE, algo={"name": "es-fixed", "sigma": 0.1, "m": 25}, rounds=10),
    "nigt-sync (M 50)": Case({**CARTPOLE, **PG_TIME}, algo={"name": "nigt-sync", **PG}),
    "rennala-nigt (M 50)": Case({**CARTPOLE, **PG_TIME}, algo={"name": "rennala-nigt", **PG}, quick=True),
    "malenia-nigt (M 50)": Case({**CARTPOLE, **PG_TIME}, algo={"name": "malenia-nigt", **PG}),
    "afedpg": Case({**CARTPOLE, **PG_TIME}, algo={"name": "afedpg", **PG}),
    "lapg": Case(CARTPOLE, algo={"name": "lapg", "alpha": 0.01, "H": 200}, rounds=10),
    "dql (grid)": Case(GRID, algo={"name": "dql"}, rounds=100, quick=True),
    "ebcdql (grid)": Case(GRID, algo={"name": "ebcdql"}, rounds=100),
    "davia (grid)": Case(GRID, algo={"name": "davia"}, rounds=100),
    "es (grid, 4-4)": Case({**GRID, "policy": {"hidden": [4, 4]}}, algo={"name": "es", "sigma": 0.1}),
    "es (Ant-v5, 64-64)": Case(
        {"env": {"id": "Ant-v5", "max_steps": 50}, "policy": {"hidden": [64, 64]}},
        algo={"name": "es", "sigma": 0.1},
        rounds=2,
    ),
}


def toml_value(v: object) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if not isinstance(v, list) else "[" + ", ".join(toml_value(x) for x in v) + "]"


def config_text(case: Case, n: int, rounds: int) -> str:
    sections = {
        "run": {"seed": 0, "rounds": rounds, "checkpoint_every": 0},
        "agents": {"n": n},
        **case.sections,
        "algo": case.algo,
    }
    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in body.items()) for name, body in sections.items()
    )


def run_volume(name: str, case: Case, n: int, rounds: int, nprocs: int, out_dir: Path) -> dict:
    """Run one short run; its per-round message and byte counts (means over rounds) and d."""
    stem = out_dir / ("comm_" + "".join(c if c.isalnum() else "_" for c in name))
    cfg = stem.with_suffix(".toml")
    cfg.write_text(config_text(case, n, rounds))
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
    run = read_run(out)
    per_round = {k: run.metrics[k][0].sum(axis=1) for k in METRICS}  # [R]: all agents of each round
    last = slice(-max(1, rounds // 4), None)
    return {
        "all": {k: float(np.mean(v)) for k, v in per_round.items()},
        "last": {k: float(np.mean(v[last])) for k, v in per_round.items()},
        "d": parameter_count(run, case),
        "file": out,
    }


METRICS = ("uplink_messages", "uplink_bytes", "downlink_bytes", "control_messages", "control_bytes")


def parameter_count(run, case: Case) -> int:
    """d: the number of learned parameters, from the run file's own description of the run."""
    from mpidrl import registry
    from mpidrl.config import from_dict
    from mpidrl.envs import make_env, spec_of
    from mpidrl.protocols import Context

    cfg = from_dict(run.config)
    env = make_env(cfg.env)
    ctx = Context(cfg, 0, spec_of(env))
    env.close()
    learner = registry.lookup(cfg.algo.name).learner(ctx)
    state = learner.state_dict()
    for key in ("theta", "q", "w"):
        if key in state:
            return int(state[key].size)
    raise KeyError(f"{cfg.algo.name}: no parameter vector among {sorted(state)}")


def num(x: float) -> str:
    """A count or byte figure: whole numbers as integers, others to 3 significant digits."""
    return f"{x:.0f}" if x == round(x) or x >= 1000 else f"{x:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few cases, 4 agents, 1-2 rounds (smoke test)")
    parser.add_argument("--np", type=int, default=2, help="MPI processes")
    parser.add_argument("--out-dir", default="results/bench")
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 4 if args.quick else 50
    names = [k for k, c in CASES.items() if c.quick] if args.quick else (args.only or list(CASES))
    print(machine())
    print(f"n = {n}, mpiexec -n {args.np}; per round, summed over agents: mean over all rounds (last quarter)")
    print(
        "case | rounds | d | uplink msgs | uplink B | downlink B | control msgs | control B | "
        "param-bcast + grad-upload B each way | uplink ratio"
    )
    for name in names:
        case = CASES[name]
        rounds = 2 if args.quick else case.rounds
        v = run_volume(name, case, n, rounds, args.np, out_dir)
        a, z = v["all"], v["last"]
        pb = n * v["d"] * 8
        cells = [f"{num(a[k])} ({num(z[k])})" if a[k] != z[k] else num(a[k]) for k in METRICS]
        ratio = f"{pb / a['uplink_bytes']:.3g}x" if a["uplink_bytes"] else "-"
        print(f"{name} | {rounds} | {v['d']} | " + " | ".join(cells) + f" | {pb} | {ratio}", flush=True)


if __name__ == "__main__":
    main()
