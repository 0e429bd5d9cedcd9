"""ESPC against ES setting by setting: which of the authors' settings changes the comparison.

Reads the run files of two sweeps (jobs/sweeps/espc-cartpole-settings.toml and es-cartpole-settings.toml)
and pairs every ESPC run with the ES run whose settings agree with it on every key the ES sweep varies (ES
has no binomial tail, so one ES run serves both tails). One row per ESPC setting:

- the final reward of ES and of ESPC (the agents' mean discounted reward over the last ``--last``
  rounds, mean over trials and the half-width of its 95 % interval);
- ESPC minus ES, trial by trial (trial l has the same random keys in both runs, so the difference is
  paired), with its interval: an interval that excludes 0 is a difference the trials resolve;
- the share of rounds ``--start`` + 1 to the end in which ESPC's trial-mean reward is above ES's.

    .venv/bin/python analysis/espc_settings.py results/espc-cartpole-settings results/es-cartpole-settings
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mpidrl.analysis import agent_mean, as_float, final_values, mean_interval, run_script
from mpidrl.config import flatten
from mpidrl.store import read_run


def sweep_runs(directory: Path) -> list[tuple[dict, np.ndarray]]:
    """(flattened config, [T, R] agent-mean reward) of each complete run file of a sweep's folder."""
    out = []
    for path in sorted((directory / "runs").glob("*/*.h5")):
        run = read_run(path)
        if run.attrs.get("status") == "complete":
            out.append((flatten(run.config), agent_mean(as_float(run)["reward"])))
    if not out:
        raise SystemExit(f"{directory}: no complete run files under runs/")
    return out


def varied(runs: list[tuple[dict, np.ndarray]]) -> list[str]:
    """The config keys whose value differs between the runs, in sorted order."""
    keys = sorted({k for cfg, _ in runs for k in cfg} - {"run.seed", "run.out"})
    return [k for k in keys if len({repr(cfg.get(k)) for cfg, _ in runs}) > 1]


def order(value: object) -> tuple:
    """Sort key of a config value: numbers by value, before strings."""
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


def interval(x: np.ndarray) -> str:
    mean, low, _ = mean_interval(np.asarray(x, dtype=float)[:, None])
    return f"{mean[0]:.1f} +- {mean[0] - low[0]:.1f}"


def table(espc: list[tuple[dict, np.ndarray]], es: list[tuple[dict, np.ndarray]], last: int, start: int) -> str:
    keys, shared = varied(espc), varied(es)
    head = [*keys, "ES, last rounds", "ESPC, last rounds", "ESPC - ES (paired)", f"ESPC above ES, rounds {start + 1}-"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cfg, reward in sorted(espc, key=lambda run: [order(run[0][k]) for k in keys]):
        match = [r for c, r in es if all(c.get(k) == cfg.get(k) for k in shared)]
        if len(match) != 1:
            raise SystemExit(f"{len(match)} ES runs match the ESPC setting {[cfg[k] for k in keys]}")
        base = match[0]
        trials = min(len(reward), len(base))
        ours, theirs = final_values(reward[:trials], last), final_values(base[:trials], last)
        above = np.nanmean(reward[:trials], axis=0)[start:] > np.nanmean(base[:trials], axis=0)[start:]
        row = [str(cfg[k]) for k in keys]
        row += [interval(theirs), interval(ours), interval(ours - theirs), f"{100 * above.mean():.0f} %"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("espc", type=Path, help="the ESPC sweep's folder (mpidrl sweep -o)")
    ap.add_argument("es", type=Path, help="the ES sweep's folder")
    ap.add_argument("--last", type=int, default=20, help="rounds at the end for the final reward")
    ap.add_argument("--start", type=int, default=50, help="rounds skipped by the rounds-above column")
    args = ap.parse_args()
    print(table(sweep_runs(args.espc), sweep_runs(args.es), args.last, args.start))


if __name__ == "__main__":
    run_script(main)
