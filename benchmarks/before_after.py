"""The same runs with the code of an earlier commit and with the working tree, side by side.

What it measures: environment steps per second of ``mpidrl run`` (one process) on a few settings, with
the package exported from commit BEFORE (``git archive``, put first on ``PYTHONPATH``) and with the
working tree, alternating processes (before, after, before, ...) ``--repeats`` times so that load drift on
a shared machine hits both alike. Steps and time come from each run file: the sum of /metrics/steps over
the wall time at the last round (set-up excluded). Settings: CartPole-v1 with configs/default.toml's ES
(n = 50, one trial) and Ant-v5 with 10 agents and a 64-64 MLP; the policy-gradient methods on CartPole-v1
(configs/pg/cartpole_equal.toml: 10 agents, M = 10, horizon 200, 150 rounds; synchronous NIGT, Rennala,
AFedPG, LAPG) and Rennala NIGT on Hopper-v5 (configs/pg/hopper_equal.toml: 5 agents, horizon 1000, 40
rounds). Both codes must record the same steps and the same rewards, bit for bit, or the script stops.

Run:  .venv/bin/python benchmarks/before_after.py BEFORE_COMMIT [--repeats 3] [--only SUBSTRING] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import ROOT, load, machine, spread

from mpidrl.store import read_run

SETTINGS = {
    # name: (config, overrides, quick overrides)
    "CartPole-v1 ES n=50": (
        "configs/default.toml",
        ["run.trials=1", "run.rounds=30", "run.eval_every=0"],
        ["run.trials=1", "run.rounds=3", "run.eval_every=0", "agents.n=10"],
    ),
    "CartPole-v1 ES n=10000": (
        "configs/default.toml",
        ["run.trials=1", "run.rounds=10", "run.eval_every=0", "agents.n=10000"],
        ["run.trials=1", "run.rounds=2", "run.eval_every=0", "agents.n=200"],
    ),
    "Ant-v5 ES n=10": (
        "configs/default.toml",
        [
            'env.id="Ant-v5"',
            "env.gamma=0.99",
            "agents.n=10",
            "policy.hidden=[64, 64]",
            "algo.sigma=0.02",
            "run.trials=1",
            "run.rounds=4",
            "run.eval_every=0",
        ],  # fmt: skip
        [
            'env.id="Ant-v5"',
            "env.gamma=0.99",
            "agents.n=2",
            "policy.hidden=[64, 64]",
            "run.trials=1",
            "run.rounds=1",
            "run.eval_every=0",
            "env.max_steps=50",
        ],  # fmt: skip
    ),
}
for _algo in ("nigt-sync", "rennala-nigt", "afedpg", "lapg"):
    _own = ["algo.alpha=0.0001"] if _algo == "lapg" else ["algo.M=3", "algo.M_init=3"]  # in the quick runs: M
    SETTINGS[f"CartPole-v1 {_algo} n=10"] = (
        "configs/pg/cartpole_equal.toml",
        [f'algo.name="{_algo}"', *_own[:1] * (_algo == "lapg"), "run.trials=1", "run.rounds=150"],
        [f'algo.name="{_algo}"', *_own, "run.trials=1", "run.rounds=2", "agents.n=3"],
    )
SETTINGS["Hopper-v5 rennala-nigt n=5"] = (
    "configs/pg/hopper_equal.toml",
    ["run.trials=1", "run.rounds=40", "algo.H=1000"],
    ["run.trials=1", "run.rounds=1", "algo.H=20", "agents.n=2", "algo.M=2", "algo.M_init=2"],
)


def rate(pythonpath: str, config: str, sets: list[str], out: Path) -> tuple[int, float, bytes]:
    """(steps, seconds, the rewards' bytes) of one run with the package found first on ``pythonpath`` ('' for
    the working tree)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": pythonpath}
    args = [sys.executable, "-m", "mpidrl", "run", str(ROOT / config), "--out", str(out), "--overwrite"]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, check=True, env=env, cwd=out.parent, capture_output=True)
    run = read_run(out)
    return int(run.metrics["steps"].sum()), float(run.metrics["wall_time"][0, -1]), run.metrics["reward"].tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="commit of the code to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="only the settings whose name contains this")
    parser.add_argument("--quick", action="store_true", help="tiny runs (smoke test)")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", args.before, "mpidrl"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        print("setting | code | steps | s | steps/s | load")
        for name, (config, sets, quick) in SETTINGS.items():
            if args.only not in name:
                continue
            sets = quick if args.quick else sets
            rates: dict[str, list[float]] = {"before": [], "after": []}
            steps_seen = set()
            for _ in range(1 if args.quick else args.repeats):
                for code, path in (("before", str(before)), ("after", "")):
                    steps, seconds, rewards = rate(path, config, sets, Path(tmp) / f"{code}.h5")
                    steps_seen.add((steps, rewards))
                    rates[code].append(steps / seconds)
                    print(f"{name} | {code} | {steps} | {seconds:.3f} | {steps / seconds:.0f} | {load()}", flush=True)
            if len(steps_seen) != 1:
                found = sorted(s for s, _ in steps_seen)
                raise AssertionError(f"{name}: the two codes ran different episodes or rewards ({found} steps)")
            ratio = [a / b for a, b in zip(rates["after"], rates["before"])]
            print(f"{name}: after / before steps per second, median [min, max] = {spread(ratio)}")
            print(f"{name}: medians before {np.median(rates['before']):.0f}, after {np.median(rates['after']):.0f}")


if __name__ == "__main__":
    main()
