"""The ``mpidrl`` command: run, validate, info, summary, plot, sweep, report.

``mpiexec -n 4 mpidrl run CONFIG.toml`` runs an experiment on four ranks; without mpiexec it runs in one
process. Every input problem is one line on stderr and exit status 2, before any work starts and
without leaving a file behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from pathlib import Path

from mpidrl import __version__

EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


def _checked(args: argparse.Namespace, node_share: float = 1.0):
    """The config file and ``--set`` overrides of ``args``, checked (:mod:`mpidrl.validate`)."""
    from mpidrl.config import ConfigError
    from mpidrl.validate import load_checked

    try:
        return load_checked(args.config, args.set or [], node_share)
    except ConfigError as exc:
        raise InputError(str(exc)) from None


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse an output path that exists (without --overwrite), is being written by a live run, or cannot
    be written."""
    from mpidrl.store import RunFileError, refuse_live

    if path.is_dir():
        raise InputError(f"run.out: {path} is a directory")
    if path.exists() and not overwrite:
        raise InputError(f"run.out: {path} exists; pass --overwrite to replace it")
    if path.exists():
        try:
            refuse_live(path)
        except RunFileError as exc:
            raise InputError(f"run.out: {exc}") from None
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"run.out: cannot create directory {parent} ({exc.strerror})") from None
    try:  # a real write: permission bits say nothing to root, nor about read-only file systems
        probe = tempfile.NamedTemporaryFile(dir=parent, prefix=".mpidrl-probe-")
        probe.close()
    except OSError as exc:
        raise InputError(f"run.out: cannot write in {parent} ({exc.strerror})") from None


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = _checked(args).cfg
    print(
        f"{args.config}: valid ({cfg.algo.name} on {cfg.env.id}, {cfg.agents.n} agents, "
        f"{cfg.run.trials} x {cfg.run.rounds} rounds)"
    )
    return 0


RESUMABLE_KEYS = {"run.out", "run.log_every", "run.checkpoint_every"}
"""Config keys that may differ between a run file and the config given with ``--resume``."""


def _resume_config(args: argparse.Namespace, node_share: float = 1.0):
    """The config of the run file given to --resume, checked against the config and --set given.

    ``--set run.rounds=N`` with N larger than the run's extends it (a complete run too); any other
    difference is refused, naming the first key that differs.
    """
    from mpidrl.config import ConfigError, apply_overrides, flatten, from_dict, read_toml
    from mpidrl.store import RunFileError, describe_status, read_run
    from mpidrl.validate import check

    path = Path(args.resume)
    if args.out and Path(args.out).resolve() != path.resolve():
        raise InputError(f"--out: a resumed run continues in {path}; leave --out out")
    try:
        run = read_run(path)
    except RunFileError as exc:
        raise InputError(f"--resume: {exc}") from None
    status = describe_status(run.attrs)
    if status == "running":
        raise InputError(
            f"--resume: {path} is being written by process {run.attrs.get('writer_pid')} on "
            f"{run.attrs.get('writer_host')}; not touching a live run"
        )
    try:
        stored = from_dict(run.config)
        base = read_toml(args.config) if args.config else run.config
        given = from_dict(apply_overrides(base, args.set or []))
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    extended = given.run.rounds > stored.run.rounds
    if given.run.rounds < stored.run.rounds:
        raise InputError(
            f"--resume: run.rounds can grow ({stored.run.rounds} in {path}), not shrink to {given.run.rounds}"
        )
    if status == "complete" and not extended:
        raise InputError(f"--resume: {path} is complete; nothing to resume (--set run.rounds=N extends it)")
    a, b = flatten(stored.to_dict()), flatten(given.to_dict())
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k) and k not in {*RESUMABLE_KEYS, "run.rounds"})
    if differ:
        k = differ[0]
        raise InputError(
            f"--resume: config differs from {path} at {k} ({a.get(k)!r} in the file, {b.get(k)!r} given)"
            + (f" and {len(differ) - 1} more key(s)" if len(differ) > 1 else "")
        )
    kept = [f"run.{k}={getattr(given.run, k)}" for k in ("log_every", "checkpoint_every", "rounds")]
    try:
        return check(from_dict(apply_overrides(run.config, kept)), node_share)
    except ConfigError as exc:
        raise InputError(str(exc)) from None


def _set_up(args: argparse.Namespace, node_share: float) -> tuple:
    """Rank 0: check everything before any work starts; the outcome every rank acts on:
    ("ok", (config, environment spec), out) or ("error", one line, exit status)."""
    try:
        if args.resume:
            checked = _resume_config(args, node_share)
            out = Path(args.resume)
        else:
            if not args.config:
                raise InputError("run: give a CONFIG.toml (or --resume RUN.h5)")
            checked = _checked(args, node_share)
            out = Path(args.out or checked.cfg.run.out)
            check_output(out, args.overwrite)
        return "ok", (checked.cfg.to_dict(), checked.env_spec), str(out)
    except InputError as exc:
        return "error", str(exc), EXIT_BAD_INPUT
    except Exception as exc:  # whatever a check raised: one line, and every rank ends (no rank waits)
        return "error", f"{type(exc).__name__}: {exc}".splitlines()[0], 1


def cmd_run(args: argparse.Namespace) -> int:
    from mpidrl.comm import Control, PeerFailed
    from mpidrl.comm.runtime import Runtime
    from mpidrl.comm.slurm import world_size_mismatch
    from mpidrl.signals import REQUEST, StopNow

    rt = Runtime()
    mismatch = world_size_mismatch(rt.size, os.environ)
    if mismatch:  # every copy says so: each is rank 0 of its own world
        print(f"mpidrl: error: {mismatch}", file=sys.stderr)
        return EXIT_BAD_INPUT
    node_share = rt.node_share()
    status, payload, out = rt.share(_set_up(args, node_share) if rt.is_root else None)
    if status == "error":
        if rt.is_root:
            print(f"mpidrl: error: {payload}", file=sys.stderr)
        return out
    stop = Control.STOP if REQUEST.signum else Control.CONTINUE
    if rt.control(stop) & Control.STOP:  # a signal came during start-up: nothing was written
        if rt.is_root:
            print("mpidrl: stopped by a signal before the run started; nothing written", file=sys.stderr)
        return REQUEST.exit_status

    from mpidrl.config import from_dict
    from mpidrl.run import Experiment, Interrupted, StartError
    from mpidrl.store import WriteError

    try:
        data, env_spec = payload
        cfg = from_dict(data)
        Experiment(cfg, env_spec, out, rt, overwrite=args.overwrite).run(resume=bool(args.resume))
    except (Interrupted, StopNow):
        return REQUEST.exit_status
    except StartError as exc:
        if rt.is_root:
            print(f"mpidrl: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except WriteError as exc:  # rank 0 cannot write the run file: one line, and the whole job ends
        print(f"mpidrl: error: {exc}", file=sys.stderr)
        if rt.size > 1:
            rt.abort(1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # HDF5 would try to write the broken file once more at exit, and crash
    except PeerFailed as exc:  # the failing rank printed its traceback; the run file now says "failed"
        sys.stderr.write(f"mpidrl: {exc}; ending the job\n")
        rt.acknowledge_failure(exc.rank)
        rt.abort(1)
        return 1
    except BaseException:  # any failure on any rank ends the whole job, not just this rank
        sys.stderr.write(f"mpidrl: rank {rt.rank}/{rt.size} failed:\n{traceback.format_exc()}")
        if rt.size > 1:
            rt.report_failure(traceback.format_exc(limit=1).strip().splitlines()[-1], timeout=5.0)
            rt.abort(1)
        return 1
    if rt.is_root:
        from mpidrl.report import summary_table
        from mpidrl.store import read_run

        print(summary_table([read_run(out)]))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import numpy

    from mpidrl.comm.runtime import Runtime, library_version, mpi4py_version

    rt = Runtime()
    if rt.is_root:
        print(
            f"mpidrl {__version__}\nPython {platform.python_version()}\nnumpy {numpy.__version__}\n"
            f"mpi4py {mpi4py_version()}\nMPI library: {library_version()}\nworld size: {rt.size}"
        )
    return 0


def _runs(paths: list[str]):
    from mpidrl.store import RunFileError, read_run

    try:
        return [read_run(p) for p in paths]
    except RunFileError as exc:
        raise InputError(str(exc)) from None


def cmd_summary(args: argparse.Namespace) -> int:
    from mpidrl.report import summary_table

    print(summary_table(_runs(args.runs)))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from mpidrl.analysis import AnalysisError, load
    from mpidrl.figures import plot_curves

    try:
        collection = load(args.runs, strict=True)
        out = plot_curves(collection.settings, args.output, x=args.x, stat=args.stat, seed=args.seed, title=args.title)
    except AnalysisError as exc:
        raise InputError(f"plot: {exc}") from None
    for skipped in collection.skipped:
        print(f"skipped {skipped}")
    print(f"wrote {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from mpidrl.sweep import SweepError, expand, submit_command, write

    try:
        sweep = expand(args.spec, args.output)
    except SweepError as exc:
        raise InputError(str(exc)) from None
    files = write(sweep, args.output, args.throttle)
    settings = len(sweep.tasks) // len(sweep.seeds)
    print(
        f"{sweep.name}: {settings} setting(s) x {len(sweep.seeds)} seed(s) = {len(sweep.tasks)} tasks\n"
        f"  task lines: {files['sweep']}\n  submit:     bash {files['submit']}\n"
        f"              ({' '.join(submit_command(sweep, files['sweep'].parent, args.throttle))})\n"
        f"  laptop:     jobs/local/sweep.sh {files['sweep']} -j 2 -n 1\n"
        f"  report:     mpidrl report {files['sweep'].parent}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mpidrl.analysis import AnalysisError
    from mpidrl.report import report

    try:
        out = report(args.sweep_dirs, args.output, stat=args.stat, seed=args.seed)
    except AnalysisError as exc:
        raise InputError(str(exc)) from None
    print(f"wrote {out} and {out.with_suffix('.csv')}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mpidrl", description="Communication-efficient distributed RL on MPI.")
    p.add_argument("--version", action="version", version=f"mpidrl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def config_args(sp: argparse.ArgumentParser, optional: bool = False) -> None:
        sp.add_argument("config", nargs="?" if optional else None, help="TOML experiment config")
        sp.add_argument(
            "--set",
            action="append",
            metavar="SECTION.KEY=VALUE",
            help="override a config value (TOML syntax; repeatable)",
        )

    sp = sub.add_parser("run", help="run an experiment (under mpiexec for several ranks)")
    config_args(sp, optional=True)
    sp.add_argument("--out", help="run file to write (default: run.out of the config)")
    sp.add_argument("--overwrite", action="store_true", help="replace an existing run file")
    sp.add_argument("--resume", metavar="RUN.h5", help="continue an interrupted run from its checkpoint")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("validate", help="check a config without running it")
    config_args(sp)
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("info", help="versions, MPI library and world size")
    sp.set_defaults(func=cmd_info)

    def stat_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--stat",
            choices=("mean", "iqm"),
            default="mean",
            help="mean with the 10-90 %% band over trials, or interquartile mean with a 95 %% bootstrap band",
        )
        sp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (--stat iqm)")

    sp = sub.add_parser("summary", help="table of final reward, messages and bytes per agent per round, wall time")
    sp.add_argument("runs", nargs="+", metavar="RUN.h5")
    sp.set_defaults(func=cmd_summary)

    sp = sub.add_parser(
        "plot",
        help="reward, messages and bytes per agent (and control bytes, evaluation return) with bands over trials",
    )
    sp.add_argument("runs", nargs="+", metavar="RUN.h5")
    sp.add_argument("-o", "--output", required=True, metavar="FIG.png")
    sp.add_argument(
        "--x",
        choices=("round", "wall_time", "sim_time"),
        default="round",
        help="horizontal axis (a clock spanning more than two decades is drawn logarithmic)",
    )
    sp.add_argument("--title")
    stat_args(sp)
    sp.set_defaults(func=cmd_plot)

    sp = sub.add_parser("sweep", help="expand a sweep spec (grid x seeds) into SLURM array task lines")
    sp.add_argument("spec", metavar="SPEC.toml")
    sp.add_argument("-o", "--output", required=True, metavar="DIR", help="sweep directory (task lines, runs, logs)")
    sp.add_argument("--throttle", type=int, metavar="N", help="at most N array tasks at once (sbatch --array=...%%N)")
    sp.set_defaults(func=cmd_sweep)

    sp = sub.add_parser("report", help="figures, a Markdown and a CSV table of every run file under the directories")
    sp.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR")
    sp.add_argument("-o", "--output", metavar="DIR", help="where to write (default: the first SWEEP_DIR/report)")
    stat_args(sp)
    sp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    from mpidrl import signals

    try:
        args = parser().parse_args(argv)
        if args.func is cmd_run:
            signals.install()  # before anything else: a signal at any moment stops the run cleanly
        return args.func(args)
    except InputError as exc:
        print(f"mpidrl: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except signals.StopNow:
        return signals.REQUEST.exit_status
