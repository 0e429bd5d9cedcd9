"""What a round leaves behind: the per-agent and per-round metrics and the message log rows.

The protocols (:mod:`mpidrl.protocols`) produce these records; the run file (:mod:`mpidrl.store`)
stores them under the same names, so both sides read the names and types from here.
"""

from __future__ import annotations

import h5py
import numpy as np

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
    "rank": np.int32,
}
"""Per-agent metrics of a round: name -> dtype (run file shape [T, R, N])."""

PER_ROUND = {
    "wall_time": np.float64,
    "sim_time": np.float64,
    "eval_return": np.float64,
}
"""Per-round metrics: name -> dtype (run file shape [T, R])."""

DIRECTIONS = ("uplink", "downlink")
"""Message directions: agent -> learner, learner -> agent."""

UPLINK, DOWNLINK = 0, 1

MESSAGE_DTYPE = np.dtype(
    [
        ("trial", np.int32),
        ("round", np.int32),
        ("agent", np.int32),
        ("direction", h5py.enum_dtype({d: i for i, d in enumerate(DIRECTIONS)}, basetype=np.uint8)),
        ("kind", "S16"),
        ("nbytes", np.int64),
        ("time", np.float64),
        ("sent", np.float64),
        ("arrived", np.float64),
    ]
)
"""One row of the message log: one message of one agent in one round; ``time`` is the clock at the round's
end, ``sent`` and ``arrived`` the simulated network's times of the message (NaN without one)."""

CONTROL = "control"
"""Kind of the control messages of the asynchronous protocols (counted apart from the payload)."""
