"""Synchronous rounds: a downlink broadcast, every agent acts, an uplink gather of optional messages.

A round, as :class:`SyncRounds` runs it::

    payload = learner.downlink()             # rank 0; broadcast to every rank
    worker.receive(payload)                  # every rank, once per round
    result = worker.act(round, agent)        # for each logical agent the rank runs
    learner.update(round, messages)          # rank 0, messages = [(agent, result.message), ...]

Messages are 1-D numpy arrays of the spec's ``wire.uplink_dtype``; their ``nbytes`` is what is counted,
by the rank that packs them. The broadcast is counted once per receiving agent. The per-agent row of
statistics that travels with the gather (and carries each message's length) is framing the simulation
adds to share one collective among a block of agents, not an algorithm message, and is not counted.

Placement: each rank runs its block of agents, or, with dynamic placement (algorithms whose workers keep
no per-agent state), the agents it claims (:class:`mpidrl.comm.AgentClaims`); the rows it gathers then
carry their agent indices so rank 0 can put everything back in agent order.

Simulated time: a round lasts ``max_i(h_i * episodes_i) + max_i(kappa_i)``, the slowest agent's
computation, then the slowest participant's communication, or with a network of links the slowest
agent's download, computation and upload (:class:`mpidrl.network.SyncClock`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from mpidrl.comm import block_owners, blocks
from mpidrl.network import SyncClock
from mpidrl.protocols.base import (
    RESULT_COLUMNS,
    AgentResult,
    Context,
    LearnerBase,
    Protocol,
    RoundRecord,
    Stateful,
    Traffic,
    result_row,
    round_values,
)
from mpidrl.records import DOWNLINK, UPLINK

STAT_COLUMNS = (*RESULT_COLUMNS, "uplink_messages", "uplink_bytes")
"""Columns of the per-agent statistics row every rank sends each round; diagnostics follow."""
NBYTES = STAT_COLUMNS.index("uplink_bytes")
SENT = STAT_COLUMNS.index("uplink_messages")


class SyncLearner(LearnerBase):
    """The central learner (rank 0): turns received messages into the next broadcast."""

    downlink_kind: str | None = None
    """what the broadcast carries when the config changes it (else the spec's ``wire.downlink_kind``)"""

    @abc.abstractmethod
    def downlink(self) -> np.ndarray:
        """The payload to broadcast to every agent before the next round."""

    @abc.abstractmethod
    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        """Update from the round's messages, given in increasing agent order."""


class SyncWorker(Stateful):
    """The agent side for a block of logical agents hosted by one rank.

    Everything it draws at random comes from :mod:`mpidrl.rng` keyed by the agent index, so the block
    boundaries do not change any result.
    """

    def __init__(self, ctx: Context, agents: Sequence[int]):
        self.ctx = ctx
        self.agents = list(agents)

    @abc.abstractmethod
    def receive(self, payload: np.ndarray) -> None:
        """Take in the round's broadcast."""

    @abc.abstractmethod
    def act(self, round: int, agent: int) -> AgentResult:
        """Run logical agent ``agent``'s episode(s) for round ``round``."""


def split_messages(
    stats: np.ndarray, data: np.ndarray, dtype: np.dtype, agents: Sequence[int] | None = None
) -> list[tuple[int, np.ndarray]]:
    """(agent, payload) of every row of ``stats`` that sent, cut out of the gathered bytes ``data``
    (rows in the order their messages were packed; ``agents``: each row's agent, default the row index)."""
    messages, pos = [], 0
    for j in range(stats.shape[0]):
        nbytes = int(stats[j, NBYTES])
        if stats[j, SENT]:
            messages.append((j if agents is None else int(agents[j]), data[pos : pos + nbytes].copy().view(dtype)))
        pos += nbytes
    return messages


def sync_traffic(
    messages: Sequence[tuple[int, np.ndarray]],
    n: int,
    up_kind: str,
    down_kind: str,
    down: int,
    times: dict[str, np.ndarray] | None = None,
) -> Traffic:
    """A synchronous round's message log: each uplink message, then the broadcast as each agent received it
    (``times``: the simulated network's send and arrival times of each agent's messages, if any)."""
    traffic = Traffic()
    senders = [a for a, _ in messages]
    nbytes = [m.nbytes for _, m in messages]
    if times is None:
        traffic.add(senders, UPLINK, up_kind, nbytes)
        traffic.add(np.arange(n), DOWNLINK, down_kind, down)
        return traffic
    traffic.add(senders, UPLINK, up_kind, nbytes, times["up_sent"][senders], times["up_arrived"][senders])
    traffic.add(np.arange(n), DOWNLINK, down_kind, down, times["down_sent"], times["down_arrived"])
    return traffic


def clock(spec, ctx: Context) -> SyncClock | None:
    """The simulated clock of a trial's synchronous rounds (None in real mode)."""
    cfg = ctx.cfg
    if cfg.time.mode != "simulated":
        return None
    return SyncClock(cfg.time, ctx.n, ctx.seed, ctx.trial, spec.policy_size(cfg, ctx.env_spec))


def advance(clock: SyncClock | None, round: int, values: dict[str, np.ndarray], down_bytes: int) -> dict | None:
    """Move ``clock`` past a round whose per-agent values are ``values``; the messages' times, if timed."""
    if clock is None:
        return None
    return clock.advance(round, values["episodes"], values["uplink_bytes"], down_bytes)


class SyncRounds(Protocol):
    """Synchronous rounds of one trial (see the module docstring)."""

    Learner = SyncLearner
    Worker = SyncWorker
    dynamic_placement = True

    def __init__(self, spec, ctx: Context, rt):
        self.clock = clock(spec, ctx)
        super().__init__(spec, ctx, rt)
        dynamic = spec.movable and rt.size > 1 and ctx.cfg.agents.placement in ("auto", "dynamic")
        self.claims = rt.agent_claims() if dynamic else None

    @property
    def sim_time(self) -> float:
        return self.clock.now if self.clock is not None else np.nan

    @sim_time.setter
    def sim_time(self, value: float) -> None:
        if self.clock is not None:
            self.clock.now = value

    def close(self) -> None:
        if self.claims is not None:
            self.claims.free()

    def run(self, round: int) -> list[RoundRecord] | None:
        spec, rt, n = self.spec, self.rt, self.ctx.n
        payload = rt.broadcast(self.learner.downlink() if rt.is_root else None, spec.wire.downlink_dtype)
        downlink_bytes = int(payload.nbytes)
        self.worker.receive(payload)
        stats, messages, ranks = self._exchange(round)
        if stats is None:
            return None
        self.learner.update(round, messages)
        values = round_values((*STAT_COLUMNS, *spec.diagnostics), stats)
        values["downlink_bytes"] = np.full(n, downlink_bytes)
        values["rank"] = ranks
        times = advance(self.clock, round, values, downlink_bytes)
        values["sim_time"] = self.sim_time
        kind = self.learner.downlink_kind or spec.wire.downlink_kind
        traffic = sync_traffic(messages, n, spec.wire.uplink_kind, kind, downlink_bytes, times)
        return [RoundRecord(values, traffic)]

    def _exchange(self, round: int) -> tuple[np.ndarray | None, list[tuple[int, np.ndarray]], np.ndarray]:
        """Every agent of the rank acts; rank 0 gets the [n, columns] statistics in agent order, the
        messages and the rank that ran each agent (None, [], [] elsewhere)."""
        spec, rt, n = self.spec, self.rt, self.ctx.n
        width = len(STAT_COLUMNS) + len(spec.diagnostics)
        agents = self.worker.agents if self.claims is None else self.claims.claims(n)
        rows, chunks, ran = [], [], []
        for agent in agents:
            res = self.worker.act(round, agent)
            nbytes, sent = 0, 0
            if res.message is not None:
                msg = np.ascontiguousarray(res.message, dtype=spec.wire.uplink_dtype).reshape(-1)
                chunks.append(msg.view(np.uint8))
                nbytes, sent = msg.nbytes, 1
            rows.append((*result_row(res), sent, nbytes, *res.diagnostics))
            ran.append(agent)
        data = np.concatenate(chunks) if chunks else np.empty(0, np.uint8)
        table = np.array(rows, dtype=np.float64).reshape(-1, width)

        if self.claims is None:
            stats = rt.gather_rows(table, n)
            counts = [int(stats[b, NBYTES].sum()) for b in blocks(n, rt.size)] if rt.is_root else None
            data = rt.gather_bytes(data, counts)
            if not rt.is_root:
                return None, [], np.empty(0)
            return stats, split_messages(stats, data, spec.wire.uplink_dtype), block_owners(n, rt.size)

        sizes = rt.gather_counts([len(rows), data.size])
        table = rt.gather_rows(
            np.column_stack([table, np.array(ran, dtype=np.float64)]),
            n,
            None if sizes is None else sizes[:, 0].tolist(),
        )
        data = rt.gather_bytes(data, None if sizes is None else sizes[:, 1].tolist())
        if not rt.is_root:
            return None, [], np.empty(0)
        stats, order = table[:, :width], table[:, width].astype(np.int64)
        ranks = np.repeat(np.arange(rt.size), sizes[:, 0])
        messages = split_messages(stats, data, spec.wire.uplink_dtype, order)
        if sorted(order.tolist()) != list(range(n)):
            raise RuntimeError(
                f"round {round}: the ranks ran agents {sorted(order.tolist())}, not each of 0..{n - 1} once"
            )
        back = np.argsort(order)
        messages.sort(key=lambda item: item[0])
        return stats[back], messages, ranks[back]
