"""Message tags, the control flags of a round, and the failure a rank reports."""

from __future__ import annotations

import enum


class Tag(enum.IntEnum):
    """Tags of point-to-point messages (collectives need none)."""

    FAILURE = 1
    """a failing rank's notice to rank 0 (pickled text)"""
    FAILURE_ACK = 2
    """rank 0's reply once the run file records the failure"""
    REPORT = 101
    """agent -> rank 0: one gradient finished (asynchronous aggregation)"""
    STOP = 102
    """rank 0 -> rank: the round is over; accepted counts (or replies sent) of the rank's agents"""
    GRADIENT = 103
    """round trips: agent -> learner, a gradient"""
    REPLY = 104
    """round trips: learner -> agent, the learner's state after applying it"""
    REPORT_ODD = 105
    """REPORT of an odd round: a rank may start round r + 1 while rank 0 still drains round r, so
    consecutive rounds use different tags and the drain of round r cannot take a report of round r + 1"""


class Control(enum.IntFlag):
    """Flags rank 0 broadcasts at the start of every round."""

    CONTINUE = 0
    CHECKPOINT = 1
    """save a checkpoint of every rank's state before this round"""
    STOP = 2
    """stop cleanly before this round (after the checkpoint)"""


class PeerFailed(RuntimeError):
    """Raised on rank 0 when another rank reports a failure."""

    def __init__(self, rank: int, text: str):
        super().__init__(f"rank {rank} failed: {text}")
        self.rank = rank
