"""AFedPG rounds over MPI: one round trip per gradient, M learner updates per round.

A round, on every rank at once::

    rank 0 broadcasts the learner's state [t, theta, d]; every agent starts from it
    agents: compute a gradient at the lookahead of the state they hold, Isend it (GRADIENT:
            [agent, k, g], d + 2 float64), wait for the REPLY ([agent, t, theta, d], 2 d + 2 float64),
            repeat; with ``delay`` seconds injected before each gradient (real mode)
    rank 0: applies each arriving gradient (real mode: arrival order; simulated mode: the order the
            virtual clock gives) with one NIGT step and replies to its agent; after M updates it
            Isends each rank a STOP carrying, per agent, the number of replies sent (8 bytes each)
    agents: on STOP, receive the replies still in flight and stop; gradients not applied are dropped
    rank 0 gathers the per-agent statistics and receives the gradients still in flight

Everything is polled with polite sleeps. Payload is every GRADIENT and REPLY and the broadcast;
the STOP is control traffic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from mpidrl.comm import Runtime, Tag, block_owners, blocks
from mpidrl.comm.aggregate import STOP_BYTES, cancel, drain
from mpidrl.comm.rounds import STAT_COLUMNS

AFEDPG_COLUMNS = (*STAT_COLUMNS, "downlink_bytes", "control_messages", "control_bytes", "gradients")
"""Per-agent statistics of an AFedPG round."""


@dataclass
class AFedPGResult:
    stats: np.ndarray
    """[n, len(AFEDPG_COLUMNS)] per-agent statistics"""


class _Learner:
    """Rank 0's side: takes gradients, steps, replies, and stops the round after M updates."""

    def __init__(self, rt: Runtime, learner, n: int, size: int, m: int, order):
        self.rt, self.learner, self.n, self.m, self.order = rt, learner, n, m, order
        self.owner = block_owners(n, rt.size)
        self.buf = np.empty(size + 2)
        self.req = rt.comm.Irecv(self.buf, source=MPI.ANY_SOURCE, tag=Tag.GRADIENT)
        self.pending: list[tuple[int, np.ndarray]] = []
        self.applied = np.zeros(n, dtype=np.int64)
        self.updates = self.received = 0
        self.sends: list[tuple[np.ndarray, object]] = []

    @property
    def done(self) -> bool:
        return self.updates >= self.m

    def _take(self) -> None:
        self.received += 1
        if not self.done:
            self.pending.append((int(self.buf[0]), self.buf[2:].copy()))
        self.req = self.rt.comm.Irecv(self.buf, source=MPI.ANY_SOURCE, tag=Tag.GRADIENT)

    def poll(self) -> None:
        while not self.done and self.req.Test():
            self._take()
        while not self.done and self.pending:
            want = None if self.order is None else int(self.order[self.updates])
            pos = next((p for p, (a, _) in enumerate(self.pending) if want is None or a == want), None)
            if pos is None:
                return
            agent, g = self.pending.pop(pos)
            self.learner.nigt.step(g)
            self.applied[agent] += 1
            self.updates += 1
            msg = np.concatenate([[float(agent)], self.learner.reply()])
            self.sends.append((msg, self.rt.comm.Isend(msg, dest=int(self.owner[agent]), tag=Tag.REPLY)))
            if self.done:
                for r, b in enumerate(blocks(self.n, self.rt.size)):
                    buf = self.applied[b.start : b.stop].copy()
                    self.sends.append((buf, self.rt.comm.Isend(buf, dest=r, tag=Tag.STOP)))

    def drain(self, total: int) -> None:
        drain(self, total)


def afedpg_round(rt: Runtime, learner, worker, round: int, n: int, m: int, order, caps, delay) -> AFedPGResult | None:
    """One AFedPG round (module docstring). ``order``: simulated arrival order of the M gradients, or None."""
    state = rt.broadcast(learner.downlink() if rt.is_root else None, np.dtype(np.float64))
    worker.begin(round, state)
    size, agents = worker.size, worker.agents
    index = {a: j for j, a in enumerate(agents)}
    lead = _Learner(rt, learner, n, size, m, order) if rt.is_root else None
    stop = np.zeros(len(agents), dtype=np.int64)
    stop_req = rt.comm.Irecv(stop, source=0, tag=Tag.STOP)
    rbuf = np.empty(2 * size + 2)
    rreq = rt.comm.Irecv(rbuf, source=0, tag=Tag.REPLY)
    got = np.zeros(len(agents), dtype=np.int64)
    computed = np.zeros(len(agents), dtype=np.int64)
    waiting = np.zeros(len(agents), dtype=bool)
    now = time.perf_counter()
    due = [now + delay(a, 0) for a in agents]
    sends, stopped, pause = [], False, 1e-5

    def take_reply() -> None:
        nonlocal rreq
        j = index[int(rbuf[0])]
        worker.receive(agents[j], rbuf[1:])
        got[j] += 1
        waiting[j] = False
        due[j] = time.perf_counter() + delay(agents[j], int(computed[j]))
        rreq = rt.comm.Irecv(rbuf, source=0, tag=Tag.REPLY)

    while not stopped:
        if lead is not None:
            lead.poll()
        while rreq.Test():
            take_reply()
        if stop_req.Test():
            stopped = True
            break
        now = time.perf_counter()
        ready = [j for j in range(len(agents)) if not waiting[j] and computed[j] < caps[agents[j]] and due[j] <= now]
        if ready:
            j = ready[0]
            g = worker.compute(agents[j])
            msg = np.concatenate([[float(agents[j]), float(computed[j])], g])
            sends.append((msg, rt.comm.Isend(msg, dest=0, tag=Tag.GRADIENT)))
            computed[j] += 1
            waiting[j] = True
            pause = 1e-5
            continue
        time.sleep(pause)
        pause = min(2 * pause, rt.max_sleep)
    while np.any(got < stop):
        rt.wait(rreq)
        take_reply()
    cancel(rt, rreq)

    stats = np.zeros((len(agents), len(AFEDPG_COLUMNS)))
    for j, agent in enumerate(agents):
        res = worker.result(agent, int(stop[j]))
        down = state.nbytes + int(got[j]) * rbuf.nbytes
        up = int(computed[j]) * (size + 2) * 8
        stats[j] = (res.reward, res.ret, res.episodes, res.steps, computed[j], up, down, 1, STOP_BYTES, stop[j])
    stats = rt.gather_rows(stats, n)
    if lead is not None:
        lead.drain(int(stats[:, AFEDPG_COLUMNS.index("episodes")].sum()))
    # only now: a GRADIENT too large for an eager send completes when rank 0 receives it, which for
    # dropped work happens in the drain above, after the gather
    for _, req in sends:
        rt.wait(req)
    return AFedPGResult(stats) if rt.is_root else None
