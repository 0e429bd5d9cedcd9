"""Run files as arrays and the statistics of every table and figure: the one reporting path.

:func:`load` reads run files and groups them into :class:`Setting` objects: runs whose resolved configs
agree on everything but bookkeeping keys (:data:`BOOKKEEPING`: seed, trials, output, logging, message
recording, evaluation, checkpoints, trial batches, agent placement) are one setting, and their trials are
stacked (a sweep's seeds become trials). Every metric is held as float64 with NaN where a round was not
written (:func:`valid_mask`: a failed, interrupted or still running run, or a setting with fewer rounds
than another), so no statistic ever averages the zeros an unwritten integer cell reads as.

Statistics across trials (:func:`center_band`): the mean with a percentile band (10th-90th by default,
the report's convention; the policy-gradient figures use 20th-80th, as the paper), or the interquartile
mean with a percentile-bootstrap confidence band (the rliable convention).

Time axes (:func:`on_grid`): trials end their rounds at different times, so each trial is read as a step
function: at time t its value is that of the last round it finished by t. Before its first round ends a
trial has nothing to show, and after its last round it has ended; both are NaN, so a statistic at t is
over the trials running at t, and a curve runs from the first trial's first round to the slowest trial's
end. Cumulative bytes per agent are resampled the same way.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mpidrl.config import flatten
from mpidrl.store import PER_AGENT, PER_ROUND, Run, RunFileError, read_run

BOOKKEEPING = tuple(
    "run.seed run.trials run.out run.log_every run.record_messages run.eval_every run.eval_episodes "
    "run.checkpoint_every run.trial_batch agents.placement".split()
)
"""Config keys that change what is recorded or how the work is spread, not what is learned: runs that
differ only here are one setting, and labels never name them."""

STATS = ("mean", "iqm", "ci")
DEFAULT_BAND = (10.0, 90.0)
"""Percentiles of the band around the mean (the report's convention)."""
BYTES = ("uplink_bytes", "downlink_bytes", "control_bytes")
"""Every byte an agent's messages carry: payload both ways and the asynchronous protocols' control."""
AXES = ("round", "wall_time", "sim_time", "bytes")
"""Horizontal axes of a curve: round, the two clocks, cumulative bytes per agent (:data:`BYTES`)."""


class AnalysisError(ValueError):
    """Nothing to analyse, run files that cannot be read, or an axis without data; one line."""


def run_script(main: Callable[[], Any]) -> None:
    """Run an analysis script's ``main`` as the CLI runs a command: bad input (a run file that is missing or
    unreadable, a config that does not parse, runs the analysis cannot use) ends the script with one line
    on stderr and exit status 2, not a traceback."""
    from mpidrl.config import ConfigError

    try:
        main()
    except (AnalysisError, RunFileError, ConfigError) as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def valid_mask(run: Run) -> np.ndarray:
    """[T, R] True where the run file holds a finished round (the fill values elsewhere are not data)."""
    trials, rounds = run.metrics["reward"].shape[:2]
    done = int(run.attrs.get("trials_done", trials))
    last = int(run.attrs.get("rounds_done", rounds))
    batch = int(run.config.get("run", {}).get("trial_batch", 1))
    mask = np.zeros((trials, rounds), bool)
    mask[:done] = True
    mask[done : done + batch, :last] = True  # the trial (or batch of trials) running when last written
    if "wall_time" in run.metrics:  # every written round has its time; rounds_done lags when a trial starts
        mask &= np.isfinite(run.metrics["wall_time"])
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


def agent_mean(values: np.ndarray) -> np.ndarray:
    """[T, R] mean over agents of a [T, R, N] metric (silent agents' NaN skipped); [T, R] as it is."""
    if values.ndim == 2:
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rounds stay NaN
        return np.nanmean(values, axis=2)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """[T, R] trailing mean over the last ``window`` rounds (fewer at the start; NaN rounds skipped)."""
    if window <= 1:
        return values
    out = np.empty_like(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for r in range(values.shape[1]):
            out[:, r] = np.nanmean(values[:, max(0, r - window + 1) : r + 1], axis=1)
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
        """[trials, rounds]: the agent mean of a per-agent metric, or a per-round metric as it is."""
        return agent_mean(self.metrics[metric])

    def cumulative_bytes(self) -> np.ndarray:
        """[trials, rounds] bytes per agent (:data:`BYTES`, summed) up to the end of each round."""
        total = sum(self.per_trial(m) for m in BYTES if m in self.metrics)
        return np.cumsum(total, axis=1)  # NaN from the first unwritten round on

    def has(self, x: str) -> bool:
        """Whether the setting has values on axis ``x`` (a simulated clock, say; any written round for
        ``round``: every written round has a wall-clock time)."""
        times = {"round": "wall_time", "wall_time": "wall_time", "sim_time": "sim_time"}
        return bool(np.isfinite(self.cumulative_bytes() if x == "bytes" else self.metrics[times[x]]).any())


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


def in_effect(config: dict[str, Any]) -> dict[str, Any]:
    """The config keys that make a setting: flattened, without :data:`BOOKKEEPING` keys, and without the
    per-agent times of a real clock that does not sleep them (``time.delay_scale`` = 0)."""
    flat = {k: v for k, v in flatten(config).items() if k not in BOOKKEEPING}
    if flat.get("time.mode") == "real" and not flat.get("time.delay_scale"):
        flat = {k: v for k, v in flat.items() if k not in ("time.h", "time.kappa", "time.delay_scale")}
    return flat


def _setting_key(config: dict[str, Any]) -> str:
    return json.dumps(in_effect(config), sort_keys=True)


def _text(value: Any) -> str:
    return value if isinstance(value, str) and " " not in value else json.dumps(value)


SECTIONS = ("run", "env", "agents", "algo", "policy", "optim", "time")
"""Order of the keys in a label: as in a config file."""


def _labels(settings: Sequence[Setting]) -> None:
    """Label each setting by its algorithm, its environment (when the settings have several) and the keys
    that tell it apart from the settings of the same algorithm: keys whose values differ among those
    settings and that are set (not null, not absent) in the setting labelled. Across algorithms, the
    name says it: their parameters and the keys tuned with them are not compared."""
    flats = [in_effect(s.config) for s in settings]
    envs = {f["env.id"] for f in flats}
    for setting, flat in zip(settings, flats):
        peers = [f for f in flats if f["algo.name"] == flat["algo.name"]]
        keys = sorted({k for f in peers for k in f}, key=lambda k: (SECTIONS.index(k.split(".")[0]), k))
        parts = [setting.algo] + ([flat["env.id"]] if len(envs) > 1 else [])
        for k in keys:
            differs = len({json.dumps(f.get(k, "\0absent"), sort_keys=True) for f in peers}) > 1
            if differs and flat.get(k) is not None and k not in ("algo.name", "env.id"):
                parts.append(f"{k}={_text(flat[k])}")
        if len(parts) == 1 and len(settings) == 1:
            parts.append(f"n={setting.n} {setting.config['env']['id']}")
        setting.label = " ".join(parts)
    seen: dict[str, int] = {}
    for setting in settings:  # settings that differ only where neither is set: keep them apart
        seen[setting.label] = seen.get(setting.label, 0) + 1
        if seen[setting.label] > 1:
            setting.label += f" (#{seen[setting.label]})"


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
        statuses = [str(r.attrs.get("status")) for r in members]
        settings.append(Setting(members[0].config, [r.path for r in members], statuses, metrics))
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


def load(paths: Iterable[str | Path], strict: bool = False) -> Collection:
    """Read run files (or directories of them) into a :class:`Collection`; unreadable files are skipped
    (``strict``: refused, for files named one by one)."""
    paths = list(paths)
    runs, skipped = [], []
    first: dict[tuple[str, int], str] = {}
    for path in find_runs(paths):
        try:
            run = read_run(path)
        except RunFileError as exc:
            if strict:
                raise AnalysisError(str(exc)) from None
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
        lo, hi = (np.nanpercentile(boot, q, axis=0) for q in (alpha, 100 - alpha))
    return iqm(x), lo, hi


def mean_interval(x: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean across trials (axis 0) and its Student-t confidence interval, mean +- t s / sqrt(k) over the
    k trials that have a value (NaN where fewer than two do)."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    k = np.isfinite(x).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=0)
        half = stats.t.ppf(0.5 + confidence / 2, np.maximum(k - 1, 1)) * np.nanstd(x, axis=0, ddof=1) / np.sqrt(k)
    half = np.where(k >= 2, half, np.nan)
    return mean, mean - half, mean + half


def center_band(
    per_trial: np.ndarray, stat: str = "mean", band: tuple[float, float] = DEFAULT_BAND, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(center, low, high) across trials (axis 0): the mean with the ``band`` percentiles ("mean"), the IQM
    with its 95 % bootstrap band ("iqm"), or the mean with its 95 % confidence interval ("ci"); NaN trials
    (not running at that point) are left out."""
    if stat == "iqm":
        return iqm_bootstrap(per_trial, seed=seed)
    if stat == "ci":
        return mean_interval(per_trial)
    if stat != "mean":
        raise AnalysisError(f"stat: expected one of {', '.join(STATS)}, got {stat!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = (np.nanpercentile(per_trial, q, axis=0) for q in band)  # one at a time: also for 0 rounds
        return np.nanmean(per_trial, axis=0), lo, hi


def band_name(stat: str = "mean", band: tuple[float, float] = DEFAULT_BAND) -> str:
    """What :func:`center_band` draws, in words: "mean over trials, 10-90 % band"."""
    if stat == "iqm":
        return "IQM over trials, 95 % bootstrap band"
    if stat == "ci":
        return "mean over trials, 95 % confidence interval"
    return f"mean over trials, {band[0]:g}-{band[1]:g} % band"


def trial_ends(times: np.ndarray) -> np.ndarray:
    """[T] the time of each trial's last written round (NaN for a trial without one)."""
    last = np.where(np.isfinite(times), np.arange(times.shape[1]), -1).max(axis=1)
    return np.where(last >= 0, times[np.arange(times.shape[0]), np.maximum(last, 0)], np.nan)


def time_grid(
    times: np.ndarray, points: int = 400, log: bool = False, start: float | None = None, stop: float | None = None
) -> np.ndarray:
    """``points`` times from ``start`` (default: the earliest first round's end) to ``stop`` (default: the
    slowest trial's end), evenly spaced, or geometrically with ``log`` (when ``start`` > 0)."""
    finite = times[np.isfinite(times)]
    if finite.size == 0:
        return np.empty(0)
    start = float(finite.min()) if start is None else start
    stop = float(np.nanmax(trial_ends(times))) if stop is None else stop
    if log and 0 < start < stop:
        return np.geomspace(start, stop, points)
    return np.linspace(start, stop, points)


def on_grid(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """[T, len(grid)]: each trial's value of the last round it finished by each grid time; NaN before its
    first round ends and after its last round (the trial has not started, or has ended).

    ``times`` [T, R] must not decrease along rounds (clocks and cumulative counts do not). Rounds without
    a time (not written) are left out, and so are rounds without a value (an evaluation every k rounds:
    the value at t is that of the last evaluation by t).
    """
    out = np.full((times.shape[0], grid.size), np.nan)
    for t in range(times.shape[0]):
        timed = np.isfinite(times[t])
        ok = timed & np.isfinite(values[t])
        if not ok.any():
            continue
        ts, vs = times[t, ok], values[t, ok]
        idx = np.searchsorted(ts, grid, side="right") - 1
        inside = (idx >= 0) & (grid <= times[t, timed][-1])
        out[t, inside] = vs[idx[inside]]
    return out


def curve(
    setting: Setting, metric: str, x: str = "round", log: bool = False, points: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """(x values, [trials, points]) of a metric's agent mean against ``x`` (one of :data:`AXES`); the
    clocks and cumulative bytes through :func:`on_grid` (``log``: a geometric grid)."""
    values = setting.per_trial(metric)
    if x == "round":
        return np.arange(1, setting.rounds + 1), values
    if x not in AXES:
        raise AnalysisError(f"x: expected one of {', '.join(AXES)}, got {x!r}")
    times = setting.cumulative_bytes() if x == "bytes" else setting.metrics[x]
    grid = time_grid(times, points, log)
    return grid, on_grid(times, values, grid)


def time_to(times: np.ndarray, values: np.ndarray, target: float) -> np.ndarray | float:
    """First time (along the last axis) at which ``values`` reach ``target``; NaN where they never do.

    ``times`` is a grid (1-D) or one time per value ([T, R]: each trial's own first time).
    """
    values = np.asarray(values)
    reached = values >= target  # NaN is never a hit
    first = np.argmax(reached, axis=-1)
    at = np.take_along_axis(np.broadcast_to(times, values.shape), first[..., None], axis=-1)[..., 0]
    out = np.where(reached.any(axis=-1), at, np.nan)
    return float(out) if out.ndim == 0 else out


def final_window(rounds: int) -> slice:
    """The rounds whose mean is the final reward: the last 10 % (at least one)."""
    return slice(rounds - max(1, rounds // 10), rounds)


def final_values(per_trial: np.ndarray, last: int | None = None) -> np.ndarray:
    """[T] each trial's mean over the last ``last`` rounds (default :func:`final_window`); NaN for a
    trial that did not reach them."""
    window = final_window(per_trial.shape[1]) if last is None else slice(-last, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(per_trial[:, window], axis=1)
