"""Golden runs: small configs of every built-in algorithm whose numbers are pinned in tests/data/golden.

Each case is a config that exercises one algorithm's features (record_messages on, so the message log and
the diagnostics are pinned too). :func:`numbers` reads what a run file holds that must never change
(every metric but the clocks and the placement, every diagnostic, every message row but its time).
``python tests/golden.py --write DIR`` runs each case once and stores those arrays; the test compares
fresh runs at 1 and 3 ranks with them, bit for bit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np

DATA = Path(__file__).parent / "data" / "golden"

_ES = {
    "run": {"seed": 7, "trials": 2, "rounds": 4, "record_messages": True, "eval_every": 2, "eval_episodes": 2},
    "agents": {"n": 6},
    "algo": {"name": "es", "sigma": 0.1, "fitness_shaping": "centered_rank", "antithetic": True},
    "policy": {"hidden": [5]},
    "optim": {"name": "adam", "lr": 0.05, "l2": 0.005},
}
_GRID = {
    "run": {"seed": 3, "trials": 3, "rounds": 6, "record_messages": True, "eval_every": 3, "eval_episodes": 2},
    "env": {"id": "mpidrl/SimpleGrid-v0", "gamma": 0.9, "max_steps": 30},
    "agents": {"n": 5},
}
_PG = {
    "run": {"seed": 5, "trials": 2, "rounds": 4, "record_messages": True, "eval_every": 2, "eval_episodes": 1},
    "env": {"id": "CartPole-v1", "gamma": 0.99},
    "agents": {"n": 4},
    "algo": {"name": "rennala-nigt", "eta": 0.2, "alpha": 0.05, "M": 6, "M_init": 4, "H": 40},
    "policy": {"hidden": [6]},
    "time": {"mode": "simulated", "h": "sqrt(i)", "kappa": 0.5},
}


def _merge(base: dict, **changes: dict) -> dict:
    out = json.loads(json.dumps(base))
    for section, values in changes.items():
        out.setdefault(section, {}).update(values)
    return out


CASES: dict[str, dict] = {
    "es": _ES,
    "es_returns_downlink": _merge(_ES, algo={"downlink": "returns", "check_every": 2, "antithetic": False}),
    "es_sgd_two_episodes": _merge(
        _ES, algo={"episodes": 2, "fitness_shaping": "none"}, optim={"name": "sgd", "lr": 0.01}
    ),
    "espc": _merge(_ES, algo={"name": "espc", "m": 3, "k": 3, "antithetic": False}, run={"rounds": 5}),
    "es_fixed": _merge(_ES, algo={"name": "es-fixed", "m": 2, "antithetic": False}),
    "dql": _merge(_GRID, algo={"name": "dql", "explore_start": 0.5}),
    "ebcdql": _merge(
        _GRID, env={"id": "mpidrl/WindyGrid-v0"}, algo={"name": "ebcdql", "beta": 0.4, "rho": 1.2, "eps_floor": 0.6}
    ),
    "davia": _merge(_GRID, algo={"name": "davia", "lam": 0.055, "horizon": 4, "rho": 0.9}),
    "davia_lake": _merge(_GRID, env={"id": "mpidrl/FrozenLake5x5-v0"}, algo={"name": "davia", "lam": 0.0}),
    "es_grid": _merge(_GRID, env={"id": "mpidrl/WindyGrid-v0"}, algo={"name": "es", "sigma": 0.2}),
    "nigt_sync": _merge(_PG, algo={"name": "nigt-sync"}),
    "rennala": _merge(_PG, algo={"name": "rennala-nigt"}, time={"h": {"dist": "exponential", "mean": "sqrt(i)"}}),
    "malenia": _merge(
        _PG, env={"variation": "negate_obs"}, agents={"n": 3}, algo={"name": "malenia-nigt"}, time={"kappa": "i"}
    ),
    "afedpg": _merge(_PG, algo={"name": "afedpg", "M": 5}, time={"kappa": "0.2 * i"}),
    "afedpg_learner_momentum": _merge(
        _PG, algo={"name": "afedpg", "M": 5, "momentum": "learner"}, time={"kappa": "0.2 * i"}
    ),
    "lapg": {
        **_merge(_PG, time={"mode": "real", "h": 1.0, "kappa": 0.0}),
        "algo": {"name": "lapg", "alpha": 0.01, "batch": 2, "H": 30, "D": 2, "xi": 0.5, "max_staleness": 2},
    },
    "lapg_simulated": {**_merge(_PG, run={"trials": 1}), "algo": {"name": "lapg", "alpha": 0.02, "H": 30}},
}
for _name in ("dql", "ebcdql", "davia_lake", "es_grid"):
    CASES[f"{_name}_batched"] = _merge(CASES[_name], run={"trial_batch": 2})
# the simulated network: message times from their bytes on each agent's link
CASES["es_lte"] = _merge(_ES, time={"mode": "simulated", "network": "lte", "h": "0.01 * i"})
CASES["rennala_wifi"] = _merge(
    CASES["rennala"], time={"network": "wifi", "uplink_latency": {"dist": "exponential", "mean": "0.002 * i"}}
)
CASES["afedpg_lte"] = _merge(CASES["afedpg"], time={"network": "lte-stragglers"})
# environments per agent: poles of four lengths (native CartPole), negated observations and a lake whose
# start is not in the first cell (one Gymnasium instance per agent)
CASES["es_pole_length"] = _merge(_ES, env={"variation": "pole_length"})
CASES["espc_negate_obs"] = _merge(CASES["espc"], env={"variation": "negate_obs"})
CASES["ebcdql_lake"] = _merge(
    CASES["ebcdql"],
    env={"id": "FrozenLake-v1", "kwargs": {"desc": ["FFF", "FSH", "HFG"], "is_slippery": True}, "max_steps": 25},
)

IGNORED_METRICS = ("wall_time", "rank")
"""What may differ between runs of one config: the real clock and where each agent ran."""


def numbers(path: str | Path) -> dict[str, np.ndarray]:
    """Every pinned array of a run file, by a flat name."""
    out = {}
    with h5py.File(path, "r") as f:
        for name, ds in f["metrics"].items():
            if name not in IGNORED_METRICS:
                out[f"metrics/{name}"] = ds[()]
        for name, ds in f.get("diagnostics", {}).items():
            out[f"diagnostics/{name}"] = ds[()]
        if "messages" in f:
            log = f["messages"][()]
            for field in log.dtype.names:
                if field != "time":
                    out[f"messages/{field}"] = np.asarray(log[field]).astype(log.dtype[field].base.str)
        out["status"] = np.array(f.attrs["status"])
    return out


def write_configs(folder: Path) -> dict[str, Path]:
    """Each case as a TOML file in ``folder`` (through the sweep module's TOML writer)."""
    from mpidrl.sweep import toml_value

    paths = {}
    for name, case in CASES.items():
        lines = []
        for section, values in case.items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        paths[name] = folder / f"{name}.toml"
        paths[name].write_text("\n".join(lines) + "\n")
    return paths


if __name__ == "__main__":
    if sys.argv[1:2] != ["--write"] or len(sys.argv) != 3:
        sys.exit("usage: python tests/golden.py --write RUN_DIR  (runs every case once, stores its numbers)")
    import subprocess

    work = Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    DATA.mkdir(parents=True, exist_ok=True)
    for name, cfg in write_configs(work).items():
        out = work / f"{name}.h5"
        subprocess.run([sys.executable, "-m", "mpidrl", "run", str(cfg), "--out", str(out), "--overwrite"], check=True)
        np.savez_compressed(DATA / f"{name}.npz", **numbers(out))
        print(f"{name}: stored", flush=True)
