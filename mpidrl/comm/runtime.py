"""The MPI runtime: a communicator with the primitives the protocols of :mod:`mpidrl.protocols` use.

Rank 0 is the learner; the n logical agents are split into contiguous blocks over all ranks (rank 0 hosts
a block too, so every core steps environments). Arrays travel with buffer calls (``Ibcast``,
``Igatherv``, ``Iallreduce``, ``Isend``/``Irecv``); small control data (the config) is pickled and sent as
a byte buffer. The protocols hold the requests these calls return and test them; they never touch mpi4py.

Waiting is done on nonblocking requests polled with short, growing sleeps: a rank blocked inside MPI
spins and takes a core from the ranks that still compute (on an oversubscribed laptop or a shared node).
While rank 0 waits it also listens for failure notices: a rank that fails tells rank 0 (tag FAILURE),
which marks the run file ``failed`` and acknowledges before the job is aborted, so no rank waits forever
and the file says what happened.
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from mpi4py import MPI

from mpidrl.comm.blocks import blocks
from mpidrl.comm.tags import Control, PeerFailed, Tag

ANY_SOURCE = MPI.ANY_SOURCE


class AgentClaims:
    """Dynamic placement: ranks claim the agents of a synchronous round, each index exactly once.

    Every rank exposes the counter of its own block in an MPI window (two int64 slots: alternate rounds
    use alternate slots). A rank first claims the agents of its own block, front to back, from its own
    counter; when its block is done it claims the not-yet-started agents of the other ranks' blocks
    from their counters. Claims are atomic ``Fetch_and_op`` additions in a passive-target epoch, which
    complete without the owner taking part (through shared memory on one node), so a rank whose
    episodes ran short takes over the tail of a slower rank's block instead of idling until the gather.

    A slot is zeroed by its owner at the start of the round after the one that used it: every claim of
    that round completed before the round's gather, and the next use comes after the next broadcast.
    """

    def __init__(self, rt: Runtime):
        self.rt = rt
        rt.barrier()  # a polled wait first: a rank that failed before this point is heard of, not waited for
        self.win = MPI.Win.Allocate(16, disp_unit=8, comm=rt.comm)
        np.frombuffer(self.win.tomemory(), dtype=np.int64)[:] = 0
        self.win.Lock_all()
        rt.barrier()
        self.sequence = 0
        self._zero = np.zeros(1, dtype=np.int64)
        self._got = np.empty(1, dtype=np.int64)

    def claims(self, n: int, chunk: int = 1):
        """The agents this rank runs in the coming round, as lists of up to ``chunk`` consecutive agents in
        the order it should run them (collective: every rank iterates it to the end once per round)."""
        rt, win, slot = self.rt, self.win, self.sequence % 2
        win.Accumulate([self._zero, MPI.INT64_T], rt.rank, target=(1 - slot, 1, MPI.INT64_T), op=MPI.REPLACE)
        win.Flush(rt.rank)
        self.sequence += 1
        step = np.array([chunk], dtype=np.int64)
        spans = blocks(n, rt.size)
        for owner in [(rt.rank + k) % rt.size for k in range(rt.size)]:  # own block, then the next ranks
            span = spans[owner]
            while True:
                win.Fetch_and_op([step, MPI.INT64_T], [self._got, MPI.INT64_T], owner, slot, MPI.SUM)
                win.Flush(owner)
                k = int(self._got[0])
                if k >= len(span):
                    break
                yield list(span[k : k + chunk])

    def free(self) -> None:
        """Release the window (collective; after the last round of a trial)."""
        self.win.Unlock_all()
        self.win.Free()


def library_version() -> str:
    """First line of the MPI library's version string."""
    return MPI.Get_library_version().strip().splitlines()[0]


def mpi4py_version() -> str:
    import mpi4py

    return mpi4py.__version__


class Runtime:
    """A communicator with the round primitives mpidrl needs; ``comm=None`` means COMM_WORLD."""

    def __init__(self, comm: Any = None, max_sleep: float = 1e-3, spin: float = 1e-3):
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.max_sleep = max_sleep
        self.spin = spin
        self.watched = False
        """another thread takes failure notices (rank 0's monitor): :meth:`wait` leaves them to it"""

    @property
    def thread_multiple(self) -> bool:
        """Whether MPI lets several threads call it at once (a monitor thread may then take notices)."""
        return MPI.Query_thread() == MPI.THREAD_MULTIPLE

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def block(self, n: int) -> range:
        """The logical agents this rank hosts."""
        return blocks(n, self.size)[self.rank]

    def node_share(self) -> float:
        """Fraction of the ranks (hence of the agents) that run on this rank's machine (collective)."""
        if self.size == 1:
            return 1.0
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        share = local.Get_size() / self.size
        local.Free()
        return share

    def wait(self, request: Any) -> None:
        """Complete ``request`` without spinning a core for long: test in a tight loop for at most
        ``spin`` seconds (most collectives of a short round complete within it, and the shortest sleep
        the kernel grants is several times longer), then sleep a little longer each time.

        On rank 0 a failure notice from another rank raises :class:`PeerFailed`.
        """
        if request.Test():
            return
        deadline = time.perf_counter() + self.spin
        while time.perf_counter() < deadline:
            if request.Test():
                return
        delay = 1e-5
        while not request.Test():
            if self.is_root and self.size > 1 and not self.watched:
                self.check_peers()
            time.sleep(delay)
            delay = min(2 * delay, self.max_sleep)

    def check_peers(self) -> None:
        """Raise PeerFailed if another rank has reported a failure (rank 0 only)."""
        status = MPI.Status()
        if self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=Tag.FAILURE, status=status):
            source = status.Get_source()
            raise PeerFailed(source, self.comm.recv(source=source, tag=Tag.FAILURE))

    def report_failure(self, text: str, timeout: float = 10.0) -> None:
        """Tell rank 0 this rank failed and wait (at most ``timeout`` s) until it has recorded it."""
        if self.is_root or self.size == 1:
            return
        self.comm.isend(text, dest=0, tag=Tag.FAILURE)
        ack = self.comm.irecv(source=0, tag=Tag.FAILURE_ACK)
        deadline = time.monotonic() + timeout
        while not ack.Test() and time.monotonic() < deadline:
            time.sleep(0.01)

    def acknowledge_failure(self, rank: int) -> None:
        """Rank 0's reply to a failure notice (a small eager send: it does not block)."""
        self.comm.isend(None, dest=rank, tag=Tag.FAILURE_ACK)

    def control(self, flags: Control) -> Control:
        """Combine every rank's control flags for the coming round (any rank may ask to stop)."""
        if self.size == 1:
            return flags
        mine = np.array([int(flags)], dtype=np.int64)
        out = np.empty_like(mine)
        self.wait(self.comm.Iallreduce(mine, out, op=MPI.BOR))
        return Control(int(out[0]))

    def gather_objects(self, obj: Any) -> list[Any] | None:
        """Gather a small picklable object from every rank to rank 0 (checkpoints only)."""
        if self.size == 1:
            return [obj]
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
        sizes = self.gather_rows(np.array([[float(data.size)]]), self.size)
        counts = [int(c) for c in sizes[:, 0]] if self.is_root else None
        buf = self.gather_bytes(data, counts)
        if not self.is_root:
            return None
        bounds = np.cumsum([0, *counts])
        return [pickle.loads(buf[a:b].tobytes()) for a, b in zip(bounds[:-1], bounds[1:])]

    def share(self, obj: Any) -> Any:
        """Broadcast small control data (a pickled object) from rank 0."""
        if self.size == 1:
            return obj
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8) if self.is_root else None
        return pickle.loads(self.broadcast(data, np.dtype(np.uint8)).tobytes())

    def broadcast(self, payload: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
        """Broadcast a 1-D array from rank 0; other ranks learn its length from a one-integer header."""
        if self.size == 1:
            return np.ascontiguousarray(payload, dtype=dtype)
        header = np.array([payload.size if self.is_root else 0], dtype=np.int64)
        self.wait(self.comm.Ibcast(header, root=0))
        buf = np.ascontiguousarray(payload, dtype=dtype) if self.is_root else np.empty(int(header[0]), dtype)
        self.wait(self.comm.Ibcast(buf, root=0))
        return buf

    def gather_rows(self, rows: np.ndarray, n: int, sizes: Sequence[int] | None = None) -> np.ndarray | None:
        """Gather each rank's float64 rows (one per hosted agent, in agent order) to rank 0.

        ``sizes``: the number of rows of each rank, known on rank 0 (default: the agent blocks).
        """
        if self.size == 1:
            return rows
        width = rows.shape[1]
        counts = [k * width for k in (sizes or [len(b) for b in blocks(n, self.size)])] if self.is_root else None
        out = np.empty((n, width)) if self.is_root else None
        recv = [out, counts, np.cumsum([0, *counts[:-1]]), MPI.DOUBLE] if self.is_root else None
        self.wait(self.comm.Igatherv(np.ascontiguousarray(rows), recv, root=0))
        return out

    def gather_counts(self, values: Sequence[int]) -> np.ndarray | None:
        """Gather a few integers from every rank to rank 0, as a [size, len(values)] array."""
        mine = np.asarray(values, dtype=np.int64)
        if self.size == 1:
            return mine[None, :]
        out = np.empty((self.size, mine.size), dtype=np.int64) if self.is_root else None
        self.wait(self.comm.Igather(mine, out, root=0))
        return out

    def gather_bytes(self, data: np.ndarray, counts: Sequence[int] | None) -> np.ndarray | None:
        """Gather each rank's uint8 buffer to rank 0, which passes the per-rank byte counts."""
        if self.size == 1:
            return data
        out, recv = None, None
        if self.is_root:
            out = np.empty(int(sum(counts)), dtype=np.uint8)
            recv = [out, list(counts), np.cumsum([0, *counts[:-1]]), MPI.BYTE]
        self.wait(self.comm.Igatherv(data, recv, root=0))
        return out

    def barrier(self) -> None:
        if self.size > 1:
            self.wait(self.comm.Ibarrier())

    def isend(self, buf: np.ndarray, dest: int, tag: int) -> Any:
        """Start sending an array to rank ``dest``; the caller keeps ``buf`` alive until the request completes."""
        return self.comm.Isend(buf, dest=dest, tag=tag)

    def irecv(self, buf: np.ndarray, tag: int, source: int = ANY_SOURCE) -> Any:
        """Post a receive of an array into ``buf`` (from any rank unless ``source`` is given)."""
        return self.comm.Irecv(buf, source=source, tag=tag)

    def inbox(self, buf: np.ndarray, tag: int, source: int = ANY_SOURCE) -> Inbox:
        """Messages of ``tag`` (from any rank unless ``source`` is given), one at a time into ``buf``."""
        return Inbox(self.comm, buf, tag, source)

    def allreduce_sum(self, array: np.ndarray) -> np.ndarray:
        """The elementwise sum of every rank's ``array`` (float64), on every rank."""
        if self.size == 1:
            return array
        out = np.empty_like(array)
        self.wait(self.comm.Iallreduce(array, out, op=MPI.SUM))
        return out

    def agent_claims(self) -> AgentClaims:
        """A window of agent counters for dynamic placement (collective; free it after the trial)."""
        return AgentClaims(self)

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (used when one rank fails)."""
        sys.stdout.flush()
        sys.stderr.flush()
        # mpiexec forwards output through a proxy that the abort tears down: give it a moment to pass
        # on the traceback just written, or the reason for the failure may never reach the log.
        time.sleep(0.5)
        self.comm.Abort(code)


class Inbox:
    """Receipt of a stream of same-sized messages of one tag by matched probe, for a receiver that stops
    listening when a round ends without knowing whether more will come (rank 0 taking REPORTs, an agent
    rank taking replies).

    No receive stays posted between messages, so nothing has to be cancelled at the round's end: under
    MPICH with ranks on more than one node, a cancelled any-source receive reported itself cancelled and
    still took a later round's message, which was then lost. ``Test()`` has a request's meaning (True: a
    message is now in ``buf``), so :meth:`Runtime.wait` waits for the next one.
    """

    def __init__(self, comm: Any, buf: np.ndarray, tag: int, source: int):
        self.comm, self.buf, self.tag, self.source = comm, buf, tag, source

    def Test(self) -> bool:  # noqa: N802 - the name of MPI's request method, for Runtime.wait
        message = self.comm.Improbe(source=self.source, tag=self.tag)
        if message is None:
            return False
        message.Recv(self.buf)
        return True
