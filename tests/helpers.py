"""Shared test helpers: run mpidrl (or any module) under mpiexec with a timeout, small configs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
MPIEXEC = str(BIN / "mpiexec")
ROOT = Path(__file__).resolve().parents[1]


def mpirun(
    nprocs: int, args: list[str], timeout: float = 120, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m mpidrl ARGS`` on ``nprocs`` ranks; a deadlock fails the test after ``timeout`` s."""
    cmd = [MPIEXEC, "-n", str(nprocs), sys.executable, "-m", "mpidrl", *args]
    return _run(cmd, timeout, check, env)


def mpidrl(
    args: list[str], timeout: float = 120, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m mpidrl ARGS`` in one process, without mpiexec."""
    return _run([sys.executable, "-m", "mpidrl", *args], timeout, check, env)


def _run(cmd: list[str], timeout: float, check: bool, env: dict[str, str] | None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    # a session of its own: a timeout kills mpiexec and every rank, not mpiexec alone (orphaned ranks
    # of a hung job would otherwise spin on for the rest of the suite)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=full_env, start_new_session=True
    ) as popen:
        try:
            stdout, stderr = popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            stdout, stderr = popen.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout, stdout, stderr) from None
    proc = subprocess.CompletedProcess(cmd, popen.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def write_config(path: Path, text: str) -> Path:
    """Write a TOML config for a test and return its path."""
    path.write_text(text)
    return path
