"""The HDF5 run file, schema "mpidrl/1", written by rank 0 as rounds finish.

Layout (T trials, R rounds, N agents)::

    /                         attributes: schema, config (JSON), versions, world_size, n_agents, seed,
                              git_sha, created, slurm_job_id, slurm_array_task_id, status, rounds_done,
                              trials_done
    /metrics/<name>           [T, R, N] per agent, or [T, R]; chunked, growing along R
                              (control_messages / control_bytes: the asynchronous protocols' control
                              traffic per agent, both directions, apart from the payload; 0 otherwise)
    /diagnostics/<name>       [T, R, N] algorithm diagnostics (ESPC utility, p_comm, ...), if record_messages
    /messages                 compound [M] one row per message, if record_messages (chunked, gzip)

Rows not yet written read as NaN (floats) or 0 (integers). The file is flushed after every round so a
job that dies keeps every completed round; ``status`` says whether the run is still ``running``, or
ended ``complete``, ``failed`` or ``interrupted``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

SCHEMA = "mpidrl/1"

PER_AGENT = {
    "reward": np.float64,
    "return": np.float64,
    "episodes": np.int32,
    "steps": np.int64,
    "uplink_messages": np.int32,
    "uplink_bytes": np.int64,
    "downlink_bytes": np.int64,
    "control_messages": np.int32,
    "control_bytes": np.int64,
}
"""Per-agent metrics: name -> dtype, shape [T, R, N]."""

PER_ROUND = {
    "wall_time": np.float64,
    "sim_time": np.float64,
    "eval_return": np.float64,
}
"""Per-round metrics: name -> dtype, shape [T, R]."""

DIRECTIONS = ("uplink", "downlink")

MESSAGE_DTYPE = np.dtype(
    [
        ("trial", np.int32),
        ("round", np.int32),
        ("agent", np.int32),
        ("direction", h5py.enum_dtype({d: i for i, d in enumerate(DIRECTIONS)}, basetype=np.uint8)),
        ("kind", "S16"),
        ("nbytes", np.int64),
        ("time", np.float64),
    ]
)
"""One row of /messages."""

STATUSES = ("running", "complete", "failed", "interrupted")


class RunFileError(ValueError):
    """A file that is not a readable mpidrl run file."""


def _fill(dtype: Any) -> Any:
    return np.nan if np.issubdtype(dtype, np.floating) else 0


def _chunk_rounds(n: int) -> int:
    return max(1, min(64, 65536 // max(n, 1)))


class RunWriter:
    """Creates a run file and appends rounds to it."""

    def __init__(
        self,
        path: str | Path,
        attrs: Mapping[str, Any],
        trials: int,
        n: int,
        diagnostics: Sequence[str] = (),
        record_messages: bool = False,
    ):
        self.path = Path(path)
        self.file = h5py.File(self.path, "w")
        self.trials, self.n = trials, n
        self.file.attrs["schema"] = SCHEMA
        for key, value in attrs.items():
            self.file.attrs[key] = value
        self.file.attrs["status"] = "running"
        self.file.attrs["rounds_done"] = 0
        self.file.attrs["trials_done"] = 0
        rows = _chunk_rounds(n)
        metrics = self.file.create_group("metrics")
        for name, dtype in PER_AGENT.items():
            metrics.create_dataset(
                name,
                shape=(trials, 0, n),
                maxshape=(trials, None, n),
                dtype=dtype,
                chunks=(1, rows, n),
                fillvalue=_fill(dtype),
            )
        for name, dtype in PER_ROUND.items():
            metrics.create_dataset(
                name, shape=(trials, 0), maxshape=(trials, None), dtype=dtype, chunks=(1, 256), fillvalue=_fill(dtype)
            )
        self.diagnostics = tuple(diagnostics) if record_messages else ()
        if self.diagnostics:
            group = self.file.create_group("diagnostics")
            for name in self.diagnostics:
                group.create_dataset(
                    name,
                    shape=(trials, 0, n),
                    maxshape=(trials, None, n),
                    dtype=np.float64,
                    chunks=(1, rows, n),
                    fillvalue=np.nan,
                )
        self.messages = None
        if record_messages:
            self.messages = self.file.create_dataset(
                "messages",
                shape=(0,),
                maxshape=(None,),
                dtype=MESSAGE_DTYPE,
                chunks=(4096,),
                compression="gzip",
                shuffle=True,
            )
        self.file.flush()

    def write_round(self, trial: int, round: int, values: Mapping[str, Any]) -> None:
        """Store one round's metrics (names of /metrics or /diagnostics) and flush."""
        for group in ("metrics", "diagnostics"):
            if group not in self.file:
                continue
            for name, ds in self.file[group].items():
                if ds.shape[1] <= round:
                    ds.resize(round + 1, axis=1)
                if name in values:
                    ds[trial, round] = values[name]
        self.file.attrs["rounds_done"] = round + 1
        self.file.flush()

    def log_messages(self, rows: np.ndarray) -> None:
        """Append rows of MESSAGE_DTYPE to /messages (only when record_messages is on)."""
        if self.messages is None or rows.size == 0:
            return
        start = self.messages.shape[0]
        self.messages.resize(start + rows.size, axis=0)
        self.messages[start:] = rows

    def end_trial(self, trial: int) -> None:
        self.file.attrs["trials_done"] = trial + 1
        self.file.flush()

    def set_status(self, status: str) -> None:
        assert status in STATUSES, status
        self.file.attrs["status"] = status
        self.file.flush()

    def close(self, status: str | None = None) -> None:
        if status is not None:
            self.set_status(status)
        self.file.close()


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


def read_run(path: str | Path) -> Run:
    """Load a run file; RunFileError with one line if it is not a readable mpidrl/1 file."""
    path = str(path)
    if not os.path.exists(path):
        raise RunFileError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("schema") != SCHEMA:
                raise RunFileError(f"{path}: not an mpidrl run file (schema {f.attrs.get('schema')!r})")
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            metrics = {name: ds[()] for name, ds in f["metrics"].items()}
            diagnostics = {name: ds[()] for name, ds in f["diagnostics"].items()} if "diagnostics" in f else {}
    except OSError as exc:
        raise RunFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    except KeyError as exc:
        raise RunFileError(f"{path}: incomplete run file (missing {exc})") from None
    return Run(path, attrs, json.loads(attrs["config"]), metrics, diagnostics)


def read_messages(path: str | Path) -> np.ndarray:
    """The /messages table of a run file (empty if messages were not recorded)."""
    with h5py.File(path, "r") as f:
        return f["messages"][()] if "messages" in f else np.empty(0, MESSAGE_DTYPE)
