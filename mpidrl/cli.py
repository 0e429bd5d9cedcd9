"""The ``mpidrl`` command: run, validate, info, summary, status, watch, plot, eval, sweep, report.

``mpiexec -n 4 mpidrl run CONFIG.toml`` runs an experiment on four ranks; without mpiexec it runs in one
process (what ``run`` does is :func:`mpidrl.api.execute`, shared with the Python API). Every input
problem is one line on stderr and exit status 2, before any work starts and without leaving a file
behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from mpidrl.version import __version__

EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


def _checked(args: argparse.Namespace):
    """The config file and ``--set`` overrides of ``args``, checked (:mod:`mpidrl.validate`)."""
    from mpidrl.api import Refused, checked

    try:
        found = checked(args.config, args.set or [])
    except Refused as exc:
        raise InputError(str(exc)) from None
    for note in found.notes:
        print(f"mpidrl: warning: {note}", file=sys.stderr)
    return found


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = _checked(args).cfg
    print(
        f"{args.config}: valid ({cfg.algo.name} on {cfg.env.id}, {cfg.agents.n} agents, "
        f"{cfg.run.trials} x {cfg.run.rounds} rounds)"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``mpidrl run``: :func:`mpidrl.api.execute`, whose one-line outcome is printed here (rank 0)."""
    from mpidrl.api import Request, execute

    request = Request(args.config, tuple(args.set or ()), args.out, args.overwrite, args.resume)
    outcome = execute(request)
    if outcome.status and outcome.root and outcome.shown:
        prefix = "mpidrl: error: " if outcome.shown == "error" else "mpidrl: "
        print(f"{prefix}{outcome.message}", file=sys.stderr)
    if outcome.status == 0 and outcome.root:
        from mpidrl.report import summary_table
        from mpidrl.store import read_run

        print(summary_table([read_run(outcome.out)]))
    return outcome.status


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


def status_word(path: str) -> str:
    """A run file's status in one word: running, complete, failed, interrupted, stopped (its writer died
    without closing it) or missing (no such file). InputError if it is there but not a run file."""
    from mpidrl.store import SCHEMA, describe_status, open_file

    if not os.path.lexists(path):
        return "missing"
    try:
        with open_file(path) as f:
            attrs = {k: f.attrs[k] for k in f.attrs}
    except (OSError, IsADirectoryError) as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    if attrs.get("schema") != SCHEMA:
        raise InputError(f"{path}: not an mpidrl run file (schema {attrs.get('schema')!r})")
    status = describe_status(attrs)
    return "stopped" if status.startswith("stopped") else status


def cmd_status(args: argparse.Namespace) -> int:
    for path in args.runs:
        print(f"{status_word(path)} {path}", flush=True)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Print the summary of a run file every ``--every`` seconds until it is no longer running."""
    from mpidrl.analysis import AnalysisError, load
    from mpidrl.figures import plot_curves
    from mpidrl.report import progress, summary_table
    from mpidrl.store import RunFileError, read_run

    if not args.every > 0:
        raise InputError(f"--every: must be > 0 seconds, got {args.every}")
    if args.png and Path(args.png).suffix.lower() != ".png":
        raise InputError(f"--png: {args.png} must end in .png")
    run = _runs([args.run])[0]
    clear = sys.stdout.isatty()
    try:
        while True:
            if clear:
                print("\033[H\033[J", end="")
            print(f"{time.strftime('%H:%M:%S')} {args.run}: {progress(run)}")
            print(summary_table([run]), flush=True)
            if args.png:
                try:
                    plot_curves(load([args.run], strict=True).settings, args.png, title=f"{args.run}: {run.status}")
                except AnalysisError as exc:  # no round written yet
                    print(f"--png: not drawn yet ({exc})", flush=True)
            if run.status != "running":
                return 0 if run.status == "complete" else 1
            time.sleep(args.every)
            try:
                run = read_run(args.run)
            except RunFileError as exc:  # replaced or removed while watched
                raise InputError(str(exc)) from None
    except KeyboardInterrupt:
        return 130


def cmd_eval(args: argparse.Namespace) -> int:
    """Play the greedy policy a run file saved for a trial; print its returns, optionally record a video."""
    import numpy as np

    from mpidrl.evaluate import EvalError, check_video, episodes, record, saved_learner

    if args.episodes < 1:
        raise InputError(f"--episodes: must be >= 1, got {args.episodes}")
    try:
        if args.video:
            check_video(Path(args.video))
        saved = saved_learner(args.run, args.trial - 1)
        played = episodes(saved, args.episodes, args.seed)
        video = record(saved, args.video, args.seed) if args.video else None
    except EvalError as exc:
        raise InputError(str(exc)) from None
    cfg = saved.cfg
    if not saved.final:
        print(f"mpidrl: warning: trial {args.trial} did not finish; playing its {saved.where}", file=sys.stderr)
    returns = np.array([ret for _, ret, _ in played])
    print(
        f"{args.run} trial {args.trial}: {cfg.algo.name} on {cfg.env.id}, greedy policy of its {saved.where}\n"
        "| episode | seed | return | steps |\n|---|---|---|---|"
    )
    for k, (seed, ret, steps) in enumerate(played):
        print(f"| {k + 1} | {seed} | {ret:.3f} | {steps} |")
    low, high = returns.min(), returns.max()
    print(f"return over {len(returns)} episode(s): mean {returns.mean():.3f}, min {low:.3f}, max {high:.3f}")
    if video is not None:
        print(f"wrote {args.video} (one episode from seed {args.seed}: return {video[0]:.3f}, {video[1]} steps)")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from mpidrl.analysis import AnalysisError, load
    from mpidrl.figures import plot_curves

    try:
        collection = load(args.runs, strict=True)
        out = plot_curves(
            collection.settings, args.output, args.x, args.stat, seed=args.seed, title=args.title, metrics=args.metrics
        )
    except AnalysisError as exc:
        raise InputError(f"plot: {exc}") from None
    for skipped in collection.skipped:
        print(f"skipped {skipped}")
    print(f"wrote {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from mpidrl.sweep import SweepError, expand, skip_done, submit_command, write

    try:
        sweep = expand(args.spec, args.output)
    except SweepError as exc:
        raise InputError(str(exc)) from None
    for note in sweep.notes:
        print(f"mpidrl: warning: {note}", file=sys.stderr)
    total = len(sweep.tasks)
    settings = total // len(sweep.seeds)
    if args.skip_done:
        sweep = skip_done(sweep)
    files = write(sweep, args.output, args.throttle)
    print(f"{sweep.name}: {settings} setting(s) x {len(sweep.seeds)} seed(s) = {total} tasks")
    if args.skip_done:
        print(f"  {len(sweep.done)} complete, left out; {len(sweep.tasks)} to run")
    if sweep.tasks:
        print(
            f"  task lines: {files['sweep']}\n  submit:     bash {files['submit']}\n"
            f"              ({' '.join(submit_command(sweep, files['sweep'].parent, args.throttle))})\n"
            f"  laptop:     jobs/local/sweep.sh {files['sweep']} -j 2 -n 1"
        )
    print(f"  report:     mpidrl report {files['sweep'].parent}")
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
            choices=("mean", "iqm", "ci"),
            default="mean",
            help="mean with the 10-90 %% band over trials, interquartile mean with a 95 %% bootstrap band, or mean "
            "with its 95 %% confidence interval",
        )
        sp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (--stat iqm)")

    sp = sub.add_parser("summary", help="table of final reward, messages and bytes per agent per round, wall time")
    sp.add_argument("runs", nargs="+", metavar="RUN.h5")
    sp.set_defaults(func=cmd_summary)

    sp = sub.add_parser("status", help="each run file's status in one word (for scripts; exit status 0)")
    sp.add_argument("runs", nargs="+", metavar="RUN.h5")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("watch", help="the summary of a live run, refreshed until it ends")
    sp.add_argument("run", metavar="RUN.h5")
    sp.add_argument("--every", type=float, default=5.0, metavar="S", help="seconds between refreshes (default 5)")
    sp.add_argument("--png", metavar="FIG.png", help="also redraw the figure of mpidrl plot at every refresh")
    sp.set_defaults(func=cmd_watch)

    sp = sub.add_parser("eval", help="play the learned (greedy) policy of a run file; print returns, record a video")
    sp.add_argument("run", metavar="RUN.h5")
    sp.add_argument("--trial", type=int, default=1, metavar="T", help="which trial's policy (1-based; default 1)")
    sp.add_argument("--episodes", type=int, default=10, metavar="N", help="episodes to play (default 10)")
    sp.add_argument("--video", metavar="FILE.mp4|FILE.gif", help="record one episode (needs the video extra)")
    sp.add_argument("--seed", type=int, default=0, metavar="S", help="episode k resets with seed S + k - 1")
    sp.set_defaults(func=cmd_eval)

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
    sp.add_argument(
        "--metrics",
        nargs="+",
        metavar="METRIC",
        help="the panels to draw, in order: any of reward, uplink_messages, uplink_bytes, downlink_bytes, "
        "control_bytes, eval_return, return (undiscounted); default: the first six, those with values",
    )
    sp.add_argument("--title")
    stat_args(sp)
    sp.set_defaults(func=cmd_plot)

    sp = sub.add_parser("sweep", help="expand a sweep spec (grid x seeds) into SLURM array task lines")
    sp.add_argument("spec", metavar="SPEC.toml")
    sp.add_argument("-o", "--output", required=True, metavar="DIR", help="sweep directory (task lines, runs, logs)")
    sp.add_argument("--throttle", type=int, metavar="N", help="at most N array tasks at once (sbatch --array=...%%N)")
    sp.add_argument(
        "--skip-done", action="store_true", help="leave out the tasks whose run file is complete (renumbering the rest)"
    )
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
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
