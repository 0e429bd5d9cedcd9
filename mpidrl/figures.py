"""Figures of settings (:mod:`mpidrl.analysis`): the curves of ``mpidrl plot`` and the report's figures.

Every figure follows the same rules, so that it reads at a glance:

- the title names the statistic and its band ("mean over trials, 10-90 % band");
- the legend sits below the axes, never over the data;
- a time axis is logarithmic when its values span more than two decades (:func:`spans_decades`), so that
  methods with short rounds are not squeezed into a corner; cumulative bytes always are;
- a message or byte panel starts at 0 when linear (an 8-byte difference at 10 264 B stays small), and is
  logarithmic when its values span more than two decades (ES's 8 B beside DQL's kilobytes);
- panels without data are left out (control bytes without control traffic, evaluation without
  evaluations), and an axis no setting has is refused with :class:`~mpidrl.analysis.AnalysisError`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mpidrl.analysis import AXES, DEFAULT_BAND, AnalysisError, Setting, band_name, center_band, curve
from mpidrl.config import flatten

PANELS = {
    "reward": "discounted reward / agent",
    "uplink_messages": "uplink messages / agent / round",
    "uplink_bytes": "uplink bytes / agent / round",
    "downlink_bytes": "downlink bytes / agent / round",
    "control_bytes": "control bytes / agent / round",
    "eval_return": "evaluation return",
}
"""Metric -> axis label of the panels of :func:`plot_curves`, in order."""
LABELS = {**PANELS, "return": "undiscounted return / agent"}
"""Metric -> axis label of any panel."""
TRAFFIC = ("uplink_messages", "uplink_bytes", "downlink_bytes", "control_bytes")
AXIS_LABELS = {
    "round": "round",
    "wall_time": "wall-clock time (s)",
    "sim_time": "simulated time (s)",
    "bytes": "cumulative bytes / agent (up + down + control)",
}
MISSING = {
    "round": "no round written yet",
    "wall_time": "no wall-clock time",
    "sim_time": 'no simulated clock (time.mode = "real")',
    "bytes": "no bytes counted",
}
"""Why a setting has no values on an axis."""
THIN = "; thin line: over the trials still running"
LOG_DECADES = 2.0
"""An axis whose positive values span more than this many powers of ten is logarithmic."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def spans_decades(values: np.ndarray, decades: float = LOG_DECADES) -> bool:
    """Whether the positive finite ``values`` span more than ``decades`` powers of ten."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    return v.size > 0 and float(v.max() / v.min()) > 10**decades


def panels(settings: Sequence[Setting]) -> list[str]:
    """The metrics of :data:`PANELS` worth a panel: control bytes only with control traffic, the
    evaluation return only when some run evaluated."""
    has = {
        "control_bytes": any(np.nan_to_num(s.metrics.get("control_bytes", 0)).any() for s in settings),
        "eval_return": any(np.isfinite(s.metrics.get("eval_return", np.nan)).any() for s in settings),
    }
    return [m for m in PANELS if has.get(m, True)]


def log_x(settings: Sequence[Setting], x: str) -> bool:
    """Whether axis ``x`` is drawn logarithmic: cumulative bytes always, a clock spanning decades."""
    if x in ("round", "bytes"):
        return x == "bytes"
    return spans_decades(np.concatenate([s.metrics[x].ravel() for s in settings]))


def split(settings: Sequence[Setting], x: str) -> tuple[list[Setting], list[Setting]]:
    """(settings with values on axis ``x``, settings without); AnalysisError if none has any."""
    if x not in AXES:
        raise AnalysisError(f"x: expected one of {', '.join(AXES)}, got {x!r}")
    shown = [s for s in settings if s.has(x)]
    if not shown:
        raise AnalysisError(f"{x}: nothing to draw, {MISSING[x]} in any of {len(settings)} setting(s)")
    return shown, [s for s in settings if s not in shown]


def _colors(settings: Sequence[Setting]) -> dict[str, tuple[str, str]]:
    """One (colour, line style) per setting, the same in every panel and figure; the styles differ too,
    so that settings with equal traffic (one message per round, say) stay visible on top of each other."""
    return _styles([s.label for s in settings])


def _styles(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(colour, line style) of each label, by its place in ``labels``."""
    cycle = [*_pyplot().rcParams["axes.prop_cycle"].by_key()["color"], "black"]  # 11 algorithms: 11 colours
    styles = ("-", (0, (6, 2)), (0, (2, 1.2)), (0, (8, 2, 2, 2)))
    return {label: (cycle[i % len(cycle)], styles[i % len(styles)]) for i, label in enumerate(labels)}


def _draw(ax, settings, metric, x, log, style, stat, band, seed) -> list[np.ndarray]:
    """One line and band per setting; returns what was drawn (for the choice of the y scale). Where some
    trials have ended (or not yet ended a round) the line is thin: the statistic is over fewer trials."""
    drawn = []
    for s in settings:
        if metric not in s.metrics or not s.has(x):
            continue
        xs, per_trial = curve(s, metric, x, log=log)
        center, lo, hi = center_band(per_trial, stat, band, seed)
        ok = np.isfinite(center)  # sparse metrics (evaluations) and times before any trial ended a round
        running = np.isfinite(per_trial).sum(axis=0)
        color, line = style[s.label]
        sparse = x == "round" and (ok.sum() <= 12 or ok.mean() < 0.5)  # evaluations: points, not a line
        ax.plot(xs[ok], center[ok], color=color, linestyle=line, lw=1.0, alpha=0.6, marker="." if sparse else None)
        full = ok & (running == running.max())
        ax.plot(xs[ok], np.where(full, center, np.nan)[ok], color=color, linestyle=line, lw=1.6)
        if s.trials > 1:
            ax.fill_between(xs[ok], lo[ok], hi[ok], color=color, alpha=0.18, linewidth=0)
        drawn += [center[ok], lo[ok], hi[ok]]
    return drawn


def y_log(metric: str, values: np.ndarray) -> bool:
    """Whether a panel's y axis is logarithmic: a message or byte panel whose values span decades."""
    return metric in TRAFFIC and spans_decades(values)


def format_panel(ax, metric: str, x: str, logx: bool, drawn: Sequence[np.ndarray]) -> None:
    """Labels, grid and scales of a panel; a linear message or byte axis starts at 0."""
    from matplotlib.ticker import NullFormatter

    ax.set_xlabel(AXIS_LABELS[x])
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.grid(alpha=0.3)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labels at every 2x, 3x, ... collide within a decade
    values = np.concatenate(drawn) if len(drawn) else np.empty(0)
    if y_log(metric, values):
        ax.set_yscale("log")
    elif metric in TRAFFIC:
        ax.set_ylim(bottom=0, top=max(1e-9, 1.08 * float(np.nanmax(values, initial=0.0))))


def _finish(fig, settings: Sequence[Setting], style, title: str, out: str | Path) -> Path:
    """Title, the legend below the axes, and the file."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=style[s.label][0], linestyle=style[s.label][1], lw=2) for s in settings]
    chars = int(fig.get_size_inches()[0] * 13)  # what a line of small text holds across the figure
    labels = [textwrap.fill(f"{s.label} ({s.trials} trial{'s' * (s.trials != 1)})", chars - 8) for s in settings]
    widest = max(len(line) for label in labels for line in label.splitlines())
    ncols = max(1, min(len(labels), chars // (widest + 8)))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize="small", frameon=False)
    fig.suptitle("\n".join(textwrap.fill(line, chars) for line in title.splitlines()), fontsize="medium")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    _pyplot().close(fig)
    return out


def _grid(rows: int, cols: int, sharex: bool | str = False, width: float = 4.4, height: float = 3.3):
    plt = _pyplot()
    size = (width * cols, height * rows + 0.9)
    fig, axes = plt.subplots(rows, cols, figsize=size, layout="constrained", sharex=sharex, squeeze=False)
    for ax in axes.flat:  # shared limits, but every panel keeps its own tick labels
        ax.tick_params(labelbottom=True)
    return fig, axes


def plot_curves(
    settings: Sequence[Setting],
    out: str | Path,
    x: str = "round",
    stat: str = "mean",
    band: tuple[float, float] = DEFAULT_BAND,
    seed: int = 0,
    title: str | None = None,
    metrics: Sequence[str] | None = None,
) -> Path:
    """Reward, uplink messages, uplink, downlink and control bytes per agent and the evaluation return
    (:func:`panels`), or the ``metrics`` named (any of :data:`LABELS`), against ``x``, one line and band
    per setting.

    Settings without values on ``x`` are left out and named in the title; AnalysisError if none has any,
    or if a metric is not one of :data:`LABELS`.
    """
    shown, missing = split(settings, x)
    unknown = [m for m in metrics or () if m not in LABELS]
    if unknown:
        raise AnalysisError(f"metrics: {', '.join(unknown)}: expected some of {', '.join(LABELS)}")
    chosen = list(metrics) if metrics else panels(shown)
    logx, style = log_x(shown, x), _colors(settings)
    cols = min(3, len(chosen))
    fig, axes = _grid(math.ceil(len(chosen) / cols), cols, sharex=True)
    for ax, metric in zip(axes.flat, chosen):
        format_panel(ax, metric, x, logx, _draw(ax, shown, metric, x, logx, style, stat, band, seed))
    for ax in axes.flat[len(chosen) :]:
        ax.set_visible(False)
    note = band_name(stat, band) + " (shaded)" + (THIN if x != "round" else "")
    if missing:
        note += f"; not shown, {MISSING[x]}: " + ", ".join(s.label for s in missing)
    return _finish(fig, shown, style, f"{title or 'against ' + AXIS_LABELS[x]}\n{note}", out)


def plot_reward(
    settings: Sequence[Setting],
    out: str | Path,
    stat: str = "mean",
    band: tuple[float, float] = DEFAULT_BAND,
    seed: int = 0,
    title: str | None = None,
) -> Path:
    """Reward against round, wall-clock time, simulated time (when any setting kept that clock) and
    cumulative bytes per agent: one column per axis, one row per environment (their rewards do not
    share a scale)."""
    axes_x = [x for x in AXES if any(s.has(x) for s in settings)]
    if not axes_x:
        raise AnalysisError(f"nothing to draw, {MISSING['round']} in any of {len(settings)} setting(s)")
    envs = list(dict.fromkeys(s.config["env"]["id"] for s in settings))
    style = _colors(settings)
    fig, axes = _grid(len(envs), len(axes_x))
    for row, env in zip(axes, envs):
        members = [s for s in settings if s.config["env"]["id"] == env]
        for col, (ax, x) in enumerate(zip(row, axes_x)):
            shown = [s for s in members if s.has(x)]
            if not shown:  # a blank panel, not an empty axis
                ax.axis("off")
                ax.text(
                    0.5, 0.5, f"{env}:\n{MISSING[x]}", ha="center", va="center", color="0.4", transform=ax.transAxes
                )
                continue
            logx = log_x(shown, x)
            format_panel(ax, "reward", x, logx, _draw(ax, shown, "reward", x, logx, style, stat, band, seed))
            ax.set_title(env if len(envs) > 1 else "", fontsize="small")
            if col:
                ax.set_ylabel("")
    head = title or "reward against rounds, time and communication"
    drawn = [s for s in settings if s.has("round")]
    return _finish(fig, drawn, style, f"{head}\n{band_name(stat, band)} (shaded){THIN}", out)


def plot_by(
    settings: Sequence[Setting],
    out: str | Path,
    key: str,
    metric: str = "reward",
    x: str = "sim_time",
    stat: str = "mean",
    band: tuple[float, float] = DEFAULT_BAND,
    seed: int = 0,
    title: str | None = None,
    order: Sequence[str] = (),
) -> Path:
    """One panel per value of the config key ``key`` (``"time.network"``, say), in order of first
    appearance: ``metric`` against ``x``, one line and band per setting. A label keeps its colour and
    line style in every panel, so settings labelled alike (one algorithm on several networks) read as
    one; the labels of ``order`` take the colours first, in that order (so a label keeps its colour from
    one figure to the next). Each panel has its own ``x`` scale (:func:`log_x`); all share the ``metric``
    scale."""
    shown, missing = split(settings, x)
    values = [flatten(s.config).get(key) for s in shown]
    groups = list(dict.fromkeys(map(str, values)))
    labels = list(dict.fromkeys(s.label for s in shown))
    style = _styles([*order, *(label for label in labels if label not in order)])
    fig, axes = _grid(1, len(groups), sharex=False)
    for ax, group in zip(axes.flat, groups):
        members = [s for s, v in zip(shown, values) if str(v) == group]
        logx = log_x(members, x)
        format_panel(ax, metric, x, logx, _draw(ax, members, metric, x, logx, style, stat, band, seed))
        ax.set_title(f"{key} = {group}", fontsize="small")
    ymin = min(ax.get_ylim()[0] for ax in axes.flat)
    ymax = max(ax.get_ylim()[1] for ax in axes.flat)
    for col, ax in enumerate(axes.flat):
        ax.set_ylim(ymin, ymax)
        if col:
            ax.set_ylabel("")
    note = band_name(stat, band) + " (shaded)" + (THIN if x != "round" else "")
    if missing:
        note += f"; not shown, {MISSING[x]}: " + ", ".join(s.label for s in missing)
    legend = [next(s for s in shown if s.label == label) for label in labels]
    return _finish(fig, legend, style, f"{title or metric + ' against ' + AXIS_LABELS[x]}\n{note}", out)
