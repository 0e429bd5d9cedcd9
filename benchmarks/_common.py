"""Helpers shared by the benchmark scripts: configs, machine description, robust timing summaries."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mpidrl.config import Config, from_dict

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def es_config(
    env_id: str,
    n: int,
    hidden: tuple[int, ...],
    rounds: int = 10,
    seed: int = 0,
    trials: int = 1,
    trial_batch: int = 1,
    batch: int = 0,
    **algo,
) -> Config:
    """A validated ES config on ``env_id`` with ``n`` agents (the default config's ES settings)."""
    return from_dict(
        {
            "run": {
                "seed": seed,
                "rounds": rounds,
                "checkpoint_every": 0,
                "trials": trials,
                "trial_batch": trial_batch,
            },
            "env": {"id": env_id},
            "agents": {"n": n, "batch": batch},
            "algo": {"name": "es", "sigma": 0.1, "fitness_shaping": "centered_rank", "antithetic": True, **algo},
            "policy": {"hidden": list(hidden)},
            "optim": {"name": "adam", "lr": 0.05, "l2": 0.005},
        }
    )


def machine() -> str:
    """nproc, the head of lscpu, Python and numpy versions and the load average, as text."""
    lines = [f"date (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}", f"nproc: {os.cpu_count()}"]
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout.splitlines()[:10]
        lines += [f"lscpu: {line}" for line in lscpu]
    except (OSError, subprocess.TimeoutExpired):
        pass
    lines.append(f"python {platform.python_version()}, numpy {np.__version__}")
    lines.append(f"load average: {load()}")
    return "\n".join(lines)


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spread(values: list[float]) -> str:
    """median [min, max] of repeated measurements."""
    v = np.asarray(values, dtype=float)
    return f"{np.median(v):.4g} [{v.min():.4g}, {v.max():.4g}]"
