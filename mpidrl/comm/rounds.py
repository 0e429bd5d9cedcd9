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
