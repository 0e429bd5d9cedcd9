"""Round trips: one gradient up, one reply down, the learner stepping on every arrival (AFedPG).

A round (:class:`RoundTrips`), on every rank at once::

    rank 0 broadcasts the learner's state (``learner.downlink()``); every agent starts from it
    agents: compute a gradient from the state they hold (``worker.compute_many``: every agent of the rank
            that holds its reply, as one batch), Isend it (GRADIENT:
            [agent, k, g], d + 2 float64), wait for the REPLY ([agent, state], 1 + len(state) float64),
            repeat; with ``delay`` seconds injected before each gradient (real mode)
    rank 0: applies each arriving gradient (``learner.apply``, which returns the state to reply with; real
            mode: arrival order; simulated mode: the order the virtual clock gives) and replies to its
            agent; after M updates (``worker.updates(round)``) it Isends each rank a STOP carrying, per
            agent, the number of replies sent (8 bytes each)
    agents: on STOP, receive the replies still in flight and stop; gradients not applied are dropped
    rank 0 gathers the per-agent statistics and receives the gradients still in flight

Everything is polled with polite sleeps. Payload is every GRADIENT and REPLY and the broadcast; the STOP
is control traffic.

Simulated time (:func:`plan_round_trips`): agent i computes a gradient (h), sends it (kappa / 2), the
learner applies it on arrival (ties by agent index) and the reply takes kappa / 2 more; then the agent
starts its next gradient. The round ends with the last of its M arrivals plus the closing broadcast
(half the slowest kappa).
"""

from __future__ import annotations

import abc
import heapq
import time
from collections.abc import Sequence

import numpy as np

from mpidrl import timing
from mpidrl.comm import Tag, block_owners, blocks
from mpidrl.network import Links
from mpidrl.protocols.aggregate import STOP_BYTES, UNLIMITED, AsyncRounds, delays
from mpidrl.protocols.base import (
    RESULT_COLUMNS,
    AgentResult,
    LearnerBase,
    RoundRecord,
    Stateful,
    Traffic,
    result_row,
)
from mpidrl.records import CONTROL, DOWNLINK, UPLINK

COLUMNS = (
    *RESULT_COLUMNS,
    "uplink_messages",
    "uplink_bytes",
    "downlink_bytes",
    "control_messages",
    "control_bytes",
    "gradients",
)
"""Per-agent statistics of a round of round trips."""


class RoundTripLearner(LearnerBase):
    """The learner: one step per arriving gradient, replying with its new state."""

    @abc.abstractmethod
    def downlink(self) -> np.ndarray:
        """The state every agent starts the round from (broadcast)."""

    @abc.abstractmethod
    def apply(self, g: np.ndarray) -> np.ndarray:
        """Step with one agent's gradient; the state to reply to that agent with (the same length as
        :meth:`downlink`)."""


class RoundTripWorker(Stateful):
    """A block of agents, each holding the last state the learner sent it."""

    def __init__(self, agents: Sequence[int]):
        self.agents = list(agents)

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """d, the length of a gradient (the state is 2 d + 1 float64)."""

    @abc.abstractmethod
    def begin(self, round: int, state: np.ndarray) -> None:
        """Start a round from the learner's broadcast state."""

    @abc.abstractmethod
    def receive(self, agent: int, state: np.ndarray) -> None:
        """The learner's reply to ``agent``."""

    @abc.abstractmethod
    def compute(self, agent: int) -> np.ndarray:
        """The agent's next gradient, from the state it holds."""

    def compute_many(self, agents: Sequence[int]) -> list[np.ndarray]:
        """The next gradient of each of ``agents`` (distinct); override to compute them as one batch."""
        return [self.compute(agent) for agent in agents]

    @abc.abstractmethod
    def result(self, agent: int, applied: int) -> AgentResult:
        """The agent's round metrics, when its first ``applied`` gradients were used."""

    @abc.abstractmethod
    def updates(self, round: int) -> int:
        """M, the learner updates that make up ``round``."""


def plan_round_trips(
    model: timing.TimeModel, round: int, m: int, links: Links | None = None, sizes: tuple[int, int, int] = (0, 0, 0)
) -> tuple[np.ndarray, np.ndarray, float, dict | None]:
    """A round on the virtual clock: (arrival order of the M gradients, count per agent, last arrival, and on
    a network of links each message's send and arrival times, else None).

    With kappa, a gradient takes kappa_i / 2 up and its reply kappa_i / 2 down. With links (``sizes``: the
    bytes of a gradient, a reply and the state broadcast), each agent first receives the round's state,
    then its gradients and replies take its link's times for their sizes.
    """
    n = model.n
    chunk = m + 1
    h = [model.compute(round, i, chunk) for i in range(n)]
    if links is None:
        kappa = [model.comm(round, i, chunk) for i in range(n)]
        up, down, begin = [k / 2 for k in kappa], [k / 2 for k in kappa], np.zeros(n)
    else:
        gradient, reply, state = sizes
        up = [links.up(round, i, np.full(chunk, gradient)) for i in range(n)]
        down_all = [links.down(round, i, np.array([state, *[reply] * chunk])) for i in range(n)]
        begin = np.array([d[0] for d in down_all])
        down = [d[1:] for d in down_all]
    counts = np.zeros(n, dtype=np.int64)
    sent = [[float(begin[i] + h[i][0])] for i in range(n)]
    heap = [(sent[i][0] + float(up[i][0]), i) for i in range(n)]
    heapq.heapify(heap)
    order, now, arrived = [], 0.0, [[] for _ in range(n)]
    while len(order) < m:
        now, i = heapq.heappop(heap)
        order.append(i)
        arrived[i].append(now)
        k = int(counts[i])
        counts[i] += 1
        start = now + float(down[i][k])
        sent[i].append(start + float(h[i][k + 1]))
        heapq.heappush(heap, (sent[i][-1] + float(up[i][k + 1]), i))
    if links is None:
        return np.array(order), counts, now, None
    times = {
        "begin": begin,
        "sent": [np.array(sent[i][: counts[i]]) for i in range(n)],
        "arrived": [np.array(arrived[i]) for i in range(n)],
        "replied": [np.array(arrived[i]) + down[i][: counts[i]] for i in range(n)],
        "stop": np.array([links.down(round, i, np.array([0.0] * chunk + [STOP_BYTES]))[-1] for i in range(n)]),
    }
    return np.array(order), counts, now, times


class _Replies:
    """Rank 0's side: takes gradients, steps, replies, and stops the round after M updates."""

    def __init__(self, rt, learner: RoundTripLearner, n: int, size: int, m: int, order):
        self.rt, self.learner, self.n, self.m, self.order = rt, learner, n, m, order
        self.owner = block_owners(n, rt.size)
        self.buf = np.empty(size + 2)
        self.inbox = rt.inbox(self.buf, Tag.GRADIENT)
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

    def poll(self) -> None:
        while not self.done and self.inbox.Test():
            self._take()
        while not self.done and self.pending:
            want = None if self.order is None else int(self.order[self.updates])
            pos = next((p for p, (a, _) in enumerate(self.pending) if want is None or a == want), None)
            if pos is None:
                return
            agent, g = self.pending.pop(pos)
            reply = self.learner.apply(g)
            self.applied[agent] += 1
            self.updates += 1
            msg = np.concatenate([[float(agent)], reply])
            self.sends.append((msg, self.rt.isend(msg, int(self.owner[agent]), Tag.REPLY)))
            if self.done:
                for r, b in enumerate(blocks(self.n, self.rt.size)):
                    buf = self.applied[b.start : b.stop].copy()
                    self.sends.append((buf, self.rt.isend(buf, r, Tag.STOP)))


def roundtrip_traffic(
    values: dict[str, np.ndarray],
    up_kind: str,
    down_kind: str,
    state_bytes: int,
    reply_bytes: int,
    start: float = np.nan,
    times: dict | None = None,
) -> Traffic:
    """A round's message log: each agent's gradients up, the state it started from and each reply down, its
    STOP (``times``: their times on the simulated network from the round's ``start``, if any)."""
    traffic = Traffic()
    keys = ("sent", "arrived", "begin", "replied")
    end = start + max((a[-1] for a in times["arrived"] if a.size), default=0.0) if times else np.nan
    for agent, sent in enumerate(values["uplink_messages"].astype(int).tolist()):
        replies = int(values["gradients"][agent])
        when = {key: start + times[key][agent] for key in keys} if times else dict.fromkeys(keys, np.nan)
        started = start if times else np.nan
        if sent:
            grad = int(values["uplink_bytes"][agent]) // sent
            traffic.add([agent] * sent, UPLINK, up_kind, grad, when["sent"], when["arrived"])
        traffic.add(agent, DOWNLINK, down_kind, state_bytes, started, when["begin"])
        if replies:
            traffic.add([agent] * replies, DOWNLINK, down_kind, reply_bytes, when["arrived"], when["replied"])
        stop = end + times["stop"][agent] if times else np.nan
        traffic.add(agent, DOWNLINK, CONTROL, STOP_BYTES, end, stop)
    return traffic


class RoundTrips(AsyncRounds):
    """Rounds of round trips of one trial (see the module docstring)."""

    Learner = RoundTripLearner
    Worker = RoundTripWorker

    def run(self, round: int) -> list[RoundRecord] | None:
        rt, worker, n = self.rt, self.worker, self.ctx.n
        m = worker.updates(round)
        order, caps, duration, times = None, np.full(n, UNLIMITED), np.nan, None
        start = self.sim_time
        if self.simulated:
            size = worker.size
            sizes = ((size + 2) * 8, (2 * size + 2) * 8, (2 * size + 1) * 8)  # gradient, reply, state
            order, caps, t_last, times = plan_round_trips(self.model, round, m, self.links, sizes)
            # with kappa the round also pays the next round's broadcast (the slowest kappa / 2); with links
            # each round begins with its own broadcast, inside t_last
            duration = t_last + (self.model.allreduce(round) / 2 if self.links is None else 0.0)
        delay = delays(self.ctx.cfg, self.model, round)

        state = rt.broadcast(self.learner.downlink() if rt.is_root else None, np.dtype(np.float64))
        worker.begin(round, state)
        size, agents = worker.size, worker.agents
        index = {a: j for j, a in enumerate(agents)}
        lead = _Replies(rt, self.learner, n, size, m, order) if rt.is_root else None
        stop = np.zeros(len(agents), dtype=np.int64)
        stop_req = rt.irecv(stop, Tag.STOP, source=0)
        rbuf = np.empty(state.size + 1)
        replies = rt.inbox(rbuf, Tag.REPLY, source=0)
        got = np.zeros(len(agents), dtype=np.int64)
        computed = np.zeros(len(agents), dtype=np.int64)
        waiting = np.zeros(len(agents), dtype=bool)
        now = time.perf_counter()
        due = [now + delay(a, 0) for a in agents]
        sends, pause = [], 1e-5

        def take_reply() -> None:
            j = index[int(rbuf[0])]
            worker.receive(agents[j], rbuf[1:])
            got[j] += 1
            waiting[j] = False
            due[j] = time.perf_counter() + delay(agents[j], int(computed[j]))

        while True:
            if lead is not None:
                lead.poll()
            while replies.Test():
                take_reply()
            if stop_req.Test():
                break
            now = time.perf_counter()
            ready = [
                j for j in range(len(agents)) if not waiting[j] and computed[j] < caps[agents[j]] and due[j] <= now
            ]
            if ready:  # every agent holding a reply and due computes, as one batch
                for j, g in zip(ready, worker.compute_many([agents[j] for j in ready])):
                    msg = np.concatenate([[float(agents[j]), float(computed[j])], g])
                    sends.append((msg, rt.isend(msg, 0, Tag.GRADIENT)))
                    computed[j] += 1
                    waiting[j] = True
                pause = 1e-5
                continue
            time.sleep(pause)
            pause = min(2 * pause, rt.max_sleep)
        while np.any(got < stop):
            rt.wait(replies)
            take_reply()

        stats = np.zeros((len(agents), len(COLUMNS)))
        for j, agent in enumerate(agents):
            res = worker.result(agent, int(stop[j]))
            down = state.nbytes + int(got[j]) * rbuf.nbytes
            up = int(computed[j]) * (size + 2) * 8
            stats[j] = (*result_row(res), computed[j], up, down, 1, STOP_BYTES, stop[j])
        values = self.finish(COLUMNS, stats, lead, sends, duration)
        if values is None:
            return None
        wire = self.spec.wire
        traffic = roundtrip_traffic(
            values, wire.uplink_kind, wire.downlink_kind, state.nbytes, rbuf.nbytes, start, times
        )
        return [RoundRecord(values, traffic)]
