"""MPI mechanics: the only package that imports mpi4py, and it knows no algorithm and no protocol.

- :mod:`mpidrl.comm.runtime`: :class:`Runtime`, a communicator with the primitives the protocols use
  (collectives on arrays, nonblocking point-to-point messages, polite waits, failure notices) and
  :class:`AgentClaims`, one-sided claims of agents for dynamic placement;
- :mod:`mpidrl.comm.tags`: the message tags and the control flags of a round;
- :mod:`mpidrl.comm.blocks`: how n logical agents are split into contiguous blocks over the ranks;
- :mod:`mpidrl.comm.slurm`: the check that SLURM and MPI agree on the number of processes.

Importing this package does not initialise MPI (``mpi4py.MPI`` does, on import): configs are validated and
run files analysed without it. :class:`Runtime` and :class:`AgentClaims` load :mod:`mpidrl.comm.runtime`
on first use.
"""

from __future__ import annotations

from typing import Any

from mpidrl.comm.blocks import block_owners, blocks
from mpidrl.comm.tags import Control, PeerFailed, Tag

__all__ = ["AgentClaims", "Control", "PeerFailed", "Runtime", "Tag", "block_owners", "blocks"]


def __getattr__(name: str) -> Any:
    if name in ("Runtime", "AgentClaims", "library_version", "mpi4py_version"):
        from mpidrl.comm import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
