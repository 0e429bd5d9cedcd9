"""Summaries and figures from run files: the report's metrics with 10th-90th percentile bands.

mu_reward(k), mu_frequency(k) and mu_size(k) (report section 3.2) are means over trials and agents of
the per-agent reward, uplink messages and uplink bytes in round k. Bands are the 10th-90th percentiles
across trials of the per-trial agent means.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mpidrl.store import Run

PANELS = (
    ("reward", "discounted reward"),
    ("uplink_messages", "messages / agent"),
    ("uplink_bytes", "uplink bytes / agent"),
)


def agent_mean(run: Run, metric: str) -> np.ndarray:
    """[T, R] mean over agents of a per-agent metric (NaN-aware: silent agents do not count)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rounds stay NaN
        return np.nanmean(run.metrics[metric].astype(float), axis=2)


def band(per_trial: np.ndarray, lo: float = 10, hi: float = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the lo-hi percentile band across trials (axis 0) of a [T, R] array."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (
            np.nanmean(per_trial, axis=0),
            np.nanpercentile(per_trial, lo, axis=0),
            np.nanpercentile(per_trial, hi, axis=0),
        )


def x_axis(run: Run, x: str) -> tuple[np.ndarray, str]:
    """Values for the horizontal axis: round number, or the mean over trials of a clock."""
    rounds = run.metrics["reward"].shape[1]
    if x == "round":
        return np.arange(1, rounds + 1), "round"
    return np.nanmean(run.metrics[x], axis=0), {"wall_time": "wall time (s)", "sim_time": "simulated time"}[x]


def plot_runs(runs: Sequence[Run], out: str | Path, x: str = "round", title: str | None = None) -> Path:
    """Reward, messages and bytes per agent against ``x`` for each run, with 10-90 % bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.8), constrained_layout=True)
    for run in runs:
        xs, xlabel = x_axis(run, x)
        trials = run.metrics["reward"].shape[0]
        for ax, (metric, ylabel) in zip(axes, PANELS):
            mean, lo, hi = band(agent_mean(run, metric))
            (line,) = ax.plot(xs, mean, label=f"{run.label} ({trials} trial{'s' * (trials > 1)})")
            if trials > 1:
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if metric != "reward":
                ax.set_ylim(bottom=0)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def summary_row(run: Run) -> dict[str, object]:
    """Final reward, mean messages and bytes per agent per round, and wall time of one run."""
    rounds_done = int(run.attrs.get("rounds_done", 0))
    reward = agent_mean(run, "reward")
    last = min(rounds_done, reward.shape[1]) - 1
    tail = slice(max(0, last - max(1, reward.shape[1] // 10) + 1), last + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "run": run.path,
            "algo": run.config["algo"]["name"],
            "env": run.config["env"]["id"],
            "n": run.config["agents"]["n"],
            "trials": reward.shape[0],
            "rounds": reward.shape[1],
            "status": run.attrs.get("status", "?"),
            "final_reward": float(np.nanmean(reward[:, tail])) if last >= 0 else float("nan"),
            "msgs_per_agent_round": float(np.nanmean(run.metrics["uplink_messages"])),
            "up_bytes_per_agent_round": float(np.nanmean(run.metrics["uplink_bytes"])),
            "down_bytes_per_agent_round": float(np.nanmean(run.metrics["downlink_bytes"])),
            "wall_time_s": float(np.nanmean(np.nanmax(run.metrics["wall_time"], axis=1))),
        }


def summary_table(runs: Sequence[Run]) -> str:
    """A Markdown table of :func:`summary_row` for each run."""
    rows = [summary_row(r) for r in runs]
    head = [
        "run",
        "algo",
        "env",
        "n",
        "trials",
        "rounds",
        "status",
        "final reward (last 10%)",
        "msgs/agent/round",
        "up B/agent/round",
        "down B/agent/round",
        "wall s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['algo']} | {r['env']} | {r['n']} | {r['trials']} | {r['rounds']} | {r['status']} "
            f"| {r['final_reward']:.3f} | {r['msgs_per_agent_round']:.3f} | {r['up_bytes_per_agent_round']:.1f} "
            f"| {r['down_bytes_per_agent_round']:.1f} | {r['wall_time_s']:.1f} |"
        )
    return "\n".join(lines)
