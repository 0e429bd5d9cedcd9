"""Rank-aware progress reporting: rank 0 alone speaks, at a steady cadence.

In a SLURM ``.out`` file (not a terminal) a line is printed every ``every`` seconds and at the end of
each trial; on a terminal a single progress bar is redrawn in place instead. Both end with the time the
rest of the run should take at the pace of this process so far (``eta``) and, with a simulated clock,
where that clock stands (``sim``).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_seconds(s: float) -> str:
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Progress of a run of ``trials`` x ``rounds`` rounds, printed on rank 0 only."""

    def __init__(
        self,
        rank: int,
        trials: int,
        rounds: int,
        every: float = 5.0,
        stream: TextIO | None = None,
        bar: bool | None = None,
    ):
        self.enabled = rank == 0
        self.trials, self.rounds, self.every = trials, rounds, every
        self.stream = stream or sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar
        self.t0 = self.last = time.perf_counter()
        self._decided = (-1, False)
        self._before: int | None = None
        """rounds done before this process started (a resumed run): the pace counts only its own"""

    def info(self, text: str) -> None:
        """A plain line from rank 0 (e.g. the run's header)."""
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def due(self, round: int) -> bool:
        """Whether :meth:`update` for ``round`` will print a line (so the run file can be flushed first):
        the answer is kept, and :meth:`update` keeps to it."""
        if not self.enabled or self.bar:
            return False
        self._decided = (round, time.perf_counter() - self.last >= self.every or round + 1 == self.rounds)
        return self._decided[1]

    def update(
        self,
        trial: int,
        round: int,
        reward: float,
        messages: float,
        up_bytes: float,
        down_bytes: float,
        first: int | None = None,
        sim_time: float | None = None,
    ) -> None:
        """Report round ``round`` (0-based) of trial ``trial`` with per-agent means of the round; with
        ``first``, of the batch of trials ``first``..``trial`` run together (means over all of them);
        ``sim_time``: the simulated clock at the round's end (None or NaN: a real clock)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        first = trial if first is None else first
        done = first * self.rounds + (trial - first + 1) * (round + 1)
        total = self.trials * self.rounds
        last_of_trial = round + 1 == self.rounds
        elapsed = now - self.t0
        if self._before is None:
            self._before = done - (trial - first + 1)
        eta = elapsed / max(done - self._before, 1) * (total - done)
        which = f"trial {trial + 1}" if first == trial else f"trials {first + 1}-{trial + 1}"
        text = (
            f"{which}/{self.trials} round {round + 1}/{self.rounds} reward {reward:9.3f} "
            f"msgs/agent {messages:5.2f} up B/agent {up_bytes:8.0f} down B/agent {down_bytes:8.0f} "
            f"elapsed {fmt_seconds(elapsed)} eta {fmt_seconds(eta)}"
        )
        if sim_time is not None and sim_time == sim_time:
            text += f" sim {sim_time:.6g} s"
        if self.bar:
            width = 24
            filled = int(width * done / total)
            print(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {text}",
                end="\n" if done == total else "",
                file=self.stream,
                flush=True,
            )
        elif self._decided[1] if self._decided[0] == round else (now - self.last >= self.every or last_of_trial):
            self.last = now
            print(text, file=self.stream, flush=True)
