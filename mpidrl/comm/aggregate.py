"""Aggregation rounds of the NIGT family: asynchronous collection, then one Allreduce.

A round (:func:`aggregate_round`), on every rank at once::

    worker.begin(round)                     # the NIGT query point; no broadcast, every rank has the state
    collect: each rank computes its agents' gradients, one at a time, earliest due first; after each
             one it Isends a REPORT (agent, round, k) to rank 0. Rank 0, polling its reports between
             its own gradients, applies the stopping rule to the per-agent counts; when it holds it
             Isends to every rank a STOP carrying the accepted count m_i of each of its agents.
             Work not finished when the STOP arrives is dropped.
    one Allreduce of an [n, d + 1] buffer: row i = (sum of agent i's first m_i gradients, m_i)
    every rank combines the rows (:func:`combine`) and takes the NIGT step
    rank 0 gathers the per-agent statistics and receives the reports still in flight (dropped work)

nigt-sync needs no control messages: each agent computes its quota, and the Allreduce is the barrier.

Why an [n, d + 1] buffer rather than a d-vector: each logical agent owns one row, so the sum is formed
in agent order on every rank and is bit-identical whatever the number of ranks (a rank pre-summing
its block would change the floating-point order). We count, per agent, the (d + 1) float64 it
contributes (uplink) and receives back (downlink), as a deployment with one agent per rank would send.
Control messages (REPORT: 3 int64 = 24 bytes; STOP: one int64 per agent = 8 bytes) are counted apart,
per agent, in ``control_messages`` / ``control_bytes``.

Pacing: ``delay(agent, k)`` seconds pass before an agent's k-th gradient is computed (real mode with
injected h_i; 0 otherwise), ``caps[agent]`` bounds its gradients in the round (the sync quota, or in
simulated mode exactly the gradients the virtual clock says it finished first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from mpidrl.comm import Runtime, Tag, blocks
from mpidrl.comm.rounds import STAT_COLUMNS

REPORT_LEN = 3
"""int64 words of a REPORT: agent, round, k"""
REPORT_BYTES = REPORT_LEN * 8
STOP_BYTES = 8
"""bytes of the STOP message per agent (its accepted count)"""
AGG_COLUMNS = (*STAT_COLUMNS, "control_messages", "control_bytes", "gradients")
"""Per-agent statistics of an aggregation round."""


def drain(collector, total: int) -> None:
    """Rank 0's end of a round: receive what is still in flight until ``total`` messages have arrived,
    cancel the posted receive, and complete its own sends. ``collector`` has ``rt``, ``req``,
    ``received``, ``_take()`` and ``sends``."""
    while collector.received < total:
        collector.rt.wait(collector.req)
        collector._take()
    cancel(collector.rt, collector.req)
    for _, req in collector.sends:
        collector.rt.wait(req)


def report_tag(round: int) -> int:
    return Tag.REPORT_ODD if round % 2 else Tag.REPORT


def cancel(rt: Runtime, req) -> None:
    """Cancel a posted receive that must not match anything any more (raises if it did)."""
    req.Cancel()
    status = MPI.Status()
    while not req.Test(status):
        time.sleep(1e-4)
    if not status.Is_cancelled():
        raise RuntimeError(f"a receive (tag {status.Get_tag()}) matched a message after its round ended")


@dataclass
class AggregateResult:
    """What rank 0 knows after an aggregation round."""

    stats: np.ndarray
    """[n, len(AGG_COLUMNS)] per-agent statistics"""
    g: np.ndarray
    """the aggregated gradient every rank applied"""
    downlink_bytes: int
    """payload bytes each agent received (its share of the Allreduce)"""


def combine(rows: np.ndarray, name: str) -> np.ndarray:
    """The round's gradient from the Allreduced rows (sum_i, m_i), in agent order.

    Malenia weighs every agent equally, (1/n) sum_i sum_i / m_i; the others divide the total by the
    number of gradients, sum_i sum_i / sum_i m_i.
    """
    sums, counts = rows[:, :-1], rows[:, -1]
    if name == "malenia-nigt":
        g = np.zeros(sums.shape[1])
        for i in range(len(counts)):
            if counts[i] > 0:
                g += sums[i] / counts[i]
        return g / len(counts)
    g = np.zeros(sums.shape[1])
    for i in range(len(counts)):
        g += sums[i]
    return g / max(counts.sum(), 1.0)


class Coordinator:
    """Rank 0's side of the collection: counts REPORTs, decides the stop, tells every rank."""

    def __init__(self, rt: Runtime, n: int, round: int, rule: Callable[[np.ndarray], bool]):
        self.rt, self.n, self.round, self.rule = rt, n, round, rule
        self.counts = np.zeros(n, dtype=np.int64)
        self.received = 0
        self.decided = False
        self.sends: list[tuple[np.ndarray, object]] = []
        self.buf = np.empty(REPORT_LEN, dtype=np.int64)
        self.tag = report_tag(round)
        self.req = rt.comm.Irecv(self.buf, source=MPI.ANY_SOURCE, tag=self.tag)

    def _take(self) -> None:
        agent, rnd, _ = (int(v) for v in self.buf)
        if rnd != self.round:
            raise RuntimeError(f"report of round {rnd} received in round {self.round}")
        self.received += 1
        if not self.decided:
            self.counts[agent] += 1
        self.req = self.rt.comm.Irecv(self.buf, source=MPI.ANY_SOURCE, tag=self.tag)

    def poll(self) -> None:
        """Take every report that has arrived; send the STOPs as soon as the rule holds."""
        while not self.decided and self.req.Test():
            self._take()
            if self.rule(self.counts):
                self.decided = True
                for r, b in enumerate(blocks(self.n, self.rt.size)):
                    buf = self.counts[b.start : b.stop].copy()
                    self.sends.append((buf, self.rt.comm.Isend(buf, dest=r, tag=Tag.STOP)))

    def drain(self, total: int) -> None:
        """Receive the reports of dropped work still in flight (``total`` were sent in the round)."""
        drain(self, total)


def collect(
    rt: Runtime, worker, round: int, n: int, rule, caps: np.ndarray, delay: Callable[[int, int], float]
) -> tuple[np.ndarray, np.ndarray, Coordinator | None, list]:
    """Compute gradients until rank 0's STOP: (accepted, computed) for the block, rank 0's coordinator,
    and the REPORT sends still to be completed (after rank 0's drain)."""
    agents = worker.agents
    coord = Coordinator(rt, n, round, rule) if rt.is_root else None
    accepted = np.zeros(len(agents), dtype=np.int64)
    stop_req = rt.comm.Irecv(accepted, source=0, tag=Tag.STOP)
    computed = np.zeros(len(agents), dtype=np.int64)
    sends = []
    now = time.perf_counter()
    due = [now + delay(a, 0) for a in agents]
    pause = 1e-5
    while True:
        if coord is not None:
            coord.poll()
        if stop_req.Test():
            break
        # release the sends that completed (the rest are completed after rank 0's drain)
        sends = [(m, req) for m, req in sends if not req.Test()]
        ready = [j for j in range(len(agents)) if computed[j] < caps[agents[j]]]
        j = min(ready, key=lambda j: (due[j], j)) if ready else None
        now = time.perf_counter()
        if j is not None and now >= due[j]:
            worker.compute(agents[j])
            msg = np.array([agents[j], round, computed[j]], dtype=np.int64)
            sends.append((msg, rt.comm.Isend(msg, dest=0, tag=report_tag(round))))
            computed[j] += 1
            due[j] = time.perf_counter() + delay(agents[j], int(computed[j]))
            pause = 1e-5
            continue
        wait = rt.max_sleep if j is None else min(rt.max_sleep, due[j] - now)
        time.sleep(max(min(pause, wait), 1e-6))
        pause = min(2 * pause, rt.max_sleep)
    return accepted, computed, coord, sends


def aggregate_round(
    rt: Runtime,
    worker,
    round: int,
    n: int,
    rule: Callable[[np.ndarray], bool] | None,
    caps: np.ndarray,
    delay: Callable[[int, int], float],
) -> AggregateResult | None:
    """One round (see the module docstring); ``rule=None`` is a synchronous round without control."""
    worker.begin(round)
    coord, sends = None, []
    if rule is None:
        computed = compute_quota(worker, caps, delay)
        accepted = computed.copy()
    else:
        accepted, computed, coord, sends = collect(rt, worker, round, n, rule, caps, delay)

    rows = np.zeros((n, worker.size + 1))
    for j, agent in enumerate(worker.agents):
        m = int(accepted[j])
        if m:
            rows[agent, :-1] = np.sum(worker.grads[agent][:m], axis=0)
            rows[agent, -1] = m
    if rt.size > 1:
        summed = np.empty_like(rows)
        rt.wait(rt.comm.Iallreduce(rows, summed, op=MPI.SUM))
        rows = summed
    g = combine(rows, worker.ctx.cfg.algo.name)
    worker.apply(g)

    payload = (worker.size + 1) * 8
    stats = np.zeros((len(worker.agents), len(AGG_COLUMNS)))
    for j, agent in enumerate(worker.agents):
        res = worker.result(agent, int(accepted[j]))
        ctrl_msgs = int(computed[j]) + 1 if rule is not None else 0
        ctrl_bytes = int(computed[j]) * REPORT_BYTES + STOP_BYTES if rule is not None else 0
        stats[j] = (res.reward, res.ret, res.episodes, res.steps, 1, payload, ctrl_msgs, ctrl_bytes, accepted[j])
    stats = rt.gather_rows(stats, n)
    if coord is not None:
        coord.drain(int(stats[:, AGG_COLUMNS.index("episodes")].sum()))
    for _, req in sends:  # reports of dropped work complete in rank 0's drain, after the gather
        rt.wait(req)
    return AggregateResult(stats, g, payload) if rt.is_root else None


def compute_quota(worker, caps: np.ndarray, delay: Callable[[int, int], float]) -> np.ndarray:
    """Every hosted agent computes ``caps[agent]`` gradients, earliest due first (agents of one rank
    wait for their injected delays concurrently, as separate machines would)."""
    agents = worker.agents
    computed = np.zeros(len(agents), dtype=np.int64)
    now = time.perf_counter()
    due = [now + delay(a, 0) for a in agents]
    while True:
        ready = [j for j in range(len(agents)) if computed[j] < caps[agents[j]]]
        if not ready:
            return computed
        j = min(ready, key=lambda j: (due[j], j))
        wait = due[j] - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        worker.compute(agents[j])
        computed[j] += 1
        due[j] = time.perf_counter() + delay(agents[j], int(computed[j]))
