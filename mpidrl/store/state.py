"""Saved learner and agent state: the checkpoint a run resumes from, and each trial's final state.

``/checkpoint`` holds two slots, ``a`` and ``b``, written in turn; the attribute ``current`` names the
complete one, so a job killed while writing a checkpoint keeps the previous one whole. ``/final/<t>``
holds the state at the end of the trials run together from trial t (the learned policy, and what
``--resume --set run.rounds=N`` continues from). Every dataset carries the CRC-32 of its bytes
(attribute ``crc32``): a damaged slot is found when it is read, and the other slot is used instead.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

PARTS = ("learner", "workers")
CLOCKS = ("trial", "round", "wall_time", "sim_time")


class DamagedState(ValueError):
    """Saved state that fails its checksum or cannot be read; the message is one line."""


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
    """per-agent worker state, leading axis = agent (keys starting with ``shared/``: one copy)"""


def crc32(value: np.ndarray) -> int:
    """The checksum of an array's shape, dtype and bytes."""
    head = f"{value.dtype.str}{value.shape}".encode()
    return zlib.crc32(np.ascontiguousarray(value).tobytes(), zlib.crc32(head))


def _keys(group: h5py.Group) -> list[str]:
    found: list[str] = []
    group.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return found


def write_state(group: h5py.Group, state: dict[str, Any]) -> None:
    """Write arrays into ``group`` (overwriting in place where the shape allows: the file does not grow)."""
    for key in set(_keys(group)) - set(state):
        del group[key]
    for key, value in state.items():
        value = np.asarray(value)
        if key in group and group[key].shape == value.shape and group[key].dtype == value.dtype:
            group[key][...] = value
        else:
            if key in group:
                del group[key]
            group.create_dataset(key, data=value)
        group[key].attrs["crc32"] = crc32(value)


def read_state(group: h5py.Group, where: str) -> dict[str, np.ndarray]:
    """The arrays of ``group``, each checked against its checksum."""
    out = {}
    for key in _keys(group):
        try:
            value = group[key][()]
            expected = group[key].attrs.get("crc32")
        except (OSError, KeyError) as exc:
            raise DamagedState(f"{where}/{key} cannot be read ({exc})") from None
        value = np.asarray(value)
        if expected is not None and int(expected) != crc32(value):
            raise DamagedState(f"{where}/{key} fails its checksum")
        out[key] = value
    return out


def write_checkpoint(file: h5py.File, ckpt: Checkpoint) -> None:
    """Store ``ckpt`` in the slot not in use, then point ``current`` at it (the caller flushes rounds first)."""
    group = file.require_group("checkpoint")
    slot = "b" if group.attrs.get("current") == "a" else "a"
    try:
        _write_slot(group.require_group(slot), ckpt)
    except (OSError, KeyError, ValueError, TypeError):  # a damaged slot: write it anew
        del group[slot]
        _write_slot(group.create_group(slot), ckpt)
    file.flush()
    group.attrs["current"] = slot
    for name in CLOCKS:  # a summary of the current slot
        group.attrs[name] = getattr(ckpt, name)
    file.flush()


def _write_slot(target: h5py.Group, ckpt: Checkpoint) -> None:
    for part in PARTS:
        write_state(target.require_group(part), getattr(ckpt, part))
    for name in CLOCKS:
        target.attrs[name] = getattr(ckpt, name)


def _read_slot(group: h5py.Group, where: str) -> Checkpoint:
    try:
        clocks = {name: group.attrs[name] for name in CLOCKS}
    except KeyError as exc:
        raise DamagedState(f"{where} lacks {exc}") from None
    parts = {p: read_state(group[p], f"{where}/{p}") if p in group else {} for p in PARTS}
    return Checkpoint(
        int(clocks["trial"]), int(clocks["round"]), float(clocks["wall_time"]), float(clocks["sim_time"]), **parts
    )


def check_checkpoint(ckpt: Checkpoint, trials: int, rounds: int, n: int) -> None:
    """Raise DamagedState unless ``ckpt`` can be the state of a run of ``trials`` x ``rounds`` with n agents."""
    if not 0 <= ckpt.trial < trials:
        raise DamagedState(f"its trial {ckpt.trial} is outside the run's {trials} trial(s)")
    if not 0 <= ckpt.round < rounds:
        raise DamagedState(f"its round {ckpt.round} is outside the run's {rounds} round(s)")
    if not (math.isfinite(ckpt.wall_time) and ckpt.wall_time >= 0):
        raise DamagedState(f"its wall time {ckpt.wall_time} is not a time")
    if math.isinf(ckpt.sim_time) or ckpt.sim_time < 0:
        raise DamagedState(f"its simulated time {ckpt.sim_time} is not a time")
    for key, value in ckpt.workers.items():
        if not key.startswith("shared/") and (value.ndim == 0 or value.shape[0] != n):
            raise DamagedState(f"its agent state {key} has {value.shape[:1]} rows, not one per agent ({n})")


def load_checkpoint(file: h5py.File, trials: int, rounds: int, n: int) -> tuple[Checkpoint | None, list[str]]:
    """The newest usable checkpoint (None if the file has none) and warnings about slots passed over.

    Raises DamagedState if there are checkpoints but none is usable.
    """
    if "checkpoint" not in file or "current" not in file["checkpoint"].attrs:
        return None, []
    group = file["checkpoint"]
    current = str(group.attrs["current"])
    order = [current] + [s for s in ("a", "b") if s != current]
    found, problems = [], []
    for slot in order:
        if slot not in group:
            continue
        try:
            ckpt = _read_slot(group[slot], f"checkpoint/{slot}")
            check_checkpoint(ckpt, trials, rounds, n)
            found.append((slot, ckpt))
        except DamagedState as exc:
            problems.append(f"checkpoint slot {slot}: {exc}")
    if not found:
        raise DamagedState("; ".join(problems) or "no checkpoint slot")
    slot, ckpt = found[0]
    if slot != current:  # the current slot is damaged: the previous checkpoint is the newest usable one
        problems.append(f"resuming from slot {slot} (trial {ckpt.trial + 1}, round {ckpt.round + 1})")
    return ckpt, problems


def write_final(file: h5py.File, first_trial: int, last_trial: int, ckpt: Checkpoint) -> None:
    """The state at the end of the trials ``first_trial``..``last_trial`` run together."""
    group = file.require_group("final").require_group(str(first_trial))
    for part in PARTS:
        write_state(group.require_group(part), getattr(ckpt, part))
    for name in CLOCKS:
        group.attrs[name] = getattr(ckpt, name)
    group.attrs["last_trial"] = last_trial


def read_final(file: h5py.File) -> dict[int, Checkpoint]:
    """Each saved final state by the first trial of its batch (``round``: the rounds it had run)."""
    if "final" not in file:
        return {}
    return {int(k): _read_slot(g, f"final/{k}") for k, g in file["final"].items()}
