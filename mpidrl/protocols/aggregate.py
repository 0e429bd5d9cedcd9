"""Aggregate until a quota: asynchronous collection of gradients, then one Allreduce (the NIGT family).

A round (:class:`AggregateRounds`), on every rank at once::

    worker.begin(round)                     # the query point; no broadcast, every rank has the state
    collect: each rank computes its agents' gradients, the next one of every agent that is due as one
             batch (``worker.compute_many``; in simulated time every agent short of its planned count
             is due); after each gradient it Isends a REPORT (agent, round, k) to rank 0. Rank 0,
             polling its reports between its own gradients, applies the worker's stopping rule to the
             per-agent counts; when it holds it Isends to every rank a STOP carrying the accepted count
             m_i of each of its agents.
             Work not finished when the STOP arrives is dropped.
    one Allreduce of an [n, d + 1] buffer: row i = (sum of agent i's first m_i gradients, m_i)
    every rank combines the rows (``worker.combine``) and applies the result (``worker.apply``);
    rank 0's learner applies it too
    rank 0 gathers the per-agent statistics and receives the reports still in flight (dropped work)

A worker whose :meth:`AggregateWorker.quota` is a number (synchronous rounds) needs no control
messages: each agent computes its quota, and the Allreduce is the barrier.

Why an [n, d + 1] buffer rather than a d-vector: each logical agent owns one row, so the sum is formed
in agent order on every rank and is bit-identical whatever the number of ranks (a rank pre-summing
its block would change the floating-point order). We count, per agent, the (d + 1) float64 it
contributes (uplink) and receives back (downlink), as a deployment with one agent per rank would send.
Control messages (REPORT: 3 int64 = 24 bytes; STOP: one int64 per agent = 8 bytes) are counted apart,
per agent, in ``control_messages`` / ``control_bytes``.

Planning, by the clock:

- simulated mode: :func:`plan_first` decides, from the h_i, which gradients finish first; each agent
  computes exactly those (ties broken by agent index), and the round lasts until the last counted
  completion plus the Allreduce (the slowest kappa_i). Nothing sleeps. Rank 0 still runs the REPORT/STOP
  exchange, stopping when the reports match the plan, so control traffic is the same as in real mode and
  results do not depend on the number of ranks or on message timing.
- real mode: the stopping rule is applied to the reports as they arrive; with ``time.delay_scale`` > 0
  agent i waits h_i * delay_scale seconds before its k-th gradient (``delay``).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mpidrl import timing
from mpidrl.comm import Tag, block_owners, blocks
from mpidrl.config import Config
from mpidrl.network import Links, ring_allreduce
from mpidrl.protocols.base import (
    RESULT_COLUMNS,
    AgentResult,
    LearnerBase,
    Protocol,
    RoundRecord,
    Stateful,
    Traffic,
    result_row,
    round_values,
)
from mpidrl.protocols.plans import plan_first, plan_reports, plan_uploads
from mpidrl.records import CONTROL, DOWNLINK, UPLINK

REPORT_LEN = 3
"""int64 words of a REPORT: agent, round, k"""
REPORT_BYTES = REPORT_LEN * 8
STOP_BYTES = 8
"""bytes of the STOP message per agent (its accepted count)"""
COLUMNS = (*RESULT_COLUMNS, "uplink_messages", "uplink_bytes", "control_messages", "control_bytes", "gradients")
"""Per-agent statistics of an aggregation round."""
UNLIMITED = 2**62
"""cap of an agent's gradients in a round when only the stopping rule ends it"""


class AggregateLearner(LearnerBase):
    """Rank 0's replica of the state every worker holds; takes each round's aggregated gradient."""

    @abc.abstractmethod
    def apply(self, g: np.ndarray) -> None:
        """Step with the round's aggregated gradient (the same ``g`` every worker applies)."""


class AggregateWorker(Stateful):
    """A block of agents computing gradients at the round's query point, with the round's rules."""

    def __init__(self, agents: Sequence[int]):
        self.agents = list(agents)

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """d, the length of a gradient."""

    @abc.abstractmethod
    def begin(self, round: int) -> None:
        """Start a round (fix the query point)."""

    @abc.abstractmethod
    def compute(self, agent: int) -> None:
        """One more gradient of ``agent`` (its k-th of the round), kept until the round ends."""

    def compute_many(self, agents: Sequence[int]) -> None:
        """One more gradient of each of ``agents`` (distinct); override to compute them as one batch."""
        for agent in agents:
            self.compute(agent)

    @abc.abstractmethod
    def gradient(self, agent: int, k: int) -> np.ndarray:
        """The agent's k-th gradient of the round (k from 0, in the order computed)."""

    def gradient_sum(self, agent: int, m: int) -> np.ndarray:
        """The sum of the agent's first ``m`` gradients of the round, in the order computed."""
        return np.sum([self.gradient(agent, k) for k in range(m)], axis=0)

    @abc.abstractmethod
    def apply(self, g: np.ndarray) -> None:
        """Step with the round's aggregated gradient."""

    per_gradient = False
    """True: each gradient goes to rank 0 alone as soon as it is computed; rank 0 forms the rows and
    broadcasts the combined gradient instead of an Allreduce of the agents' sums"""

    @abc.abstractmethod
    def result(self, agent: int, accepted: int) -> AgentResult:
        """The agent's round metrics, when its first ``accepted`` gradients were used."""

    @abc.abstractmethod
    def quota(self, round: int) -> int | None:
        """Gradients each agent computes in a synchronous round, or None if :meth:`done` ends the round."""

    @abc.abstractmethod
    def done(self, counts: np.ndarray, round: int) -> bool:
        """The stopping rule on the per-agent counts of finished gradients (all n agents, agent order)."""

    @abc.abstractmethod
    def combine(self, rows: np.ndarray) -> np.ndarray:
        """The round's gradient from the Allreduced rows (sum_i, m_i) of every agent, in agent order."""


def delays(cfg: Config, model: timing.TimeModel, round: int) -> Callable[[int, int], float]:
    """delay(agent, k): injected seconds before the agent's k-th gradient (real mode only)."""
    scale = cfg.time.delay_scale
    if cfg.time.mode != "real" or scale == 0:
        return lambda agent, k: 0.0
    return lambda agent, k: float(model.compute(round, agent, k + 1)[k]) * scale


def report_tag(round: int) -> int:
    return Tag.REPORT_ODD if round % 2 else Tag.REPORT


def drain(collector, total: int) -> None:
    """Rank 0's end of a round: receive what is still in flight until ``total`` messages have arrived,
    and complete its own sends. ``collector`` has ``rt``, ``inbox``, ``received``, ``_take()`` and
    ``sends``."""
    while collector.received < total:
        collector.rt.wait(collector.inbox)
        collector._take()
    for _, req in collector.sends:
        collector.rt.wait(req)


class Coordinator:
    """Rank 0's side of the collection: counts REPORTs, decides the stop, tells every rank.

    With ``size`` > 0 the messages are the gradients themselves, float64 [agent, round, k, g (size)], and
    the ones received before the stop are kept (``grads[agent][k]``). ``accept`` maps the counts at the
    stop to the accepted counts the STOPs carry (default: the counts themselves).
    """

    def __init__(
        self,
        rt,
        n: int,
        round: int,
        rule: Callable[[np.ndarray], bool],
        size: int = 0,
        accept: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.rt, self.n, self.round, self.rule, self.size = rt, n, round, rule, size
        self.accept = accept or np.copy
        self.counts = np.zeros(n, dtype=np.int64)
        self.accepted = self.counts
        self.received = 0
        self.decided = False
        self.sends: list[tuple[np.ndarray, object]] = []
        self.grads: list[list[np.ndarray]] = [[] for _ in range(n)]
        self.buf = np.empty(REPORT_LEN + size, dtype=np.float64 if size else np.int64)
        self.inbox = rt.inbox(self.buf, report_tag(round))

    def _take(self) -> None:
        agent, rnd, _ = (int(v) for v in self.buf[:REPORT_LEN])
        if rnd != self.round:
            raise RuntimeError(f"report of round {rnd} received in round {self.round}")
        self.received += 1
        if not self.decided:
            self.counts[agent] += 1
            if self.size:
                self.grads[agent].append(self.buf[REPORT_LEN:].copy())

    def poll(self) -> None:
        """Take every report that has arrived; send the STOPs as soon as the rule holds."""
        while not self.decided and self.inbox.Test():
            self._take()
            if self.rule(self.counts):
                self.decided = True
                self.accepted = self.accept(self.counts)
                for r, b in enumerate(blocks(self.n, self.rt.size)):
                    buf = self.accepted[b.start : b.stop].copy()
                    self.sends.append((buf, self.rt.isend(buf, r, Tag.STOP)))

    def rows(self) -> np.ndarray:
        """[n, size + 1]: each agent's sum of its accepted gradients (in the order computed) and their count."""
        rows = np.zeros((self.n, self.size + 1))
        for agent, m in enumerate(self.accepted):
            if m:
                rows[agent, :-1] = np.sum(self.grads[agent][:m], axis=0)
                rows[agent, -1] = m
        return rows


def collect(
    rt, worker: AggregateWorker, round: int, n: int, rule, caps: np.ndarray, delay, accept=None, planned=False
) -> tuple:
    """Compute gradients until rank 0's STOP: (accepted, computed) for the block, rank 0's coordinator,
    and the REPORT (or gradient) sends still to be completed (after rank 0's drain). ``planned``: the caps
    are a simulated plan, computed in full even when the STOP comes first (with per-gradient
    communication the plan has uploads that arrive after the deciding one; whether the STOP overtakes
    their computation must not depend on how agents share ranks)."""
    agents = worker.agents
    size = worker.size if worker.per_gradient else 0
    coord = Coordinator(rt, n, round, rule, size, accept) if rt.is_root else None
    accepted = np.zeros(len(agents), dtype=np.int64)
    stop_req = rt.irecv(accepted, Tag.STOP, source=0)
    computed = np.zeros(len(agents), dtype=np.int64)
    sends = []
    now = time.perf_counter()
    due = [now + delay(a, 0) for a in agents]
    pause = 1e-5
    while True:
        if coord is not None:
            coord.poll()
        if stop_req.Test() and not (planned and any(computed[j] < caps[a] for j, a in enumerate(agents))):
            break
        # release the sends that completed (the rest are completed after rank 0's drain)
        sends = [(m, req) for m, req in sends if not req.Test()]
        ready = [j for j in range(len(agents)) if computed[j] < caps[agents[j]]]
        now = time.perf_counter()
        wave = [j for j in ready if due[j] <= now]
        if wave:
            worker.compute_many([agents[j] for j in wave])
            for j in wave:
                header = (agents[j], round, computed[j])
                if size:
                    grad = worker.gradient(agents[j], int(computed[j]))
                    msg = np.concatenate([np.array(header, dtype=np.float64), grad])
                else:
                    msg = np.array(header, dtype=np.int64)
                sends.append((msg, rt.isend(msg, 0, report_tag(round))))
                computed[j] += 1
            now = time.perf_counter()
            for j in wave:
                due[j] = now + delay(agents[j], int(computed[j]))
            pause = 1e-5
            continue
        wait = rt.max_sleep if not ready else min(rt.max_sleep, min(due[j] for j in ready) - now)
        time.sleep(max(min(pause, wait), 1e-6))
        pause = min(2 * pause, rt.max_sleep)
    return accepted, computed, coord, sends


def compute_quota(worker: AggregateWorker, caps: np.ndarray, delay) -> np.ndarray:
    """Every hosted agent computes ``caps[agent]`` gradients, the ones due together as one batch (agents
    of one rank wait for their injected delays concurrently, as separate machines would)."""
    agents = worker.agents
    computed = np.zeros(len(agents), dtype=np.int64)
    now = time.perf_counter()
    due = [now + delay(a, 0) for a in agents]
    while True:
        ready = [j for j in range(len(agents)) if computed[j] < caps[agents[j]]]
        if not ready:
            return computed
        wait = min(due[j] for j in ready) - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        now = time.perf_counter()
        wave = [j for j in ready if due[j] <= now]
        worker.compute_many([agents[j] for j in wave])
        now = time.perf_counter()
        for j in wave:
            computed[j] += 1
            due[j] = now + delay(agents[j], int(computed[j]))


def aggregate_traffic(
    values: dict[str, np.ndarray], payload: int, up_kind: str, down_kind: str, times: dict | None = None
) -> Traffic:
    """A round's message log: each agent's Allreduce share both ways, then its REPORTs and its STOP
    (``times``: their send and arrival times on the simulated network, if any)."""
    traffic = Traffic()
    reports = values["control_messages"].astype(int)
    t = times or {}
    nan = np.nan
    for agent in range(len(reports)):
        share = (t.get("reduce_sent", nan), t.get("reduce_arrived", nan))
        traffic.add(agent, UPLINK, up_kind, payload, *share)
        traffic.add(agent, DOWNLINK, down_kind, payload, *share)
        if reports[agent]:
            sent = t["report_sent"][agent] if times else nan
            arrived = t["report_arrived"][agent] if times else nan
            traffic.add([agent] * (reports[agent] - 1), UPLINK, CONTROL, REPORT_BYTES, sent, arrived)
            stop = (t["stop_sent"], t["stop_arrived"][agent]) if times else (nan, nan)
            traffic.add(agent, DOWNLINK, CONTROL, STOP_BYTES, *stop)
    return traffic


def upload_traffic(values: dict[str, np.ndarray], up_bytes: int, down_bytes: int, times: dict | None) -> Traffic:
    """A round's message log with per-gradient communication: every gradient an agent sent, its STOP, and
    the broadcast of the combined gradient (``times``: send and arrival times on the simulated network)."""
    traffic = Traffic()
    nan = np.nan
    for agent, count in enumerate(values["uplink_messages"].astype(int)):
        sent = times["upload_sent"][agent] if times else nan
        arrived = times["upload_arrived"][agent] if times else nan
        traffic.add([agent] * count, UPLINK, "gradient", up_bytes, sent, arrived)
        stop = (times["stop_sent"], times["stop_arrived"][agent]) if times else (nan, nan)
        traffic.add(agent, DOWNLINK, CONTROL, STOP_BYTES, *stop)
        bcast = (times["bcast_sent"], times["bcast_arrived"][agent]) if times else (nan, nan)
        traffic.add(agent, DOWNLINK, "gradient_mean", down_bytes, *bcast)
    return traffic


class AsyncRounds(Protocol):
    """What the asynchronous protocols share: the time model that plans their rounds, and the round's end."""

    diagnostics = ("gradients",)

    def __init__(self, spec, ctx, rt):
        super().__init__(spec, ctx, rt)
        cfg = ctx.cfg
        d = spec.policy_size(cfg, ctx.env_spec)
        self.model = timing.TimeModel(cfg.time, ctx.n, ctx.seed, ctx.trial, d)
        self.simulated = cfg.time.mode == "simulated"
        self.links = (
            Links(cfg.time, ctx.n, ctx.seed, ctx.trial, d) if self.simulated and cfg.time.network != "kappa" else None
        )
        """the simulated network's links (None: communication takes kappa)"""
        self.sim_time = 0.0 if self.simulated else np.nan

    def finish(
        self, columns: Sequence[str], stats: np.ndarray, collector: Any, sends: list, duration: float
    ) -> dict[str, np.ndarray] | None:
        """End a round: gather every rank's statistics, let rank 0 (``collector``) receive the messages of
        dropped work still in flight, complete this rank's sends; on rank 0 the round's values."""
        rt = self.rt
        stats = rt.gather_rows(stats, self.ctx.n)
        if collector is not None:
            drain(collector, int(stats[:, columns.index("episodes")].sum()))
        # only now: a message too large for an eager send completes when rank 0 receives it, which for
        # dropped work happens in the drain above, after the gather
        for _, req in sends:
            rt.wait(req)
        if not rt.is_root:
            return None
        if self.simulated:
            self.sim_time += duration
        values = round_values(columns, stats)
        values["rank"] = block_owners(self.ctx.n, rt.size)
        values["sim_time"] = self.sim_time
        return values


class AggregateRounds(AsyncRounds):
    """Aggregation rounds of one trial (see the module docstring)."""

    Learner = AggregateLearner
    Worker = AggregateWorker

    def plan(self, round: int) -> tuple:
        """(rule for rank 0, caps per agent, simulated duration, the messages' times on a network of links,
        and the map from rank 0's counts at the stop to the accepted counts) of a round; no rule: a
        synchronous round."""
        n, model, worker = self.ctx.n, self.model, self.worker
        q = worker.quota(round)
        if q is not None:
            busy = [float(model.compute(round, i, q).sum()) for i in range(n)]
            if self.links is None:
                return None, np.full(n, q), max(busy) + model.allreduce(round), None, None
            start = self.sim_time + max(busy)
            times = {"reduce_sent": start, "reduce_arrived": start + self._reduce()}
            return None, np.full(n, q), times["reduce_arrived"] - self.sim_time, times, None
        rule = lambda counts: worker.done(counts, round)  # noqa: E731
        if not self.simulated:
            return rule, np.full(n, UNLIMITED), np.nan, None, None
        if worker.per_gradient:
            return self._plan_uploads(round, rule)
        if self.links is None:
            plan, t_stop = plan_first(model, round, rule)
            times = None
            duration = t_stop + model.allreduce(round)
        else:
            plan, t_stop, sent, arrived = plan_reports(model, self.links, round, rule, REPORT_BYTES)
            stop = np.array([self.links.down(round, i, STOP_BYTES)[0] for i in range(n)])
            start = self.sim_time + t_stop + float(np.max(stop))
            times = {
                "report_sent": [self.sim_time + s for s in sent],
                "report_arrived": [self.sim_time + a for a in arrived],
                "stop_sent": self.sim_time + t_stop,
                "stop_arrived": self.sim_time + t_stop + stop,
                "reduce_sent": start,
                "reduce_arrived": start + self._reduce(),
            }
            duration = times["reduce_arrived"] - self.sim_time
        return (lambda counts: bool(np.array_equal(counts, plan))), plan, duration, times, None

    def _plan_uploads(self, round: int, rule) -> tuple:
        """:meth:`plan` of a simulated round with per-gradient communication: every gradient takes
        kappa_i / 2 to the learner (as AFedPG's), or its link's time for its bytes; the STOPs and the
        broadcast of the combined gradient leave at the deciding arrival (with kappa the broadcast takes
        the slowest kappa_i / 2). Agents compute and send the gradients whose upload had begun by then;
        the ones the plan does not accept arrive too late and are dropped."""
        n, model, links = self.ctx.n, self.model, self.links
        nbytes = (self.worker.size + REPORT_LEN) * 8
        if links is None:
            transit = lambda i, count: model.comm(round, i, count) / 2  # noqa: E731
        else:
            transit = lambda i, count: links.up(round, i, np.full(count, nbytes))  # noqa: E731
        plan, begun, t_stop, sent, arrived = plan_uploads(model, round, rule, transit)
        times = None
        if links is None:
            duration = t_stop + model.allreduce(round) / 2
        else:
            down = np.array([links.down(round, i, [STOP_BYTES, self.worker.size * 8]) for i in range(n)])
            start = self.sim_time + t_stop
            times = {
                "upload_sent": [self.sim_time + s for s in sent],
                "upload_arrived": [self.sim_time + a for a in arrived],
                "stop_sent": start,
                "stop_arrived": start + down[:, 0],
                "bcast_sent": start,
                "bcast_arrived": start + down[:, 1],
            }
            duration = t_stop + float(np.max(down[:, 1]))
        return (lambda counts: bool(np.all(counts >= plan))), begun, duration, times, lambda counts: plan.copy()

    def _reduce(self) -> float:
        """Seconds of the round's Allreduce of one (d + 1)-float64 row per agent on the links."""
        return ring_allreduce(self.ctx.n, (self.worker.size + 1) * 8, *self.links.alpha_beta())

    def run(self, round: int) -> list[RoundRecord] | None:
        rt, worker, n = self.rt, self.worker, self.ctx.n
        rule, caps, duration, times, accept = self.plan(round)
        delay = delays(self.ctx.cfg, self.model, round)
        worker.begin(round)
        coord, sends = None, []
        if rule is None:
            computed = compute_quota(worker, caps, delay)
            accepted = computed.copy()
        else:
            accepted, computed, coord, sends = collect(rt, worker, round, n, rule, caps, delay, accept, self.simulated)

        if worker.per_gradient:
            # rank 0 holds every accepted gradient: it forms the rows and sends the combined gradient down
            g = rt.broadcast(worker.combine(coord.rows()) if rt.is_root else None, np.dtype(np.float64))
        else:
            rows = np.zeros((n, worker.size + 1))
            for j, agent in enumerate(worker.agents):
                m = int(accepted[j])
                if m:
                    rows[agent, :-1] = worker.gradient_sum(agent, m)
                    rows[agent, -1] = m
            g = worker.combine(rt.allreduce_sum(rows))
        worker.apply(g)

        stats = np.zeros((len(worker.agents), len(COLUMNS)))
        for j, agent in enumerate(worker.agents):
            res = worker.result(agent, int(accepted[j]))
            stats[j] = (*result_row(res), *self._traffic_row(int(computed[j]), rule is not None), accepted[j])
        values = self.finish(COLUMNS, stats, coord, sends, duration)
        if values is None:
            return None
        self.learner.apply(g)
        wire = self.spec.wire
        if worker.per_gradient:
            values["downlink_bytes"] = np.full(n, worker.size * 8)
            traffic = upload_traffic(values, (worker.size + REPORT_LEN) * 8, worker.size * 8, times)
        else:
            payload = (worker.size + 1) * 8
            values["downlink_bytes"] = np.full(n, payload)
            traffic = aggregate_traffic(values, payload, wire.uplink_kind, wire.downlink_kind, times)
        return [RoundRecord(values, traffic)]

    def _traffic_row(self, computed: int, controlled: bool) -> tuple[int, int, int, int]:
        """An agent's (uplink messages, uplink bytes, control messages, control bytes) in a round where it
        computed ``computed`` gradients; ``controlled``: rank 0 ended the round with STOPs."""
        if self.worker.per_gradient:  # every gradient goes up alone, with its header; the STOP
            return computed, computed * (self.worker.size + REPORT_LEN) * 8, 1, STOP_BYTES
        if not controlled:  # the Allreduce share only
            return 1, (self.worker.size + 1) * 8, 0, 0
        return 1, (self.worker.size + 1) * 8, computed + 1, computed * REPORT_BYTES + STOP_BYTES
