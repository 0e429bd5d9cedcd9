"""The HDF5 run file, schema "mpidrl/1", written by rank 0 as rounds finish.

Layout (T trials, R rounds, N agents)::

    /                         attributes: schema, config (JSON), versions, world_size, n_agents, seed,
                              git_sha, created, slurm_job_id, slurm_array_job_id, slurm_array_task_id,
                              status, rounds_done, trials_done
    /metrics/<name>           [T, R, N] per agent, or [T, R]; chunked, growing along R
                              (control_messages / control_bytes: the asynchronous protocols' control
                              traffic per agent, both directions, apart from the payload; 0 otherwise;
                              rank: the MPI rank that ran the agent's round)
    /diagnostics/<name>       [T, R, N] algorithm diagnostics (ESPC utility, p_comm, ...), if record_messages
    /messages                 compound [M] one row per message, if record_messages (chunked, gzip)
    /checkpoint               slots a and b, each with attributes trial, round, wall_time, sim_time and
                              datasets learner/<key>, workers/<key> (rows = agents): the state to
                              resume exactly before ``round``; attribute ``current`` names the
                              complete slot (the other may be half-written by a killed job)

Rows not yet written read as NaN (floats) or 0 (integers). By default every round is written and
flushed at once. With ``flush_every > 0`` rounds are queued in memory and written as one block per
dataset at least every ``flush_every`` seconds, at the end of each trial and on :meth:`RunWriter.flush`
(a per-round write costs milliseconds, more than a whole grid-world round); a job that dies then keeps
every round written before its last ``flush_every`` seconds; ``status`` says whether the run is still ``running``, or
ended ``complete``, ``failed`` or ``interrupted``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mpidrl.records import MESSAGE_DTYPE, PER_AGENT, PER_ROUND

SCHEMA = "mpidrl/1"

STATUSES = ("running", "complete", "failed", "interrupted")


class RunFileError(ValueError):
    """A file that is not a readable mpidrl run file."""


def _fill(dtype: Any) -> Any:
    return np.nan if np.issubdtype(dtype, np.floating) else 0


def _chunk_rounds(n: int) -> int:
    return max(1, min(64, 65536 // max(n, 1)))


@dataclass
class Checkpoint:
    """Everything needed to continue a run exactly before round ``round`` of trial ``trial``."""

    trial: int
    round: int
    wall_time: float
    """wall-clock seconds the trial had run when the checkpoint was taken"""
    sim_time: float
    """simulated clock at the checkpoint (NaN in real mode)"""
    learner: dict[str, np.ndarray]
    workers: dict[str, np.ndarray]
    """per-agent worker state, leading axis = agent"""


class RunWriter:
    """Creates a run file and appends rounds to it; :meth:`reopen` continues an existing one."""

    def __init__(
        self,
        path: str | Path,
        attrs: Mapping[str, Any],
        trials: int,
        n: int,
        diagnostics: Sequence[str] = (),
        record_messages: bool = False,
        flush_every: float = 0.0,
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
        self._datasets = {  # names are unique across the two groups
            name: ds
            for group in ("metrics", "diagnostics")
            if group in self.file
            for name, ds in self.file[group].items()
        }
        self._rows = rows
        self._pending: list[tuple[range, int, Sequence[Mapping[str, Any]]]] = []
        self.flush_every = flush_every
        """seconds between writes to the file (0: every round; a dying job loses at most this much)"""
        self.file.flush()
        self._flushed = time.monotonic()

    @classmethod
    def reopen(cls, path: str | Path, flush_every: float = 0.0) -> RunWriter:
        """Open an existing run file to continue writing it (``--resume``)."""
        self = cls.__new__(cls)
        self.path = Path(path)
        self.file = h5py.File(self.path, "r+")
        self.trials, _, self.n = self.file["metrics/reward"].shape
        self.diagnostics = tuple(self.file["diagnostics"]) if "diagnostics" in self.file else ()
        self.messages = self.file["messages"] if "messages" in self.file else None
        self._datasets = {
            name: ds
            for group in ("metrics", "diagnostics")
            if group in self.file
            for name, ds in self.file[group].items()
        }
        self._rows = self.file["metrics/reward"].chunks[1]
        self._pending = []
        self.flush_every = flush_every
        self._flushed = time.monotonic()
        self.file.attrs["status"] = "running"
        return self

    def write_checkpoint(self, ckpt: Checkpoint) -> None:
        """Store ``ckpt`` in the slot of /checkpoint not in use, then point ``current`` at it.

        Two slots, ``a`` and ``b``, each overwritten in place (the file does not grow): a job killed while
        a checkpoint is being written leaves the previous one whole and current.
        """
        self.flush()  # the rounds before the checkpoint are on disk before the checkpoint says so
        group = self.file.require_group("checkpoint")
        slot = "b" if group.attrs.get("current") == "a" else "a"
        target = group.require_group(slot)
        for part in ("learner", "workers"):
            sub = target.require_group(part)
            state = getattr(ckpt, part)
            for key in set(_datasets(sub)) - set(state):
                del sub[key]
            for key, value in state.items():
                value = np.asarray(value)
                if key in sub and sub[key].shape == value.shape and sub[key].dtype == value.dtype:
                    sub[key][...] = value
                else:
                    if key in sub:
                        del sub[key]
                    sub.create_dataset(key, data=value)
        for name in ("trial", "round", "wall_time", "sim_time"):
            target.attrs[name] = getattr(ckpt, name)
        self.file.flush()
        group.attrs["current"] = slot
        for name in ("trial", "round", "wall_time", "sim_time"):  # a summary of the current slot
            group.attrs[name] = getattr(ckpt, name)
        self.file.flush()

    def truncate_messages(self, trial: int, round: int, batch: int = 1) -> None:
        """Drop /messages rows that are about to be run again: rounds at or after ``round`` of the
        ``batch`` trials run together from ``trial``, and every row of later trials."""
        if self.messages is None or self.messages.shape[0] == 0:
            return
        rows = self.messages[()]
        keep = (rows["trial"] < trial) | ((rows["trial"] < trial + batch) & (rows["round"] < round))
        self.messages.resize(int(keep.sum()), axis=0)
        if keep.sum():
            self.messages[:] = rows[keep]

    def write_round(self, trial: int, round: int, values: Mapping[str, Any]) -> None:
        """Queue one round's metrics (names of /metrics or /diagnostics); written at the next flush."""
        self.write_rounds(range(trial, trial + 1), round, [values])

    def write_rounds(self, trials: range, round: int, values: Sequence[Mapping[str, Any]]) -> None:
        """Queue one round of consecutive trials run together (``values[b]``: trial ``trials[b]``'s)."""
        if self._pending and self._pending[-1][0] != trials:
            self.flush()
        self._pending.append((trials, round, values))
        if len(self._pending) >= self._rows or time.monotonic() - self._flushed >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write the queued rounds of the current trials as one block per dataset, then flush the file."""
        if self._pending:
            trials = self._pending[0][0]
            first, last = self._pending[0][1], self._pending[-1][1]
            block = slice(first, last + 1)
            for name, ds in self._datasets.items():
                if ds.shape[1] <= last:
                    ds.resize(last + 1, axis=1)
                cells = [(r - first, b, v.get(name)) for _, r, values in self._pending for b, v in enumerate(values)]
                if all(cell is None for *_, cell in cells):
                    continue
                data = np.full((len(trials), last + 1 - first, *ds.shape[2:]), _fill(ds.dtype), dtype=ds.dtype)
                for r, b, cell in cells:
                    if cell is not None:
                        data[b, r] = cell
                ds[trials.start : trials.stop, block] = data
            self.file.attrs["rounds_done"] = last + 1
            self._pending.clear()
        self.file.flush()
        self._flushed = time.monotonic()

    def log_messages(self, rows: np.ndarray) -> None:
        """Append rows of MESSAGE_DTYPE to /messages (only when record_messages is on)."""
        if self.messages is None or rows.size == 0:
            return
        start = self.messages.shape[0]
        self.messages.resize(start + rows.size, axis=0)
        self.messages[start:] = rows

    def end_trial(self, trial: int) -> None:
        self.flush()
        self.file.attrs["trials_done"] = trial + 1
        self.file.flush()

    def set_status(self, status: str) -> None:
        assert status in STATUSES, status
        self.flush()
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


def _datasets(group: h5py.Group) -> dict[str, np.ndarray]:
    """Every dataset below ``group`` by its path relative to it (keys with "/" are nested groups)."""
    out: dict[str, np.ndarray] = {}
    group.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def read_checkpoint(path: str | Path) -> Checkpoint | None:
    """The checkpoint of a run file, or None if it has none."""
    with h5py.File(path, "r") as f:
        if "checkpoint" not in f or "current" not in f["checkpoint"].attrs:
            return None
        g = f["checkpoint"][f["checkpoint"].attrs["current"]]
        parts = {p: _datasets(g[p]) if p in g else {} for p in ("learner", "workers")}
        return Checkpoint(
            int(g.attrs["trial"]),
            int(g.attrs["round"]),
            float(g.attrs["wall_time"]),
            float(g.attrs["sim_time"]),
            **parts,
        )


def read_messages(path: str | Path) -> np.ndarray:
    """The /messages table of a run file (empty if messages were not recorded)."""
    with h5py.File(path, "r") as f:
        return f["messages"][()] if "messages" in f else np.empty(0, MESSAGE_DTYPE)
