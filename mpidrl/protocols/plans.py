"""The simulated clock's plans: which gradients finish, and when, before a round's stopping rule holds.

Pure functions of a :class:`mpidrl.timing.TimeModel` (and, for messages that travel, the links): each
agent computes back to back with the durations the model draws for it, completions or arrivals are taken
in time order with ties broken by the agent index, and the plan is the count per agent when ``done``
first holds. :mod:`mpidrl.protocols.aggregate` runs the plan in simulated mode (every agent computes
exactly its planned gradients), :mod:`mpidrl.theory` and ``analysis/rennala_theory.py`` compare it with
the closed forms.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np

from mpidrl import timing
from mpidrl.network import Links


def plan_first(
    model: timing.TimeModel, round: int, done: Callable[[np.ndarray], bool], cap: int | None = None
) -> tuple[np.ndarray, float]:
    """Which gradients finish first: (count per agent, time of the last one counted) from the round's start.

    Every agent computes back to back; completions are taken in time order, ties broken by the agent
    index, until ``done(counts)`` holds. ``cap`` bounds each agent's count (synchronous rounds).
    """
    n = model.n
    counts = np.zeros(n, dtype=np.int64)
    chunk = 64
    durations = [model.compute(round, i, chunk) for i in range(n)]
    heap = [(float(durations[i][0]), i) for i in range(n) if cap is None or cap > 0]
    heapq.heapify(heap)
    now = 0.0
    while not done(counts):
        if not heap:
            raise RuntimeError("the stopping rule cannot hold with the agents' caps")
        now, i = heapq.heappop(heap)
        counts[i] += 1
        k = int(counts[i])
        if cap is not None and k >= cap:
            continue
        if k >= len(durations[i]):
            durations[i] = model.compute(round, i, 2 * len(durations[i]))
        heapq.heappush(heap, (now + float(durations[i][k]), i))
    return counts, now


def take_arrivals(
    first: Sequence[float], next_arrival: Callable[[int, float], float], done: Callable[[np.ndarray], bool]
) -> tuple[np.ndarray, float]:
    """The agents' messages taken in order of arrival (ties by agent index) until ``done(counts)`` holds:
    (count per agent, time of the deciding arrival). ``first[i]`` is agent i's first arrival;
    ``next_arrival(i, now)`` gives its next one once the one before was taken at ``now``."""
    counts = np.zeros(len(first), dtype=np.int64)
    heap = [(t, i) for i, t in enumerate(first)]
    heapq.heapify(heap)
    now = 0.0
    while not done(counts):
        now, i = heapq.heappop(heap)
        counts[i] += 1
        heapq.heappush(heap, (next_arrival(i, now), i))
    return counts, now


def plan_reports(
    model: timing.TimeModel, links: Links, round: int, done: Callable[[np.ndarray], bool], report_bytes: int
) -> tuple[np.ndarray, float, list[np.ndarray], list[np.ndarray]]:
    """:func:`plan_first` on a network of links: the learner counts a gradient when its REPORT arrives.

    Every agent computes back to back; the REPORT of each gradient takes the agent's uplink time for
    ``report_bytes``, and an agent's link delivers in order (a report never overtakes the one before);
    arrivals are taken in time order (ties by agent index) until ``done(counts)`` holds. Returns the counts,
    the time of the deciding arrival, and each agent's send and arrival times of its counted reports.
    """
    n = model.n
    chunk = 64
    durations = [model.compute(round, i, chunk) for i in range(n)]
    transits = [links.up(round, i, np.full(chunk, report_bytes)) for i in range(n)]
    sent: list[list[float]] = [[float(durations[i][0])] for i in range(n)]
    arrived: list[list[float]] = [[float(durations[i][0] + transits[i][0])] for i in range(n)]

    def next_arrival(i: int, now: float) -> float:
        k = len(sent[i])
        if k >= len(durations[i]):  # draw twice as many: the first ones come again
            durations[i] = model.compute(round, i, 2 * len(durations[i]))
            transits[i] = links.up(round, i, np.full(2 * len(transits[i]), report_bytes))
        finished = sent[i][-1] + float(durations[i][k])
        sent[i].append(finished)
        arrived[i].append(max(now, finished + float(transits[i][k])))
        return arrived[i][-1]

    counts, now = take_arrivals([a[0] for a in arrived], next_arrival, done)
    keep = [int(c) for c in counts]
    return (
        counts,
        now,
        [np.array(sent[i][:c]) for i, c in enumerate(keep)],
        [np.array(arrived[i][:c]) for i, c in enumerate(keep)],
    )


def plan_uploads(
    model: timing.TimeModel, round: int, done: Callable[[np.ndarray], bool], transit: Callable[[int, int], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, float, list[np.ndarray], list[np.ndarray]]:
    """A round of per-gradient communication on the virtual clock.

    Every agent computes back to back; each gradient then travels to the learner alone, taking
    ``transit(agent, count)[k]`` seconds, and an agent's link carries one gradient at a time (an upload
    starts when both the gradient and the link are free). Arrivals are taken in time order (ties by
    agent index) until ``done(counts)`` holds. Returns the accepted count per agent, the count of
    uploads each agent had begun by then (the ones beyond the accepted arrive too late and are dropped;
    a gradient still waiting for its link is discarded unsent, and not computed here), the time of the
    deciding arrival, and the send and arrival times of every upload begun.
    """
    n = model.n
    chunk = 64
    h = [np.cumsum(model.compute(round, i, chunk)) for i in range(n)]
    up = [transit(i, chunk) for i in range(n)]
    sent: list[list[float]] = [[float(h[i][0])] for i in range(n)]
    arrived: list[list[float]] = [[sent[i][0] + float(up[i][0])] for i in range(n)]

    def extend(i: int) -> None:  # the next gradient of agent i: compute, wait for the link, upload
        k = len(sent[i])
        if k >= len(h[i]):  # draw twice as many: the first ones come again
            h[i] = np.cumsum(model.compute(round, i, 2 * len(h[i])))
            up[i] = transit(i, 2 * len(up[i]))
        sent[i].append(max(float(h[i][k]), arrived[i][-1]))
        arrived[i].append(sent[i][-1] + float(up[i][k]))

    def next_arrival(i: int, now: float) -> float:
        extend(i)
        return arrived[i][-1]

    counts, now = take_arrivals([a[0] for a in arrived], next_arrival, done)
    begun = counts.copy()  # the accepted, and the uploads begun before the deciding arrival
    for i in range(n):
        while True:
            k = int(begun[i])
            if k >= len(sent[i]):
                extend(i)
            if sent[i][k] >= now:
                break
            begun[i] += 1
    keep = [int(c) for c in begun]
    return (
        counts,
        begun,
        now,
        [np.array(sent[i][:c]) for i, c in enumerate(keep)],
        [np.array(arrived[i][:c]) for i, c in enumerate(keep)],
    )
