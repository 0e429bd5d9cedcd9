"""The report's figures from a :class:`mpidrl.analysis.Collection`.

- curves against round: reward, messages per agent and uplink bytes per agent, one line per setting
  with its band over trials (mean and 10-90 %, or IQM and 95 % bootstrap);
- the same against wall-clock time, and against simulated time where the runs kept a simulated clock
  (the asynchronous algorithms' natural axis);
- reward against communication: final reward against total uplink bytes and messages per agent, one
  point per setting, every algorithm on one page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mpidrl.analysis import Collection, Setting, center_band, on_time_grid, summary

PANELS = (
    ("reward", "discounted reward"),
    ("uplink_messages", "messages / agent"),
    ("uplink_bytes", "uplink bytes / agent"),
)
AXES = {"round": "round", "wall_time": "wall time (s)", "sim_time": "simulated time"}
MARKERS = "osD^vP*Xh<>"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curve(setting: Setting, metric: str, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(x values, [trials, points]) of a metric against round or a clock."""
    values = setting.per_trial(metric)
    if x == "round":
        return np.arange(1, setting.rounds + 1), values
    return on_time_grid(setting.metrics[x], values)


def has_axis(setting: Setting, x: str) -> bool:
    return x == "round" or bool(np.isfinite(setting.metrics[x]).any())


def plot_curves(
    collection: Collection, out: str | Path, x: str = "round", stat: str = "mean", seed: int = 0
) -> Path | None:
    """Reward, messages and bytes per agent against ``x`` for every setting that has that axis."""
    settings = [s for s in collection.settings if has_axis(s, x)]
    if not settings:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5.2 * len(PANELS), 4.2), constrained_layout=True)
    for setting in settings:
        for ax, (metric, ylabel) in zip(axes, PANELS):
            xs, per_trial = _curve(setting, metric, x)
            center, lo, hi = center_band(per_trial, stat, seed)
            (line,) = ax.plot(xs, center, label=f"{setting.label} ({setting.trials} trials)")
            if setting.trials > 1:
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.set_xlabel(AXES[x])
            ax.set_ylabel(ylabel)
    band = "mean, 10-90 % band" if stat == "mean" else "IQM, 95 % bootstrap band"
    fig.suptitle(f"against {AXES[x]} ({band} over trials)")
    axes[0].legend(fontsize="small")
    return _save(fig, out)


def plot_reward_vs_communication(collection: Collection, out: str | Path, stat: str = "mean", seed: int = 0) -> Path:
    """Final reward against total uplink bytes and messages per agent: one point per setting, one marker
    per algorithm; the bars are the spread over trials (mean and 10-90 %, or IQM and 95 % bootstrap)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    algos = list(dict.fromkeys(s.algo for s in collection.settings))
    xs: dict[str, list[float]] = {}
    for setting in collection.settings:
        row = summary(setting)
        marker = MARKERS[algos.index(setting.algo) % len(MARKERS)]
        reward = row["final_reward_trials"]
        for ax, key in zip(axes, ("total_up_bytes_trials", "total_messages_trials")):
            (xm, xlo, xhi), (ym, ylo, yhi) = (
                (float(v[0]) for v in center_band(values[:, None], stat, seed)) for values in (row[key], reward)
            )
            xerr, yerr = [[xm - xlo], [xhi - xm]], [[ym - ylo], [yhi - ym]]
            ax.errorbar(xm, ym, xerr=xerr, yerr=yerr, marker=marker, linestyle="none", capsize=3, label=setting.label)
            xs.setdefault(key, []).append(xm)
    for ax, key, xlabel in zip(axes, xs, ("total uplink bytes / agent", "total uplink messages / agent")):
        if min(xs[key]) > 0 and max(xs[key]) / min(xs[key]) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final reward (last 10 % of rounds)")
    axes[1].legend(fontsize="small")
    spread = "mean over trials, 10-90 % bars" if stat == "mean" else "IQM over trials, 95 % bootstrap bars"
    fig.suptitle(f"reward against communication ({spread})")
    return _save(fig, out)


def _save(fig, out: str | Path) -> Path:
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def draw_all(collection: Collection, out_dir: str | Path, stat: str = "mean", seed: int = 0) -> list[Path]:
    """Every figure of the collection into ``out_dir``; returns the files written."""
    out_dir = Path(out_dir)
    drawn = [plot_curves(collection, out_dir / f"curves_{x}.png", x, stat, seed) for x in AXES]
    drawn.append(plot_reward_vs_communication(collection, out_dir / "reward_vs_communication.png", stat, seed))
    return [p for p in drawn if p is not None]
