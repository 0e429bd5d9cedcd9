"""Sweeps: a base config, a grid over config keys and a list of seeds, expanded into one task per run.

A sweep spec is a TOML file::

    [sweep]
    name = "es-agents"                  # job name and label (default: the spec file's stem)
    config = "../configs/default.toml"  # base config, relative to the spec file
    seeds = [1, 2, 3]                   # one task per seed and setting
    set = ["run.rounds=20"]             # overrides applied to every task (optional)

    [grid]                              # the settings: the Cartesian product of these lists
    "agents.n" = [10, 50]
    "algo.sigma" = [0.05, 0.1]
    batch = [{"algo.M" = 20, "algo.M_init" = 20}, {"algo.M" = 50, "algo.M_init" = 50}]

A grid entry whose name has no dot and whose values are tables ties keys together: each table is one
value of the entry and sets all its keys (``batch`` above: M and M_init move together, two values, not
four).

    [slurm]                             # optional: options of the array job written to submit.sh
    ntasks = 2
    cpus_per_task = 1
    time = "00:30:00"
    throttle = 4                        # at most this many array tasks at once (sbatch --array=...%4)
    options = ["--overcommit"]

:func:`expand` checks every task's config in full and returns the tasks; :func:`write` puts them in a
directory: ``sweep.txt`` (one line per task, the arguments of ``mpidrl run``: config, ``--set``
overrides, ``--out``; line k is array task k), ``sweep.json`` (the same as data), ``submit.sh`` (the
sbatch command of the array job), ``logs/`` and ``runs/`` (one directory per setting, one file per seed).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpidrl.config import ConfigError, flatten, read_toml

if TYPE_CHECKING:
    from mpidrl.envs import EnvSpec


class SweepError(ValueError):
    """A sweep spec that cannot be expanded; the message is one line."""


SWEEP_KEYS = ("name", "config", "seeds", "set")
SLURM_KEYS = ("ntasks", "cpus_per_task", "time", "throttle", "options")
RESERVED = ("run.seed", "run.out")
"""Keys the sweep sets itself: the seed of each task and its unique output path."""


@dataclass(frozen=True)
class Task:
    """One run of a sweep: array task ``index``."""

    index: int
    """array task id (line ``index + 1`` of sweep.txt)"""
    setting: int
    """index of the grid point"""
    values: dict[str, Any]
    """the grid point: dotted config key -> value"""
    seed: int
    """run.seed of this task"""
    config: str
    """absolute path of the base config"""
    overrides: list[str]
    """``--set`` arguments, in order: the spec's fixed ones, the grid point, the seed"""
    out: str
    """absolute path of the run file, unique per task"""

    def args(self) -> list[str]:
        """Arguments of ``mpidrl run`` for this task."""
        sets = [word for o in self.overrides for word in ("--set", o)]
        return [self.config, *sets, "--out", self.out]


@dataclass
class Sweep:
    """An expanded sweep spec."""

    name: str
    """job name"""
    spec: str
    """absolute path of the spec file"""
    grid: dict[str, list[Any]]
    """dotted key -> values, in spec order"""
    seeds: list[int]
    """seeds of every setting"""
    tasks: list[Task]
    """settings x seeds, seed varying fastest"""
    slurm: dict[str, Any] = field(default_factory=dict)
    """the spec's [slurm] table"""
    notes: list[str] = field(default_factory=list)
    """warnings of loading the settings' configs (e.g. keys an algorithm switch dropped), one per setting"""
    done: list[str] = field(default_factory=list)
    """run files of tasks left out because they are complete (``--skip-done``)"""


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (the right-hand side of ``--set key=value``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string uses the same escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise SweepError(f"cannot write {value!r} ({type(value).__name__}) as a TOML value")


def _slug(values: Mapping[str, Any]) -> str:
    text = "_".join(f"{k}={toml_value(v)}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-")[:80]


def _check_unknown(table: Mapping[str, Any], allowed: tuple[str, ...], section: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise SweepError(f"[{section}] {unknown[0]}: unknown key; allowed keys are {', '.join(allowed)}")


def read_spec(path: str | Path) -> dict[str, Any]:
    """Read a sweep spec, every failure one SweepError line."""
    try:
        data = read_toml(path, "sweep spec")
    except ConfigError as exc:
        raise SweepError(str(exc)) from None
    _check_unknown(data, ("sweep", "grid", "slurm"), "top level")
    if not isinstance(data.get("sweep"), Mapping):
        raise SweepError(f"{path}: missing the [sweep] table (config, seeds)")
    return data


def _grid(data: Mapping[str, Any]) -> dict[str, list[Any]]:
    grid = flatten(data.get("grid", {}))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"[grid] {key}: expected a non-empty list of values, got {values!r}")
        if "." not in key and all(isinstance(v, Mapping) for v in values):
            _tied(key, values)
            continue
        if "." not in key:
            raise SweepError(
                f"[grid] {key}: expected a dotted config key such as agents.n, or a list of tables of "
                "dotted keys set together"
            )
        if key in RESERVED:
            raise SweepError(f"[grid] {key}: set by the sweep itself (use [sweep] seeds for seeds)")
    keys = [k for key, values in grid.items() for k in (values[0] if "." not in key else [key])]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise SweepError(f"[grid] {repeated[0]}: set by more than one grid entry")
    return grid


def _tied(name: str, values: list[Mapping[str, Any]]) -> None:
    """Check a grid entry of tied keys: every value a table of the same dotted config keys."""
    keys = list(flatten(values[0]))
    for value in values:
        found = list(flatten(value))
        if not found or sorted(found) != sorted(keys):
            raise SweepError(f"[grid] {name}: every table must set the same keys, got {found} and {keys}")
    for key in keys:
        if "." not in key:
            raise SweepError(f"[grid] {name}: {key}: expected a dotted config key such as algo.M")
        if key in RESERVED:
            raise SweepError(f"[grid] {name}: {key} is set by the sweep itself")


def _point(grid: Mapping[str, list[Any]], point: tuple[Any, ...]) -> dict[str, Any]:
    """The config keys and values of one grid point, tied entries spread into their keys."""
    values: dict[str, Any] = {}
    for key, value in zip(grid, point):
        values.update(flatten(value) if "." not in key else {key: value})
    return values


def _seeds(sweep: Mapping[str, Any]) -> list[int]:
    seeds = sweep.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise SweepError(f"[sweep] seeds: expected a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"[sweep] seeds: repeated seed in {seeds} (tasks would be identical)")
    return seeds


def _fixed(sweep: Mapping[str, Any]) -> list[str]:
    fixed = sweep.get("set", [])
    if not isinstance(fixed, list) or not all(isinstance(s, str) for s in fixed):
        raise SweepError(f"[sweep] set: expected a list of 'section.key=value' strings, got {fixed!r}")
    for item in fixed:
        if item.partition("=")[0].strip() in RESERVED:
            raise SweepError(f"[sweep] set: {item!r} is set by the sweep itself (seeds and output paths)")
    return fixed


def _slurm(data: Mapping[str, Any]) -> dict[str, Any]:
    slurm = data.get("slurm", {})
    if not isinstance(slurm, Mapping):
        raise SweepError("[slurm]: expected a table")
    _check_unknown(slurm, SLURM_KEYS, "slurm")
    for key in ("ntasks", "cpus_per_task", "throttle"):
        if key in slurm and not (isinstance(slurm[key], int) and not isinstance(slurm[key], bool) and slurm[key] >= 1):
            raise SweepError(f"[slurm] {key}: expected an integer >= 1, got {slurm[key]!r}")
    if "options" in slurm and not all(isinstance(o, str) for o in slurm["options"]):
        raise SweepError("[slurm] options: expected a list of sbatch options")
    return dict(slurm)


def check_task(task: Task, env_spec: EnvSpec | None = None, notes: list[str] | None = None) -> EnvSpec:
    """Validate a task's config as ``mpidrl run`` would; returns the environment's spec.

    A known ``env_spec`` (another seed of the same setting: the seed cannot change what the environment
    check finds) skips building the environment again. Warnings of loading the config go to ``notes``.
    """
    from mpidrl.config import ConfigError, load
    from mpidrl.validate import check

    try:
        return check(load(task.config, task.overrides, notes), env_spec=env_spec).env_spec
    except ConfigError as exc:
        point = ", ".join(f"{k}={toml_value(v)}" for k, v in task.values.items()) or "no grid"
        raise SweepError(f"task {task.index} ({point}, seed {task.seed}): {exc}") from None


def expand(spec_path: str | Path, out_dir: str | Path) -> Sweep:
    """Expand a sweep spec into its tasks (settings x seeds), each checked; outputs go under ``out_dir``."""
    spec_path = Path(spec_path).resolve()
    data = read_spec(spec_path)
    sweep = data["sweep"]
    _check_unknown(sweep, SWEEP_KEYS, "sweep")
    if not isinstance(sweep.get("config"), str):
        raise SweepError("[sweep] config: expected the path of the base config (relative to the spec file)")
    config = (spec_path.parent / sweep["config"]).resolve()
    if not config.is_file():
        raise SweepError(f"[sweep] config: {config} is not a file")
    name = sweep.get("name", spec_path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise SweepError(f"[sweep] name: expected letters, digits, '.', '_' or '-', got {name!r}")
    grid, seeds, fixed, slurm = _grid(data), _seeds(sweep), _fixed(sweep), _slurm(data)
    runs = Path(out_dir).resolve() / "runs"
    tasks: list[Task] = []
    for setting, point in enumerate(itertools.product(*grid.values())):
        values = _point(grid, point)
        folder = f"s{setting:03d}" + (f"_{_slug(values)}" if values else "")
        for seed in seeds:
            overrides = [*fixed, *(f"{k}={toml_value(v)}" for k, v in values.items()), f"run.seed={seed}"]
            out = str(runs / folder / f"seed{seed}.h5")
            tasks.append(Task(len(tasks), setting, values, seed, str(config), overrides, out))
    outs = [t.out for t in tasks]
    assert len(set(outs)) == len(outs), "output paths must be unique per task"
    envs: dict[int, EnvSpec] = {}  # setting -> its environment, built once per setting
    notes: list[str] = []
    for task in tasks:
        found: list[str] = []
        envs[task.setting] = check_task(task, envs.get(task.setting), found)
        if task.seed == seeds[0]:  # the seed changes no warning: one per setting
            notes += [f"setting s{task.setting:03d}: {note}" for note in found]
    return Sweep(name, str(spec_path), grid, seeds, tasks, slurm, notes)


def complete(path: str | Path) -> bool:
    """Whether ``path`` is a run file that says it is complete."""
    from mpidrl.store import SCHEMA, open_file

    try:
        with open_file(path) as f:
            return f.attrs.get("schema") == SCHEMA and f.attrs.get("status") == "complete"
    except OSError:
        return False


def skip_done(sweep: Sweep) -> Sweep:
    """The sweep without the tasks whose run file is complete; the others renumbered 0, 1, ... (array task
    k is line k + 1 of sweep.txt)."""
    left = [t for t in sweep.tasks if not complete(t.out)]
    done = [t.out for t in sweep.tasks if t not in left]
    tasks = [dataclasses.replace(t, index=k) for k, t in enumerate(left)]
    return dataclasses.replace(sweep, tasks=tasks, done=sweep.done + done)


def jobs_dir() -> Path:
    """The repository's jobs/ directory (an editable install), else the relative path ``jobs``."""
    root = Path(__file__).resolve().parents[1] / "jobs"
    return root if root.is_dir() else Path("jobs")


def submit_command(sweep: Sweep, out_dir: Path, throttle: int | None = None) -> list[str]:
    """The sbatch command of the sweep's array job."""
    slurm = sweep.slurm
    limit = throttle or slurm.get("throttle")
    array = f"0-{len(sweep.tasks) - 1}" + (f"%{limit}" if limit else "")
    cmd = ["sbatch", f"--job-name={sweep.name}", f"--array={array}", f"--output={out_dir / 'logs'}/%x_%A_%a.out"]
    for key in ("ntasks", "cpus_per_task", "time"):
        if key in slurm:
            cmd.append(f"--{key.replace('_', '-')}={slurm[key]}")
    cmd += list(slurm.get("options", []))
    return [*cmd, str(jobs_dir() / "slurm" / "sweep.sbatch"), str(out_dir / "sweep.txt")]


def write(sweep: Sweep, out_dir: str | Path, throttle: int | None = None) -> dict[str, Path]:
    """Write sweep.txt, sweep.json, submit.sh and the logs/ and runs/ directories; return the files."""
    out_dir = Path(out_dir).resolve()
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    for task in sweep.tasks:
        Path(task.out).parent.mkdir(parents=True, exist_ok=True)
    files = {"sweep": out_dir / "sweep.txt", "manifest": out_dir / "sweep.json", "submit": out_dir / "submit.sh"}
    files["sweep"].write_text("".join(shlex.join(t.args()) + "\n" for t in sweep.tasks))
    manifest = {**asdict(sweep), "tasks": [{**asdict(t), "args": t.args()} for t in sweep.tasks]}
    files["manifest"].write_text(json.dumps(manifest, indent=1) + "\n")
    if sweep.tasks:
        command = _with_extra(submit_command(sweep, out_dir, throttle))
    else:
        command = f'echo "sweep {sweep.name}: every task is complete; nothing to submit" >&2'
    files["submit"].write_text(
        "#!/bin/bash\n"
        f"# Submit sweep {sweep.name} ({len(sweep.tasks)} tasks) as one SLURM array job.\n"
        "# Extra sbatch options go after the script name: bash submit.sh --partition=short --account=xyz\n"
        "set -euo pipefail\n"
        f"{command}\n"
    )
    files["submit"].chmod(0o755)
    return files


def _with_extra(cmd: list[str]) -> str:
    """``sbatch OPTIONS "$@" SCRIPT SWEEP``: options given to submit.sh go before the batch script."""
    return shlex.join(cmd[:-2]) + ' "$@" ' + shlex.join(cmd[-2:])
