"""Writing a run file: created under a temporary name and published whole, rounds flushed on a timer, a
heartbeat, the status, checkpoints and final states. Rank 0 alone writes.

Thread-safe: the experiment writes rounds from its main thread while a monitor thread
(:class:`mpidrl.run.Monitor`) calls :meth:`RunWriter.tick` to flush queued rounds and beat the heart
whatever the main thread is doing, and marks the file failed when another rank fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mpidrl.records import MESSAGE_DTYPE, PER_AGENT, PER_ROUND
from mpidrl.store import state
from mpidrl.store.reader import HEARTBEAT_EVERY, SCHEMA, STATUSES, RunFileError, describe_status, open_file


class WriteError(OSError):
    """The run file cannot be written (a full disk, a lost file system); the message is one line."""


@contextlib.contextmanager
def writing(path: Path, writer: RunWriter | None = None) -> Iterator[None]:
    """Turn HDF5's many-line write errors into one :class:`WriteError` line naming the file (and remember
    on ``writer`` that its file is broken)."""
    try:
        yield
    except WriteError:
        raise
    except (OSError, RuntimeError) as exc:
        text = str(exc)
        if isinstance(exc, RuntimeError) and "errno" not in text and "write failed" not in text:
            raise  # not the file system's complaint
        found = re.search(r"error message = '([^']*)'", text)
        reason = found[1] if found else text.splitlines()[0] if text else type(exc).__name__
        error = WriteError(f"{path}: cannot write the run file ({reason})")
        if writer is not None:
            writer.broken = error
        raise error from None


def _fill(dtype: Any) -> Any:
    return np.nan if np.issubdtype(dtype, np.floating) else 0


def _chunk_rounds(n: int) -> int:
    return max(1, min(64, 65536 // max(n, 1)))


def refuse_live(path: Path) -> None:
    """Raise RunFileError if ``path`` is a run file another process is still writing."""
    try:
        with open_file(path) as f:
            attrs = {k: f.attrs[k] for k in ("status", "writer_host", "writer_pid", "heartbeat") if k in f.attrs}
    except OSError:
        return  # not a readable HDF5 file: nobody is writing it as a run
    if describe_status(attrs) == "running":
        raise RunFileError(
            f"{path} is being written by process {attrs.get('writer_pid', '?')} on {attrs.get('writer_host', '?')}; "
            "not touching a live run"
        )


def partial_name(path: Path) -> Path:
    """The temporary name a new run file is built under, beside its final name."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


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
        overwrite: bool = False,
    ):
        """A new run file at ``path``, built under a temporary name and moved into place only once whole:
        a start that fails leaves nothing behind, and an existing file is replaced (``overwrite``) only if
        no process is still writing it."""
        path = Path(path)
        tmp = partial_name(path)
        file = None
        try:
            with writing(path):
                file = h5py.File(tmp, "w", locking=False)
                _layout(file, attrs, trials, n, diagnostics if record_messages else (), record_messages)
                self._attach(file, path, flush_every)
                file.flush()
            _publish(tmp, path, overwrite)
        except BaseException:
            if file is not None and file.id.valid:
                with contextlib.suppress(Exception):
                    file.close()
            tmp.unlink(missing_ok=True)
            raise
        self.created = True
        """this writer made the file (a start that fails before any data is written removes it)"""

    def _attach(self, file: h5py.File, path: Path, flush_every: float) -> None:
        self.file, self.path, self.flush_every = file, path, flush_every
        """seconds between writes of queued rounds (a dying job loses at most this much)"""
        self.lock = threading.RLock()
        self.trials, _, self.n = file["metrics/reward"].shape
        self.messages = file["messages"] if "messages" in file else None
        self._datasets = {  # names are unique across the two groups
            name: ds for group in ("metrics", "diagnostics") if group in file for name, ds in file[group].items()
        }
        self._rows = file["metrics/reward"].chunks[1]
        self._pending: list[tuple[range, int, Sequence[Mapping[str, Any]]]] = []
        self._flushed = self._beat = time.monotonic()
        self.created = False
        self.data_written = False
        """rounds or a checkpoint are in the file"""
        self.broken: WriteError | None = None
        """the first write that failed (the monitor thread stops trying; the experiment reports it)"""
        file.attrs["writer_host"] = socket.gethostname()
        file.attrs["writer_pid"] = os.getpid()
        file.attrs["heartbeat"] = time.time()

    @classmethod
    def reopen(
        cls, path: str | Path, flush_every: float = 0.0, resumed_by: Mapping[str, Any] | None = None
    ) -> RunWriter:
        """Open an existing run file to continue writing it (``--resume``); ``resumed_by`` is recorded in
        the attribute ``resumes`` (a JSON list: every job that continued the run)."""
        refuse_live(Path(path))
        self = cls.__new__(cls)
        self._attach(h5py.File(path, "r+", locking=False), Path(path), flush_every)
        if resumed_by is not None:
            history = json.loads(self.file.attrs.get("resumes", "[]"))
            self.file.attrs["resumes"] = json.dumps([*history, dict(resumed_by)])
        self.file.attrs["status"] = "running"
        self.file.flush()
        return self

    # rounds

    def write_round(self, trial: int, round: int, values: Mapping[str, Any]) -> None:
        """Queue one round's metrics (names of /metrics or /diagnostics); written at the next flush."""
        self.write_rounds(range(trial, trial + 1), round, [values])

    def write_rounds(self, trials: range, round: int, values: Sequence[Mapping[str, Any]]) -> None:
        """Queue one round of consecutive trials run together (``values[b]``: trial ``trials[b]``'s)."""
        with self.lock:
            if self._pending and self._pending[-1][0] != trials:
                self.flush()
            self._pending.append((trials, round, values))
            if len(self._pending) >= self._rows or time.monotonic() - self._flushed >= self.flush_every:
                self.flush()

    def flush(self) -> None:
        """Write the queued rounds of the current trials as one block per dataset, then flush the file."""
        with self.lock, writing(self.path, self):
            wrote = False
            if self._pending:
                trials = self._pending[0][0]
                first, last = self._pending[0][1], self._pending[-1][1]
                for name, ds in self._datasets.items():
                    if ds.shape[1] <= last:
                        ds.resize(last + 1, axis=1)
                    cells = [(r - first, b, v.get(name)) for _, r, vs in self._pending for b, v in enumerate(vs)]
                    if all(cell is None for *_, cell in cells):
                        continue
                    data = np.full((len(trials), last + 1 - first, *ds.shape[2:]), _fill(ds.dtype), dtype=ds.dtype)
                    for r, b, cell in cells:
                        if cell is not None:
                            data[b, r] = cell
                    ds[trials.start : trials.stop, first : last + 1] = data
                self.file.attrs["rounds_done"] = last + 1
                self._pending.clear()
                wrote = True
            self.file.attrs["heartbeat"] = time.time()
            self.file.flush()
            self.data_written = self.data_written or wrote
            self._flushed = self._beat = time.monotonic()

    def tick(self) -> None:
        """Flush rounds queued for longer than ``flush_every`` and beat the heart (from the monitor thread)."""
        with self.lock:
            if not self.file.id.valid or self.broken is not None:
                return
            now = time.monotonic()
            if (self._pending and now - self._flushed >= self.flush_every) or now - self._beat >= HEARTBEAT_EVERY:
                with contextlib.suppress(WriteError):  # remembered in self.broken; the main thread reports it
                    self.flush()

    def log_messages(self, rows: np.ndarray) -> None:
        """Append rows of MESSAGE_DTYPE to /messages (only when record_messages is on)."""
        if self.messages is None or rows.size == 0:
            return
        with self.lock, writing(self.path, self):
            start = self.messages.shape[0]
            self.messages.resize(start + rows.size, axis=0)
            self.messages[start:] = rows

    def truncate_messages(self, starts: Mapping[int, int], trials: int) -> None:
        """Drop /messages rows that are about to be written again: those of rounds at or after
        ``starts[t]`` for each trial t listed (the trials not listed keep theirs)."""
        if self.messages is None or self.messages.shape[0] == 0:
            return
        with self.lock:
            rows = self.messages[()]
            begin = np.full(trials, np.iinfo(np.int64).max)
            for trial, start in starts.items():
                begin[trial] = start
            keep = rows["round"] < begin[rows["trial"]]
            self.messages.resize(int(keep.sum()), axis=0)
            if keep.sum():
                self.messages[:] = rows[keep]

    def end_trial(self, trial: int) -> None:
        with self.lock:
            self.flush()
            self.file.attrs["trials_done"] = trial + 1
            self.file.flush()

    # state

    def write_checkpoint(self, ckpt: state.Checkpoint) -> None:
        """Store ``ckpt`` in the checkpoint slot not in use (the rounds before it are on disk first)."""
        with self.lock:
            self.flush()
            with writing(self.path, self):
                state.write_checkpoint(self.file, ckpt)
            self.data_written = True

    def write_final(self, first_trial: int, last_trial: int, ckpt: state.Checkpoint) -> None:
        """The state at the end of trials ``first_trial``..``last_trial`` (the learned policy)."""
        with self.lock, writing(self.path, self):
            state.write_final(self.file, first_trial, last_trial, ckpt)
            self.file.flush()

    # status

    def set_status(self, status: str) -> None:
        assert status in STATUSES, status
        with self.lock:
            if not self.file.id.valid:
                return
            self.flush()
            self.file.attrs["status"] = status
            self.file.flush()

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Change root attributes (e.g. the config of a run extended to more rounds)."""
        with self.lock:
            for key, value in attrs.items():
                self.file.attrs[key] = value
            self.file.flush()

    def close(self, status: str | None = None) -> None:
        with self.lock:
            if not self.file.id.valid:
                return
            if status is not None:
                self.set_status(status)
            with writing(self.path, self):
                self.file.close()

    def discard(self) -> None:
        """Give the file up without another write; a file this writer made and never wrote data to is
        removed (a start that failed leaves nothing behind). A file that failed to write is left open
        (closing it would try to write it again), for the process to end without it."""
        with self.lock:
            if self.created and not self.data_written:
                self.path.unlink(missing_ok=True)
            if self.broken is None:
                with contextlib.suppress(Exception):
                    self.file.close()


def _layout(
    file: h5py.File,
    attrs: Mapping[str, Any],
    trials: int,
    n: int,
    diagnostics: Sequence[str],
    record_messages: bool,
) -> None:
    """Attributes and empty, growable datasets of a new run file (schema "mpidrl/1")."""
    file.attrs["schema"] = SCHEMA
    for key, value in attrs.items():
        file.attrs[key] = value
    file.attrs["status"] = "running"
    file.attrs["rounds_done"] = 0
    file.attrs["trials_done"] = 0
    rows = _chunk_rounds(n)
    metrics = file.create_group("metrics")
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
    if diagnostics:
        group = file.create_group("diagnostics")
        for name in diagnostics:
            group.create_dataset(
                name,
                shape=(trials, 0, n),
                maxshape=(trials, None, n),
                dtype=np.float64,
                chunks=(1, rows, n),
                fillvalue=np.nan,
            )
    if record_messages:
        file.create_dataset(
            "messages",
            shape=(0,),
            maxshape=(None,),
            dtype=MESSAGE_DTYPE,
            chunks=(4096,),
            compression="gzip",
            shuffle=True,
        )


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished new file into place: never over an existing file unless ``overwrite``, never over
    a live run."""
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
        refuse_live(path)
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic: fails if another run published first
    except FileExistsError:
        raise FileExistsError(f"{path} was created by another run meanwhile") from None
    except OSError:  # a file system without hard links
        os.replace(tmp, path)
        return
    tmp.unlink()
