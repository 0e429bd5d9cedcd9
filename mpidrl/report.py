"""The tables of ``mpidrl summary`` and ``mpidrl report``, and the report's page.

Statistics come from :mod:`mpidrl.analysis` (:func:`summary` gathers those of a setting's row) and
figures from :mod:`mpidrl.figures`; this module lays them out: a Markdown table per run file
(``summary``, and the end of ``run``), and for a report a Markdown and a CSV table per setting beside
the figures, in ``report.md`` and ``report.csv``.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mpidrl import figures
from mpidrl.analysis import (
    BYTES,
    AnalysisError,
    Collection,
    Setting,
    band_name,
    final_values,
    group,
    iqm_bootstrap,
    load,
)
from mpidrl.store import Run

CSV_COLUMNS = (
    "setting",
    "algo",
    "env",
    "n",
    "runs",
    "complete",
    "trials",
    "rounds",
    "final_reward_mean",
    "final_reward_p10",
    "final_reward_p90",
    "final_reward_iqm",
    "final_reward_iqm_ci_low",
    "final_reward_iqm_ci_high",
    "uplink_messages_per_agent_round",
    "uplink_bytes_per_agent_round",
    "downlink_bytes_per_agent_round",
    "control_bytes_per_agent_round",
    "total_bytes_per_agent",
    "wall_time_s",
    "sim_time_end",
)
"""Columns of ``report.csv``, one row per setting. The final reward is the mean over the last 10 % of
rounds (each trial's, then across trials) with the 10th and 90th percentiles over trials, and its
interquartile mean with a 95 % percentile-bootstrap confidence interval; traffic per agent per round is
the mean over written rounds; totals and times are means over the trials that reached the last round."""


def summary(setting: Setting) -> dict[str, Any]:
    """Per-setting numbers of the tables: per-trial values (``*_trials``), then means over trials.

    Per agent per round: means over the written rounds only, so a partial run reports the traffic of the
    rounds it ran. Totals, the final reward and the times are of the trials that reached the setting's
    last round (a trial cut short has no total; NaN).
    """

    def last(values: np.ndarray) -> np.ndarray:  # [T] the last round's values (NaN before any round)
        return values[:, -1] if values.shape[1] else np.full(values.shape[0], np.nan)

    reached = np.isfinite(last(setting.metrics["wall_time"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reward = final_values(setting.per_trial("reward"))
        up_msgs = np.where(reached, np.nansum(setting.per_trial("uplink_messages"), axis=1), np.nan)
        total_bytes = np.where(reached, last(setting.cumulative_bytes()), np.nan)
        per_round = {m: float(np.nanmean(setting.metrics[m])) for m in ("uplink_messages", *BYTES)}
        return {
            "label": setting.label,
            "algo": setting.algo,
            "env": setting.config["env"]["id"],
            "n": setting.n,
            "runs": len(setting.paths),
            "complete": sum(s == "complete" for s in setting.statuses),
            "trials": setting.trials,
            "rounds": setting.rounds,
            "final_reward_trials": reward,
            "total_messages_trials": up_msgs,
            "total_bytes_trials": total_bytes,
            "final_reward": float(np.nanmean(reward)),
            "final_reward_p10": float(np.nanpercentile(reward, 10)),
            "final_reward_p90": float(np.nanpercentile(reward, 90)),
            "msgs_per_agent_round": per_round["uplink_messages"],
            "up_bytes_per_agent_round": per_round["uplink_bytes"],
            "down_bytes_per_agent_round": per_round["downlink_bytes"],
            "control_bytes_per_agent_round": per_round["control_bytes"],
            "total_messages_per_agent": float(np.nanmean(up_msgs)),
            "total_bytes_per_agent": float(np.nanmean(total_bytes)),
            "wall_time_s": float(np.nanmean(last(setting.metrics["wall_time"])[reached])),
            "sim_time_end": float(np.nanmean(last(setting.metrics["sim_time"])[reached])),
        }


def _num(value: float, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def progress(run: Run) -> str:
    """A run file's status as it is (``running`` only while its writer lives) and, unless it is complete,
    how far it got: ``running, round 10 of 40 of trial 1 of 2``."""
    status = run.status
    if status == "complete":
        return status
    trials, rounds = run.config["run"].get("trials", "?"), run.config["run"].get("rounds", "?")
    trial = int(run.attrs.get("trials_done", 0)) + 1
    if isinstance(trials, int):
        trial = min(trial, trials)
    return f"{status}, round {int(run.attrs.get('rounds_done', 0))} of {rounds} of trial {trial} of {trials}"


def summary_table(runs: Sequence[Run]) -> str:
    """A Markdown table with one row per run file (trials of a file pooled, files not): final reward,
    messages and bytes per agent per round over the rounds written, and wall time per trial."""
    head = (
        "run | algo | env | n | trials | rounds | status | final reward (last 10 %) | msgs/agent/round "
        "| up B/agent/round | down B/agent/round | control B/agent/round | wall s/trial"
    ).split(" | ")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        r = summary(group([run])[0])
        lines.append(
            f"| {run.path} | {r['algo']} | {r['env']} | {r['n']} | {r['trials']} | {r['rounds']} "
            f"| {progress(run)} | {_num(r['final_reward'], 3)} | {_num(r['msgs_per_agent_round'], 3)} "
            f"| {_num(r['up_bytes_per_agent_round'], 1)} | {_num(r['down_bytes_per_agent_round'], 1)} "
            f"| {_num(r['control_bytes_per_agent_round'], 1)} | {_num(r['wall_time_s'], 2)} |"
        )
    return "\n".join(lines)


def rows(collection: Collection, seed: int = 0) -> list[dict[str, Any]]:
    """One row of :data:`CSV_COLUMNS` per setting (``seed``: of the bootstrap)."""
    out = []
    for s in collection.settings:
        r = summary(s)
        center, lo, hi = (float(v[0]) for v in iqm_bootstrap(r["final_reward_trials"][:, None], seed=seed))
        values = (
            *(r[k] for k in ("label", "algo", "env", "n", "runs", "complete", "trials", "rounds", "final_reward")),
            r["final_reward_p10"],
            r["final_reward_p90"],
            center,
            lo,
            hi,
            *(r[f"{k}_per_agent_round"] for k in ("msgs", "up_bytes", "down_bytes", "control_bytes")),
            r["total_bytes_per_agent"],
            r["wall_time_s"],
            r["sim_time_end"],
        )
        out.append(dict(zip(CSV_COLUMNS, values)))
    return out


def write_csv(table: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """``table`` (:func:`rows`) as CSV with a header line; NaN as an empty cell."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in table:
            writer.writerow({k: "" if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()})
    return path


def markdown(table: Sequence[dict[str, Any]], stat: str = "mean") -> str:
    """``table`` (:func:`rows`) as Markdown; ``stat="iqm"`` adds the final reward's IQM and 95 % CI."""
    simulated = any(math.isfinite(r["sim_time_end"]) for r in table)
    head = [
        "setting",
        "algo",
        "env",
        "n",
        "runs (complete)",
        "trials",
        "rounds",
        "final reward, last 10 % (mean [p10, p90])",
        *(["final reward IQM [95 % bootstrap CI]"] if stat == "iqm" else []),
        "msgs/agent/round",
        "up B/agent/round",
        "down B/agent/round",
        "control B/agent/round",
        "total B/agent",
        "wall s/trial",
        *(["sim time at end"] if simulated else []),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        cells = [r["setting"], r["algo"], r["env"], r["n"], f"{r['runs']} ({r['complete']})", r["trials"], r["rounds"]]
        cells.append(
            f"{_num(r['final_reward_mean'], 2)} [{_num(r['final_reward_p10'], 2)}, {_num(r['final_reward_p90'], 2)}]"
        )
        if stat == "iqm":
            ci = f"[{_num(r['final_reward_iqm_ci_low'], 2)}, {_num(r['final_reward_iqm_ci_high'], 2)}]"
            cells.append(f"{_num(r['final_reward_iqm'], 2)} {ci}")
        cells += [_num(r["uplink_messages_per_agent_round"], 3)]
        cells += [_num(r[f"{k}_bytes_per_agent_round"], 1) for k in ("uplink", "downlink", "control")]
        cells += [_num(r["total_bytes_per_agent"], 0), _num(r["wall_time_s"], 2)]
        cells += [_num(r["sim_time_end"], 1)] if simulated else []
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def report(
    sweep_dirs: str | Path | Sequence[str | Path], out_dir: str | Path | None = None, stat: str = "mean", seed: int = 0
) -> Path:
    """Figures, ``report.md`` and ``report.csv`` of the run files under one or more directories (e.g. one
    sweep per algorithm, to put them on one page) in ``out_dir`` (default: the first directory's ``report/``)."""
    dirs = [Path(sweep_dirs)] if isinstance(sweep_dirs, (str, Path)) else [Path(d) for d in sweep_dirs]
    for d in dirs:
        if not d.is_dir():
            raise AnalysisError(f"{d}: not a directory")
    where = " ".join(map(str, dirs))
    out = Path(out_dir) if out_dir else dirs[0] / "report"
    collection = load(dirs)
    settings = collection.settings
    reward = figures.plot_reward(settings, out / "reward.png", stat, seed=seed)
    traffic = [m for m in figures.panels(settings) if m != "reward"]
    title = "messages and bytes per agent per round" + (", evaluation return" if "eval_return" in traffic else "")
    curves = figures.plot_curves(
        settings, out / "curves_round.png", "round", stat, seed=seed, title=title, metrics=traffic
    )
    table = rows(collection, seed)
    write_csv(table, out / "report.csv")
    lines = [
        f"# Report of {where}",
        "",
        f"{sum(len(s.paths) for s in settings)} run file(s) in {len(settings)} setting(s), seeds pooled as "
        f"trials; curves: {band_name(stat)}. A setting's label names the config keys that differ between "
        "settings and are set for it (bookkeeping keys such as run.seed or run.eval_every ignored).",
        "",
        markdown(table, stat),
        "",
        "The same table as CSV, with the IQM and its 95 % bootstrap confidence interval: [report.csv](report.csv).",
        "",
        f"![{reward.stem}]({reward.name})",
        "",
        f"![{curves.stem}]({curves.name})",
    ]
    if collection.skipped:
        lines += ["", "Skipped:", *(f"- {s}" for s in collection.skipped)]
    command = f"mpidrl report {where}" + (f" -o {out}" if out_dir else "") + f" --stat {stat}"
    lines += ["", f"Made with `{command}`" + (f" (bootstrap seed {seed})." if stat == "iqm" else ".")]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
