"""Many run files as arrays: settings x trials x rounds x agents, the statistics of the report's figures.

:func:`load` reads run files and groups them into :class:`Setting` objects: runs whose resolved configs
agree on everything but the seed, the number of trials and where they were written are one setting,
and their trials are stacked (a sweep's seeds become trials). Every metric is held as float64 with NaN
where a round was not run (a failed or still running run, or a setting with fewer rounds than another).

Statistics across trials: the mean with the 10th-90th percentile band (the report's convention), or the
interquartile mean with a percentile-bootstrap confidence band (the rliable convention: the mean of the
middle 50 % of trials, robust to outlying trials, with uncertainty from resampling trials).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mpidrl.config import flatten
from mpidrl.store import PER_AGENT, PER_ROUND, Run, RunFileError, read_run

IGNORED_KEYS = ("run.seed", "run.trials", "run.out", "run.log_every")
"""Config keys that do not make a different setting: runs differing only here are pooled."""

STATS = ("mean", "iqm")


class AnalysisError(ValueError):
    """Nothing to analyse, or run files that cannot be read; one line."""


def valid_mask(run: Run) -> np.ndarray:
    """[T, R] True where the run file holds a finished round (the fill values elsewhere are not data)."""
    trials, rounds = run.metrics["reward"].shape[:2]
    done = int(run.attrs.get("trials_done", trials))
    last = int(run.attrs.get("rounds_done", rounds))
    mask = np.zeros((trials, rounds), bool)
    mask[:done] = True
    if done < trials:  # the trial that was running when the file was last written
        mask[done, :last] = True
    return mask


def as_float(run: Run) -> dict[str, np.ndarray]:
    """Every metric of a run as float64, NaN where no round was written."""
    mask = valid_mask(run)
    out = {}
    for name, values in run.metrics.items():
        values = values.astype(np.float64)
        values[~mask] = np.nan  # for [T, R, N] this blanks every agent of a missing round
        out[name] = values
    return out


def _pad(arrays: Sequence[np.ndarray], rounds: int) -> np.ndarray:
    """Stack along trials, padding rounds (axis 1) with NaN to ``rounds``."""
    padded = []
    for a in arrays:
        width = [(0, 0)] * a.ndim
        width[1] = (0, rounds - a.shape[1])
        padded.append(np.pad(a, width, constant_values=np.nan))
    return np.concatenate(padded, axis=0)


@dataclass
class Setting:
    """The runs of one setting with their trials stacked."""

    config: dict[str, Any]
    """resolved config of the first run (seed and output path are those of that run)"""
    paths: list[str]
    """run files, in the order loaded"""
    statuses: list[str]
    """status attribute of each run file"""
    metrics: dict[str, np.ndarray]
    """per-agent metrics [trials, rounds, agents] and per-round metrics [trials, rounds], float64"""
    label: str = ""
    """what tells this setting apart from the others of a collection"""

    @property
    def algo(self) -> str:
        return self.config["algo"]["name"]

    @property
    def n(self) -> int:
        return int(self.config["agents"]["n"])

    @property
    def trials(self) -> int:
        return self.metrics["reward"].shape[0]

    @property
    def rounds(self) -> int:
        return self.metrics["reward"].shape[1]

    def per_trial(self, metric: str) -> np.ndarray:
        """[trials, rounds]: the agent mean of a per-agent metric (silent agents' NaN rewards skipped)."""
        values = self.metrics[metric]
        if values.ndim == 2:
            return values
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rounds stay NaN
            return np.nanmean(values, axis=2)


@dataclass
class Collection:
    """Settings loaded from many run files."""

    settings: list[Setting]
    """one per distinct config (seeds pooled as trials)"""
    skipped: list[str] = field(default_factory=list)
    """files that were not readable mpidrl run files, with the reason"""

    def stack(self, metric: str) -> np.ndarray:
        """[settings, trials, rounds(, agents)] NaN-padded to the largest setting in every axis."""
        arrays = [s.metrics[metric] for s in self.settings]
        shape = tuple(max(a.shape[i] for a in arrays) for i in range(arrays[0].ndim))
        out = np.full((len(arrays), *shape), np.nan)
        for i, a in enumerate(arrays):
            out[(i, *(slice(0, k) for k in a.shape))] = a
        return out


def _setting_key(config: dict[str, Any]) -> str:
    flat = {k: v for k, v in flatten(config).items() if k not in IGNORED_KEYS}
    return json.dumps(flat, sort_keys=True)


def _labels(settings: Sequence[Setting]) -> None:
    flats = [{k: v for k, v in flatten(s.config).items() if k not in IGNORED_KEYS} for s in settings]
    keys = sorted({k for f in flats for k in f})
    differing = [k for k in keys if len({json.dumps(f.get(k)) for f in flats}) > 1]
    for setting, flat in zip(settings, flats):
        parts = [setting.algo] + [f"{k}={json.dumps(flat.get(k))}" for k in differing if k != "algo.name"]
        if len(parts) == 1:
            parts.append(f"n={setting.n} {setting.config['env']['id']}")
        setting.label = " ".join(parts)


def group(runs: Iterable[Run]) -> list[Setting]:
    """Group runs by setting (in order of first appearance) and stack their trials."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(_setting_key(run.config), []).append(run)
    settings = []
    for members in groups.values():
        floats = [as_float(r) for r in members]
        rounds = max(f["reward"].shape[1] for f in floats)
        names = [m for m in (*PER_AGENT, *PER_ROUND) if all(m in f for f in floats)]
        metrics = {m: _pad([f[m] for f in floats], rounds) for m in names}
        settings.append(
            Setting(
                members[0].config, [r.path for r in members], [str(r.attrs.get("status")) for r in members], metrics
            )
        )
    _labels(settings)
    return settings


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run files: the given files, and every ``*.h5`` under the given directories (sorted)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.rglob("*.h5")))
        elif p.exists():
            found.append(p)
        else:
            raise AnalysisError(f"{p}: no such file or directory")
    return found


def load(paths: Iterable[str | Path]) -> Collection:
    """Read run files (or directories of them) into a :class:`Collection`; unreadable files are skipped."""
    runs, skipped = [], []
    first: dict[tuple[str, int], str] = {}
    for path in find_runs(paths):
        try:
            run = read_run(path)
        except RunFileError as exc:
            skipped.append(str(exc))
            continue
        # the same setting and seed gives the same trials: counting them twice would shrink the bands
        key = (_setting_key(run.config), int(run.config["run"]["seed"]))
        if key in first:
            skipped.append(f"{path}: same setting and seed as {first[key]}")
            continue
        first[key] = str(path)
        runs.append(run)
    if not runs:
        where = ", ".join(map(str, paths))
        raise AnalysisError(f"no readable mpidrl run files in {where}" + (f" ({skipped[0]})" if skipped else ""))
    return Collection(group(runs), skipped)


def iqm(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean along ``axis``: the mean of the values left after dropping floor(k/4) from each
    end, k the number of finite values (as scipy.stats.trim_mean(x, 0.25)); NaN where k is 0."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    k = np.isfinite(x).sum(axis=0)
    ordered = np.sort(np.where(np.isfinite(x), x, np.inf), axis=0)  # non-finite values sort last
    cut = k // 4
    rank = np.arange(x.shape[0]).reshape(-1, *([1] * (x.ndim - 1)))
    keep = (rank >= cut) & (rank < k - cut)
    with np.errstate(invalid="ignore"):
        return np.where(keep, ordered, 0.0).sum(axis=0) / np.where(k > 0, keep.sum(axis=0), np.nan)


def iqm_bootstrap(
    x: np.ndarray, samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM across trials (axis 0) and its percentile-bootstrap confidence band: trials are resampled
    with replacement ``samples`` times by a generator seeded with ``seed``."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    boot = np.empty((samples, *x.shape[1:]))
    for start in range(0, samples, 100):  # bounded memory: 100 resamples at a time
        stop = min(samples, start + 100)
        idx = rng.integers(0, x.shape[0], size=(stop - start, x.shape[0]))
        boot[start:stop] = iqm(x[idx], axis=1)
    alpha = 100 * (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(boot, [alpha, 100 - alpha], axis=0)
    return iqm(x), lo, hi


def center_band(per_trial: np.ndarray, stat: str = "mean", seed: int = 0) -> tuple[np.ndarray, ...]:
    """(center, low, high) across trials (axis 0): mean with the 10-90 % band, or IQM with 95 % bootstrap."""
    if stat == "iqm":
        return iqm_bootstrap(per_trial, seed=seed)
    if stat != "mean":
        raise AnalysisError(f"stat: expected one of {', '.join(STATS)}, got {stat!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(per_trial, [10, 90], axis=0)
        return np.nanmean(per_trial, axis=0), lo, hi


def on_time_grid(times: np.ndarray, values: np.ndarray, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Resample each trial's [trials, rounds] values onto one time grid (linear between round ends), so
    trials whose rounds end at different times can be compared at equal times. The grid spans the times
    every trial covers (latest first round to earliest last round), so each point of a curve is a
    statistic of all trials, not of the slowest few; NaN outside a trial's own span."""
    finite = np.isfinite(times) & np.isfinite(values)
    spans = [(times[t, ok][0], times[t, ok][-1]) for t, ok in enumerate(finite) if ok.any()]
    if not spans:
        return np.empty(0), np.empty((times.shape[0], 0))
    start, stop = max(s for s, _ in spans), min(e for _, e in spans)
    if stop <= start:  # trials do not overlap in time: show each where it is
        start, stop = min(s for s, _ in spans), max(e for _, e in spans)
    grid = np.linspace(start, stop, points)
    out = np.full((times.shape[0], points), np.nan)
    for t, ok in enumerate(finite):
        if not ok.any():
            continue
        ts, vs = times[t, ok], values[t, ok]
        inside = (grid >= ts[0]) & (grid <= ts[-1])
        out[t, inside] = np.interp(grid[inside], ts, vs)
    return grid, out


def final_window(rounds: int) -> slice:
    """The rounds whose mean is the final reward: the last 10 % (at least one)."""
    return slice(rounds - max(1, rounds // 10), rounds)


def summary(setting: Setting) -> dict[str, Any]:
    """Per-setting numbers of the report's table and the reward-against-communication figure; per-trial
    values first, then the mean over trials."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reward = np.nanmean(setting.per_trial("reward")[:, final_window(setting.rounds)], axis=1)
        up_msgs = np.nansum(setting.per_trial("uplink_messages"), axis=1)
        up_bytes = np.nansum(setting.per_trial("uplink_bytes"), axis=1)
        wall = np.nanmax(setting.metrics["wall_time"], axis=1)
        row = {
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
            "total_up_bytes_trials": up_bytes,
            "final_reward": float(np.nanmean(reward)),
            "final_reward_p10": float(np.nanpercentile(reward, 10)),
            "final_reward_p90": float(np.nanpercentile(reward, 90)),
            "msgs_per_agent_round": float(np.nanmean(setting.metrics["uplink_messages"])),
            "up_bytes_per_agent_round": float(np.nanmean(setting.metrics["uplink_bytes"])),
            "down_bytes_per_agent_round": float(np.nanmean(setting.metrics["downlink_bytes"])),
            "total_messages_per_agent": float(np.nanmean(up_msgs)),
            "total_up_bytes_per_agent": float(np.nanmean(up_bytes)),
            "wall_time_s": float(np.nanmean(wall)),
        }
    return row


def table(collection: Collection, stat: str = "mean", seed: int = 0) -> str:
    """A Markdown table, one row per setting (``stat="iqm"`` adds the final reward's IQM and 95 % band)."""
    head = (
        "setting | algo | env | n | runs (complete) | trials | rounds | final reward (last 10 %, mean [p10, p90]) "
        "| msgs/agent/round | up B/agent/round | down B/agent/round | up B/agent total | wall s/trial"
    ).split(" | ")
    if stat == "iqm":
        head.insert(8, "final reward IQM [95 % bootstrap]")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in collection.settings:
        r = summary(s)
        robust = ""
        if stat == "iqm":
            center, lo, hi = (float(v[0]) for v in iqm_bootstrap(r["final_reward_trials"][:, None], seed=seed))
            robust = f"| {center:.2f} [{lo:.2f}, {hi:.2f}] "
        lines.append(
            f"| {r['label']} | {r['algo']} | {r['env']} | {r['n']} | {r['runs']} ({r['complete']}) | {r['trials']} "
            f"| {r['rounds']} | {r['final_reward']:.2f} [{r['final_reward_p10']:.2f}, {r['final_reward_p90']:.2f}] "
            f"{robust}| {r['msgs_per_agent_round']:.3f} | {r['up_bytes_per_agent_round']:.1f} "
            f"| {r['down_bytes_per_agent_round']:.1f} | {r['total_up_bytes_per_agent']:.0f} | {r['wall_time_s']:.2f} |"
        )
    return "\n".join(lines)


def report(
    sweep_dirs: str | Path | Sequence[str | Path], out_dir: str | Path | None = None, stat: str = "mean", seed: int = 0
) -> Path:
    """Every figure of one or more sweeps (e.g. one per algorithm, to put them on one page) and
    ``report.md`` (the table and the figures) in ``out_dir`` (default: the first sweep's ``report/``)."""
    from mpidrl import figures

    dirs = [Path(sweep_dirs)] if isinstance(sweep_dirs, (str, Path)) else [Path(d) for d in sweep_dirs]
    for d in dirs:
        if not d.is_dir():
            raise AnalysisError(f"{d}: not a directory")
    sweep_dir = " ".join(map(str, dirs))
    out = Path(out_dir) if out_dir else dirs[0] / "report"
    collection = load(dirs)
    drawn = figures.draw_all(collection, out, stat=stat, seed=seed)
    band = "mean, 10th-90th percentile band" if stat == "mean" else "interquartile mean, 95 % bootstrap band"
    lines = [
        f"# Report of {sweep_dir}",
        "",
        f"{sum(len(s.paths) for s in collection.settings)} run file(s) in {len(collection.settings)} setting(s); "
        f"curves: {band} over trials (seeds pooled as trials).",
        "",
        table(collection, stat, seed),
        "",
    ]
    lines += [f"![{p.stem}]({p.name})" for p in drawn]
    if collection.skipped:
        lines += ["", "Skipped:", *(f"- {s}" for s in collection.skipped)]
    command = f"mpidrl report {sweep_dir}" + (f" -o {out}" if out_dir else "") + f" --stat {stat}"
    lines += ["", f"Made with `{command}`" + (f" (bootstrap seed {seed})." if stat == "iqm" else ".")]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
