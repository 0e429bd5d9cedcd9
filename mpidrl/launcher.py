"""``mpidrl.launch``: an experiment on several ranks started from a notebook or a script.

:func:`launch` runs ``mpiexec -n NP python -m mpidrl run ...`` (what :func:`mpidrl.api.execute` does, on
every rank), copies the ranks' output to a stream as it comes and returns the run file, read. It decides
the run file's name before starting (:func:`planned_output`), so a config left with the default
``run.out`` is found too; a config given as data is written to a temporary TOML file for the ranks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from mpidrl.api import EXIT_BAD_INPUT, RunError, Source, output_path, overrides
from mpidrl.config import ConfigError, from_dict, read_toml, resolve
from mpidrl.store import Run, read_run
from mpidrl.sweep import SweepError, toml_value
from mpidrl.validate import config_data


def to_toml(data: Mapping[str, Any]) -> str:
    """Config sections written as a TOML file."""
    lines = []
    for section, table in data.items():
        if not isinstance(table, Mapping):
            raise RunError(f"config: section {section!r} is not a table", EXIT_BAD_INPUT)
        lines.append(f"[{section}]")
        try:
            lines += [f"{json.dumps(str(key))} = {toml_value(value)}" for key, value in table.items()]
        except SweepError as exc:
            raise RunError(f"config: {section}: {exc}", EXIT_BAD_INPUT) from None
    return "\n".join(lines) + "\n"


def find_mpiexec() -> str:
    """The mpiexec beside this Python (a venv with the MPICH wheel), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise RunError("launch: no mpiexec beside this Python nor on PATH; pass mpiexec=...", EXIT_BAD_INPUT)
    return found


def launch(
    config: Source,
    np: int = 4,
    out: str | Path | None = None,
    set: str | Iterable[str] | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    *,
    mpiexec: str | Sequence[str] | None = None,
    stream: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Run:
    """Run an experiment on ``np`` ranks (``mpiexec -n np python -m mpidrl run ...``) from a notebook or a
    script, show its output as it comes and return its run file, read.

    ``config``, ``out``, ``set`` and ``overwrite`` are those of :func:`run` (a config given as data is
    written to a temporary TOML file). The run file's name is decided here, so it is known whatever the
    config says. ``mpiexec``: the launcher (default: the one beside this Python, else on PATH), a command
    or its words; ``stream``: where the header, progress lines and summary go (default: ``sys.stdout``);
    ``env``: variables added to the ranks' environment (``OMP_NUM_THREADS`` and the like default to 1).
    Raises :class:`RunError` with the one-line error and exit status when the run is refused or fails.
    Interrupting (KeyboardInterrupt) stops the run cleanly at the end of its round, then re-raises.
    """
    if not isinstance(np, int) or isinstance(np, bool) or np < 1:
        raise ValueError(f"np: expected a number of ranks >= 1, got {np!r}")
    sets = overrides(set)
    stream = stream or sys.stdout
    launcher = [mpiexec] if isinstance(mpiexec, str) else list(mpiexec) if mpiexec else [find_mpiexec()]
    with tempfile.TemporaryDirectory(prefix="mpidrl-launch-") as tmp:
        if isinstance(config, str | Path):
            path, data = str(config), None
        else:
            data = config_data(config)
            path = str(Path(tmp) / "config.toml")
            Path(path).write_text(to_toml(data))
        if out is None:
            out = planned_output(config if data is None else data, path if data is None else None, sets)
        cmd = [*launcher, "-n", str(np), sys.executable, "-m", "mpidrl", "run", path]
        cmd += [word for o in sets for word in ("--set", o)]
        cmd += ["--out", str(out)] if out is not None else []
        cmd += ["--overwrite"] if overwrite else []
        threads = dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"), "1")
        status, lines = _stream(cmd, {**threads, **os.environ, **(env or {})}, stream)
    if status:
        raise RunError(_error_line(lines, status), status)
    return read_run(out)


def planned_output(config: Source, path: str | None, sets: Sequence[str]) -> Path | None:
    """The run file ``mpidrl run`` would choose for this config, decided before it starts (None: the config
    does not load; the run will refuse it with one line)."""
    try:
        data = read_toml(path) if path is not None else config_data(config)
        cfg = from_dict(resolve(data, sets))
    except ConfigError:
        return None
    return output_path(cfg, None, path)


def _stream(cmd: list[str], env: Mapping[str, str], stream: IO[str]) -> tuple[int, list[str]]:
    """Run ``cmd``, copying its output (stdout and stderr, as they come) to ``stream``; its exit status and
    the lines it printed."""
    lines: list[str] = []
    # a session of its own: the interrupt reaches the ranks once, through mpiexec, and a kill reaches them all
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env, start_new_session=True
    )
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            stream.write(line)
            stream.flush()
        return proc.wait(), lines
    except KeyboardInterrupt:  # stop the ranks cleanly (a checkpoint), then let the caller see the interrupt
        proc.send_signal(signal.SIGINT)
        try:
            for line in proc.stdout:
                stream.write(line)
            proc.wait(timeout=120)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):  # a second interrupt, or no clean stop
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    finally:
        proc.stdout.close()


def _error_line(lines: list[str], status: int) -> str:
    """The one line that says why a launched run ended with ``status``."""
    for prefix in ("mpidrl: error: ", "mpidrl: "):
        said = [line.removeprefix(prefix) for line in lines if line.startswith(prefix) and "warning:" not in line]
        if said:
            return said[-1]
    last = [line for line in lines if line.strip()]
    return last[-1] if last else f"mpiexec exited with status {status}"
