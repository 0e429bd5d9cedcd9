"""The Python API: run an experiment from Python, launch one under mpiexec (:mod:`mpidrl.launcher`), load
a run file.

::

    import mpidrl

    run = mpidrl.run("configs/default.toml", set=["run.rounds=20"], out="results/es.h5")  # in this process
    run = mpidrl.launch("configs/default.toml", np=4)  # mpiexec -n 4 python -m mpidrl run ..., progress shown
    run = mpidrl.load("results/es.h5")  # any run file, also a live one (mpidrl.store.read_run)

:func:`execute` is ``mpidrl run`` itself: the command line and :func:`run` both go through it, so a run
from Python gets the same checks on rank 0 before any work starts (:mod:`mpidrl.validate`, the output
checks of :func:`check_output`), the same :class:`~mpidrl.run.Experiment` and the same handling of
failures and signals on every rank. A refused or failed run raises :class:`RunError`, whose message is
the one line ``mpidrl run`` would print and whose ``status`` is its exit status.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpidrl import signals
from mpidrl.config import Config, ConfigError, RunConfig, apply_overrides, flatten, from_dict
from mpidrl.store import Run, RunFileError, describe_status, read_run, refuse_live
from mpidrl.sweep import SweepError, toml_value
from mpidrl.validate import Checked, check, config_data, load_checked

if TYPE_CHECKING:
    from mpidrl.comm.runtime import Runtime

EXIT_BAD_INPUT = 2

DEFAULT_OUT = RunConfig.out
"""``run.out`` left at this default (and no ``--out``): the run file gets a name of its own (:func:`unique_out`)."""

RESUMABLE_KEYS = {"run.out", "run.log_every", "run.checkpoint_every"}
"""Config keys that may differ between a run file and the config given with ``--resume``."""

Source = str | Path | Mapping[str, Any] | Config
"""A config: a TOML file, its sections as a dict, or a :class:`~mpidrl.config.Config`."""


class RunError(Exception):
    """A run that was refused or failed: the message is one line, ``status`` the exit status ``mpidrl run``
    had (2: bad input, found before any work started; 1: a failure; 128 + N: stopped by signal N)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class Refused(Exception):
    """Bad input found by the checks before a run: one line, exit status 2."""


@dataclass(frozen=True)
class Request:
    """What ``mpidrl run`` is asked to do."""

    config: Source | None
    """the config (None with ``resume``: the run file's own)"""
    overrides: tuple[str, ...] = ()
    """``--set section.key=value`` arguments"""
    out: str | None = None
    """the run file (None: ``run.out``, or a name of its own when that is left at its default)"""
    overwrite: bool = False
    """replace an existing run file (never one whose writer is alive)"""
    resume: str | None = None
    """continue this run file from its checkpoint"""


@dataclass(frozen=True)
class Outcome:
    """How a run ended, on every rank."""

    status: int
    """the exit status of ``mpidrl run``: 0 done, 2 bad input, 1 failure, 128 + N stopped by signal N"""
    message: str = ""
    """the one-line reason when ``status`` is not 0"""
    out: Path | None = None
    """the run file (known once the checks passed)"""
    root: bool = True
    """whether this process is rank 0 (the one that prints and returns the run)"""
    shown: str = "error"
    """how ``mpidrl run`` shows ``message``: "error" (``mpidrl: error: ...``), "note" (``mpidrl: ...``) or
    "" (already said: a traceback, a write error, the progress line of a stop)"""


def unique_out(stem: str, directory: str | Path = Path(DEFAULT_OUT).parent, now: float | None = None) -> Path:
    """``DIRECTORY/STEM_YYYYmmdd-HHMMSS.h5`` (local time), with ``-2``, ``-3``, ... added if that exists."""
    base = f"{stem}_{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    path, k = Path(directory) / f"{base}.h5", 2
    while path.exists():
        path, k = Path(directory) / f"{base}-{k}.h5", k + 1
    return path


def output_path(cfg: Config, out: str | Path | None, config: Source | None) -> Path:
    """Where a run writes: ``out``, else ``run.out``; when that is the default, ``results/<config file's
    stem>_<time>.h5`` (``run_<time>`` for a config given as data), so that runs do not collide."""
    if out:
        return Path(out)
    if cfg.run.out != DEFAULT_OUT:
        return Path(cfg.run.out)
    return unique_out(Path(config).stem if isinstance(config, str | Path) else "run")


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse an output path that exists (without ``overwrite``), is being written by a live run, or cannot
    be written."""
    if path.is_dir():
        raise Refused(f"run.out: {path} is a directory")
    if path.exists() and not overwrite:
        raise Refused(f"run.out: {path} exists; pass --overwrite to replace it")
    if path.exists():
        try:
            refuse_live(path)
        except RunFileError as exc:
            raise Refused(f"run.out: {exc}") from None
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Refused(f"run.out: cannot create directory {parent} ({exc.strerror})") from None
    try:  # a real write: permission bits say nothing to root, nor about read-only file systems
        probe = tempfile.NamedTemporaryFile(dir=parent, prefix=".mpidrl-probe-")
        probe.close()
    except OSError as exc:
        raise Refused(f"run.out: cannot write in {parent} ({exc.strerror})") from None


def checked(config: Source | None, overrides: Iterable[str] = (), node_share: float = 1.0) -> Checked:
    """A config with overrides, checked in full (:func:`mpidrl.validate.load_checked`); Refused if bad."""
    try:
        return load_checked(config, overrides, node_share)
    except ConfigError as exc:
        raise Refused(str(exc)) from None


def resume_config(request: Request, node_share: float = 1.0) -> Checked:
    """The config of the run file given to --resume, checked against the config and --set given.

    ``--set run.rounds=N`` with N larger than the run's extends it (a complete run too); any other
    difference is refused, naming the first key that differs.
    """
    path = Path(request.resume)
    if request.out and Path(request.out).resolve() != path.resolve():
        raise Refused(f"--out: a resumed run continues in {path}; leave --out out")
    try:
        run = read_run(path)
    except RunFileError as exc:
        raise Refused(f"--resume: {exc}") from None
    status = describe_status(run.attrs)
    if status == "running":
        raise Refused(
            f"--resume: {path} is being written by process {run.attrs.get('writer_pid')} on "
            f"{run.attrs.get('writer_host')}; not touching a live run"
        )
    try:
        stored = from_dict(run.config)
        base = config_data(request.config) if request.config is not None else run.config
        given = from_dict(apply_overrides(base, request.overrides))
    except ConfigError as exc:
        raise Refused(str(exc)) from None
    extended = given.run.rounds > stored.run.rounds
    if given.run.rounds < stored.run.rounds:
        raise Refused(
            f"--resume: run.rounds can grow ({stored.run.rounds} in {path}), not shrink to {given.run.rounds}"
        )
    if status == "complete" and not extended:
        raise Refused(f"--resume: {path} is complete; nothing to resume (--set run.rounds=N extends it)")
    a, b = flatten(stored.to_dict()), flatten(given.to_dict())
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k) and k not in {*RESUMABLE_KEYS, "run.rounds"})
    if differ:
        k = differ[0]
        raise Refused(
            f"--resume: config differs from {path} at {k} ({a.get(k)!r} in the file, {b.get(k)!r} given)"
            + (f" and {len(differ) - 1} more key(s)" if len(differ) > 1 else "")
        )
    kept = [f"run.{k}={getattr(given.run, k)}" for k in ("log_every", "checkpoint_every", "rounds")]
    try:
        return check(from_dict(apply_overrides(run.config, kept)), node_share)
    except ConfigError as exc:
        raise Refused(str(exc)) from None


def prepare(request: Request, world_size: int = 1, node_share: float = 1.0) -> tuple:
    """Rank 0: check everything before any work starts; the outcome every rank acts on:
    ("ok", (config, environment spec), run file, warnings) or ("error", one line, exit status, [])."""
    try:
        if request.resume:
            found = resume_config(request, node_share)
            out = Path(request.resume)
        else:
            if request.config is None:
                raise Refused("run: give a CONFIG.toml (or --resume RUN.h5)")
            found = checked(request.config, request.overrides, node_share)
            out = output_path(found.cfg, request.out, request.config)
            check_output(out, request.overwrite)
        notes = list(found.notes)
        n = found.cfg.agents.n
        if world_size > n:
            notes.append(f"{world_size} ranks for {n} agent(s): {world_size - n} rank(s) will have no agent to run")
        return "ok", (found.cfg.to_dict(), found.env_spec), str(out), notes
    except Refused as exc:
        return "error", str(exc), EXIT_BAD_INPUT, []
    except Exception as exc:  # whatever a check raised: one line, and every rank ends (no rank waits)
        return "error", f"{type(exc).__name__}: {exc}".splitlines()[0], 1, []


def execute(request: Request, rt: Runtime | None = None, hard_exit: bool = True) -> Outcome:
    """``mpidrl run`` on every rank of ``rt`` (default: the world): rank 0 checks, every rank acts on its
    verdict, the experiment runs. Tracebacks and warnings are printed here; the one-line reason of a
    refusal or failure is returned. ``hard_exit``: end the process when the run file cannot be written
    (HDF5 would otherwise try to write the broken file once more at exit, and crash)."""
    from mpidrl.comm import Control, PeerFailed
    from mpidrl.comm.runtime import Runtime
    from mpidrl.comm.slurm import world_size_mismatch
    from mpidrl.signals import REQUEST, StopNow

    rt = rt or Runtime()
    mismatch = world_size_mismatch(rt.size, os.environ)
    if mismatch:  # every copy says so: each is rank 0 of its own world
        return Outcome(EXIT_BAD_INPUT, mismatch)
    node_share = rt.node_share()
    verdict, payload, where, notes = rt.share(prepare(request, rt.size, node_share) if rt.is_root else None)
    if verdict == "error":  # payload: the one line, where: the exit status
        return Outcome(where, payload, None, rt.is_root)
    if rt.is_root:
        for note in notes:
            print(f"mpidrl: warning: {note}", file=sys.stderr, flush=True)
    out = Path(where)
    stop = Control.STOP if REQUEST.signum else Control.CONTINUE
    if rt.control(stop) & Control.STOP:  # a signal came during start-up: nothing was written
        text = "stopped by a signal before the run started; nothing written"
        return Outcome(REQUEST.exit_status, text, None, rt.is_root, "note")

    from mpidrl.run import Experiment, Interrupted, StartError
    from mpidrl.store import WriteError

    try:
        data, env_spec = payload
        Experiment(from_dict(data), env_spec, out, rt, overwrite=request.overwrite).run(resume=bool(request.resume))
    except (Interrupted, StopNow) as exc:
        text = f"{exc}; continue with: mpidrl run --resume {out}"
        return Outcome(REQUEST.exit_status, text, out, rt.is_root, "")
    except StartError as exc:
        return Outcome(EXIT_BAD_INPUT, str(exc), None, rt.is_root)
    except WriteError as exc:  # rank 0 cannot write the run file: one line, and the whole job ends
        print(f"mpidrl: error: {exc}", file=sys.stderr)
        if rt.size > 1:
            rt.abort(1)
        if hard_exit:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return Outcome(1, str(exc), out, rt.is_root, "")
    except PeerFailed as exc:  # the failing rank printed its traceback; the run file now says "failed"
        sys.stderr.write(f"mpidrl: {exc}; ending the job\n")
        rt.acknowledge_failure(exc.rank)
        rt.abort(1)
        return Outcome(1, str(exc), out, rt.is_root, "")
    except BaseException:  # any failure on any rank ends the whole job, not just this rank
        sys.stderr.write(f"mpidrl: rank {rt.rank}/{rt.size} failed:\n{traceback.format_exc()}")
        if rt.size > 1:
            rt.report_failure(traceback.format_exc(limit=1).strip().splitlines()[-1], timeout=5.0)
            rt.abort(1)
        return Outcome(1, traceback.format_exc().strip().splitlines()[-1], out, rt.is_root, "")
    return Outcome(0, "", out, rt.is_root)


def overrides(set: str | Iterable[str] | Mapping[str, Any] | None) -> tuple[str, ...]:
    """``set=`` of :func:`run` and :func:`launch` as ``--set`` arguments: a ``"section.key=value"`` string,
    several, or a mapping of dotted keys to values."""
    if set is None:
        return ()
    if isinstance(set, str):
        return (set,)
    if isinstance(set, Mapping):
        try:
            return tuple(f"{key}={toml_value(value)}" for key, value in set.items())
        except SweepError as exc:
            raise RunError(f"set: {exc}", EXIT_BAD_INPUT) from None
    return tuple(set)


def run(
    config: Source,
    out: str | Path | None = None,
    set: str | Iterable[str] | Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Run | None:
    """Run an experiment as ``mpidrl run`` does and return its run file, read (:class:`mpidrl.store.Run`).

    ``config``: a TOML file, its sections as a dict (``{"run": {"rounds": 20}, "agents": {"n": 4}}``) or a
    :class:`~mpidrl.config.Config`; ``set``: ``--set`` overrides (``"run.rounds=20"``, a list of them, or
    ``{"run.rounds": 20}``); ``out``: the run file (default: ``run.out``, or ``results/<stem>_<time>.h5``
    when that is left at its default); ``overwrite``: replace an existing run file.

    Outside ``mpiexec`` the run is one process, learner and every agent. Inside ``mpiexec -n K python
    script.py`` it is collective: every rank calls it with the same arguments, rank 0 returns the run and
    the other ranks return None. SIGINT and SIGTERM stop the run cleanly at the end of a round while it
    goes (the previous handlers are put back afterwards). Raises :class:`RunError` (one line, with the
    exit status ``mpidrl run`` would have had) when the run is refused, fails or is stopped.
    """
    request = Request(config, overrides(set), None if out is None else str(out), overwrite)
    with signals.handled():
        outcome = execute(request, hard_exit=False)
    if outcome.status:
        raise RunError(outcome.message or f"mpidrl run ended with exit status {outcome.status}", outcome.status)
    return read_run(outcome.out) if outcome.root else None


def load(path: str | Path) -> Run:
    """A run file read into memory (:func:`mpidrl.store.read_run`), also one still being written."""
    return read_run(path)
