"""Reading run files, also while a run is still writing them, and telling whether their writer is alive."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mpidrl.records import MESSAGE_DTYPE
from mpidrl.store.state import Checkpoint, load_checkpoint

SCHEMA = "mpidrl/1"

STATUSES = ("running", "complete", "failed", "interrupted")

HEARTBEAT_EVERY = 10.0
"""Seconds between the writer's heartbeats (the ``heartbeat`` attribute) while a run is going."""
STALE_AFTER = 60.0
"""A run file whose writer is on another host and has not written for this long has lost its writer."""

RETRIES = 5
"""Attempts to read a file that its writer may be flushing at that moment."""


class RunFileError(ValueError):
    """A file that is not a readable mpidrl run file; the message is one line."""


def open_file(path: str | Path, mode: str = "r") -> h5py.File:
    """Open a run file. Writers hold no HDF5 lock (so readers can open a live run); a reader that catches
    the writer mid-flush tries again a moment later."""
    for attempt in range(RETRIES):
        try:
            return h5py.File(path, mode, locking=False)
        except OSError:
            if attempt == RETRIES - 1 or not os.path.exists(path):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def writer_alive(attrs: dict[str, Any], now: float | None = None) -> bool:
    """Whether the process that writes a ``running`` file still does: on this host, its pid exists; on
    another, it wrote a heartbeat less than :data:`STALE_AFTER` seconds ago."""
    host, pid, beat = attrs.get("writer_host", ""), int(attrs.get("writer_pid", 0) or 0), attrs.get("heartbeat")
    if host == socket.gethostname() and pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process: alive
            return True
        return True
    if beat is None:
        return True  # an older file without a heartbeat: cannot tell
    return (now or time.time()) - float(beat) < STALE_AFTER


def describe_status(attrs: dict[str, Any]) -> str:
    """The status of a run file as it is: ``running`` only while its writer is alive."""
    status = str(attrs.get("status", "?"))
    if status != "running" or writer_alive(attrs):
        return status
    beat = attrs.get("heartbeat")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(beat))) if beat is not None else "unknown"
    return f"stopped without closing, last write {when}"


@dataclass
class Run:
    """A run file read into memory."""

    path: str
    attrs: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, np.ndarray]
    diagnostics: dict[str, np.ndarray]

    @property
    def label(self) -> str:
        algo, env, n = self.config["algo"]["name"], self.config["env"]["id"], self.config["agents"]["n"]
        return f"{algo} n={n} {env}"

    @property
    def status(self) -> str:
        """``running`` (its writer is alive), ``complete``, ``failed``, ``interrupted`` or
        ``stopped without closing, last write ...`` (its writer died without closing it)."""
        return describe_status(self.attrs)


def read_run(path: str | Path) -> Run:
    """Load a run file (also one still being written); RunFileError with one line if it is not a
    readable mpidrl run file."""
    path = str(path)
    if not os.path.exists(path):
        raise RunFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise RunFileError(f"{path}: is a directory, not a run file")
    try:
        with open_file(path) as f:
            if f.attrs.get("schema") != SCHEMA:
                raise RunFileError(f"{path}: not an mpidrl run file (schema {f.attrs.get('schema')!r})")
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
            metrics = {name: ds[()] for name, ds in f["metrics"].items()}
            diagnostics = {name: ds[()] for name, ds in f["diagnostics"].items()} if "diagnostics" in f else {}
        # a live run's datasets grow a round at a time: read one after the other, they may differ by a
        # round; keep the rounds every one of them holds
        rounds = min((v.shape[1] for v in (*metrics.values(), *diagnostics.values()) if v.ndim >= 2), default=0)
        metrics = {k: v[:, :rounds] if v.ndim >= 2 else v for k, v in metrics.items()}
        diagnostics = {k: v[:, :rounds] if v.ndim >= 2 else v for k, v in diagnostics.items()}
    except OSError as exc:
        raise RunFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    except KeyError as exc:
        raise RunFileError(f"{path}: incomplete run file (missing {exc})") from None
    try:
        config = json.loads(attrs["config"])
        if not all(isinstance(config.get(s), dict) for s in ("run", "env", "agents", "algo")):
            raise ValueError("sections missing")
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFileError(f"{path}: its config attribute is missing or not a config ({exc})") from None
    return Run(path, attrs, config, metrics, diagnostics)


def read_checkpoint(path: str | Path) -> Checkpoint | None:
    """The newest usable checkpoint of a run file (None if it has none; DamagedState if none is usable)."""
    with open_file(path) as f:
        trials, _, n = f["metrics/reward"].shape
        rounds = int(json.loads(f.attrs["config"])["run"]["rounds"])
        return load_checkpoint(f, trials, rounds, n)[0]


def read_messages(path: str | Path) -> np.ndarray:
    """The /messages table of a run file (empty if messages were not recorded)."""
    with open_file(path) as f:
        return f["messages"][()] if "messages" in f else np.empty(0, MESSAGE_DTYPE)
