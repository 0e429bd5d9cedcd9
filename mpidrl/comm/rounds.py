"""Synchronous rounds: downlink broadcast, every hosted agent acts, uplink gather of optional messages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpidrl.algorithms import AlgorithmSpec, Learner, Worker
from mpidrl.comm import AgentClaims, Runtime, block_owners, blocks

STAT_COLUMNS = ("reward", "return", "episodes", "steps", "uplink_messages", "uplink_bytes")
"""Columns of the per-agent statistics row every rank sends each round; diagnostics follow."""
_NBYTES = STAT_COLUMNS.index("uplink_bytes")
_SENT = STAT_COLUMNS.index("uplink_messages")


@dataclass
class RoundResult:
    """What rank 0 knows after a synchronous round."""

    stats: np.ndarray
    """[n, len(STAT_COLUMNS) + diagnostics] per-agent statistics, in agent order"""
    messages: list[tuple[int, np.ndarray]]
    """(agent, payload) of every agent that sent, in agent order"""
    downlink_bytes: int
    """payload bytes each agent received in the round's broadcast"""
    ranks: np.ndarray
    """[n] the rank that ran each agent's round"""


def sync_round(
    rt: Runtime,
    spec: AlgorithmSpec,
    learner: Learner | None,
    worker: Worker,
    round: int,
    n: int,
    claims: AgentClaims | None = None,
) -> RoundResult | None:
    """One synchronous round: broadcast, act, gather. Returns the result on rank 0, None elsewhere.

    Without ``claims`` each rank runs its block of agents; with them (dynamic placement, for algorithms
    whose workers keep no per-agent state) each rank runs the agents it claims, and the rows it gathers
    carry their agent indices so rank 0 can put everything back in agent order.
    """
    payload = rt.broadcast(learner.downlink() if rt.is_root else None, spec.downlink_dtype)
    downlink_bytes = int(payload.nbytes)
    worker.receive(payload)

    width = len(STAT_COLUMNS) + len(spec.diagnostics)
    agents = worker.agents if claims is None else claims.claims(n)
    rows, chunks, ran = [], [], []
    for agent in agents:
        res = worker.act(round, agent)
        nbytes, sent = 0, 0
        if res.message is not None:
            msg = np.ascontiguousarray(res.message, dtype=spec.uplink_dtype).reshape(-1)
            chunks.append(msg.view(np.uint8))
            nbytes, sent = msg.nbytes, 1
        rows.append((res.reward, res.ret, res.episodes, res.steps, sent, nbytes, *res.diagnostics))
        ran.append(agent)
    data = np.concatenate(chunks) if chunks else np.empty(0, np.uint8)

    if claims is None:
        stats = rt.gather_rows(np.array(rows, dtype=np.float64).reshape(-1, width), n)
        counts = [int(stats[b, _NBYTES].sum()) for b in blocks(n, rt.size)] if rt.is_root else None
        data = rt.gather_bytes(data, counts)
        order, ranks = None, block_owners(n, rt.size)
    else:
        table = (
            np.column_stack([np.array(rows, dtype=np.float64).reshape(-1, width), ran])
            if rows
            else np.empty((0, width + 1))
        )
        sizes = rt.gather_counts([len(rows), data.size])
        table = rt.gather_rows(table, n, None if sizes is None else sizes[:, 0].tolist())
        data = rt.gather_bytes(data, None if sizes is None else sizes[:, 1].tolist())
        if rt.is_root:
            stats, order = table[:, :width], table[:, width].astype(np.int64)
            ranks = np.repeat(np.arange(rt.size), sizes[:, 0])
    if not rt.is_root:
        return None

    messages, pos = [], 0
    for j in range(n):
        nbytes = int(stats[j, _NBYTES])
        if stats[j, _SENT]:
            messages.append(
                (j if order is None else int(order[j]), data[pos : pos + nbytes].copy().view(spec.uplink_dtype))
            )
        pos += nbytes
    if order is not None:
        if sorted(order.tolist()) != list(range(n)):
            raise RuntimeError(
                f"round {round}: the ranks ran agents {sorted(order.tolist())}, not each of 0..{n - 1} once"
            )
        stats, ranks = stats[np.argsort(order)], ranks[np.argsort(order)]
        messages.sort(key=lambda item: item[0])
    return RoundResult(stats, messages, downlink_bytes, ranks)


def batch_round(rt: Runtime, spec: AlgorithmSpec, learner, worker, round: int, n: int) -> list[RoundResult] | None:
    """One synchronous round of a batch of B trials (``[run] trial_batch``), with one collective of each
    kind for the whole batch: the broadcast carries the B payloads, the gathers every (agent, trial)'s
    statistics row and message. Returns one :class:`RoundResult` per trial on rank 0, None elsewhere.

    Accounting is per trial, as if the trials ran one by one: each agent of trial b receives trial b's
    payload (a B-th of the broadcast) and sends its own message.
    """
    n_trials = len(worker.trials)
    payload = rt.broadcast(learner.downlink() if rt.is_root else None, spec.downlink_dtype)
    downlink_bytes = int(payload.nbytes) // n_trials
    worker.receive(payload)

    rows, messages = worker.act(round)  # rows [hosted agents, B, width]; messages agent-major
    chunks = [
        np.ascontiguousarray(m, dtype=spec.uplink_dtype).reshape(-1).view(np.uint8) for m in messages if m is not None
    ]
    width = rows.shape[2]
    stats = rt.gather_rows(rows.reshape(len(worker.agents), -1), n)
    counts = None
    if rt.is_root:
        stats = stats.reshape(n, n_trials, width)
        counts = [int(stats[b, :, _NBYTES].sum()) for b in blocks(n, rt.size)]
    data = rt.gather_bytes(np.concatenate(chunks) if chunks else np.empty(0, np.uint8), counts)
    if not rt.is_root:
        return None

    received: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n_trials)]
    records = data.view(spec.uplink_dtype)  # every message is whole records: slice them out of one view
    sizes = stats[:, :, _NBYTES].astype(np.int64) // spec.uplink_dtype.itemsize
    ends = np.cumsum(sizes).reshape(n, n_trials).tolist()
    sizes, sent = sizes.tolist(), stats[:, :, _SENT].tolist()
    for agent in range(n):
        for b in range(n_trials):
            if sent[agent][b]:
                received[b].append((agent, records[ends[agent][b] - sizes[agent][b] : ends[agent][b]]))
    owners = block_owners(n, rt.size)
    return [RoundResult(stats[:, b], received[b], downlink_bytes, owners) for b in range(n_trials)]
