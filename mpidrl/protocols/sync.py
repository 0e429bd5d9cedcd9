"""Synchronous rounds: a downlink broadcast, every agent acts, an uplink gather of optional messages.

A round, as :class:`SyncRounds` runs it::

    payloads = learner.downlink()            # rank 0; broadcast to every rank
    worker.receive(payloads)                 # every rank, once per round
    results = worker.act(round, agents)      # every agent the rank runs, as one batch
    learner.update(round, messages)          # rank 0, messages = [(agent, payload), ...] in agent order

The rounds run T >= 1 trials together (``[run] trial_batch``; real time only): one collective of each
kind serves them all, the broadcast carrying the T learners' payloads, the gathers every (agent, trial)'s
statistics and message. Accounting is per trial, as if the trials ran one by one: each agent of trial b
receives trial b's payload and sends its own message, and every round yields one
:class:`~mpidrl.protocols.base.RoundRecord` per trial.

The agent side is a :class:`BlockWorker`: the rank's agents in every trial, acting as arrays (one policy
forward per step for all of them, environments stepped as one vector environment). An algorithm may
instead give a :class:`SyncWorker`, one agent at a time; :class:`PerAgent` runs it for every trial (all in
:mod:`mpidrl.protocols.workers`). A block larger than ``[agents] batch`` runs in consecutive parts when its
worker allows (``BlockWorker.in_parts``).

Messages are 1-D numpy arrays of the spec's ``wire.uplink_dtype``; their ``nbytes`` is what is counted,
by the rank that packs them. The broadcast is counted once per receiving agent. The per-agent row of
statistics that travels with the gather (and carries each message's length) is framing the simulation
adds to share one collective among a block of agents, not an algorithm message, and is not counted.

Placement: each rank runs its block of agents, or, with dynamic placement (algorithms whose workers keep
no per-agent state; the default only for workers that act one agent at a time), the chunks of agents it
claims (:class:`mpidrl.comm.AgentClaims`); the rows it gathers then carry their agent indices so rank 0
can put everything back in agent order.

Simulated time: a round lasts ``max_i(h_i * episodes_i) + max_i(kappa_i)``, the slowest agent's
computation, then the slowest participant's communication, or with a network of links the slowest
agent's download, computation and upload (:class:`mpidrl.network.SyncClock`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from mpidrl.comm import block_owners, blocks
from mpidrl.config import Config, ConfigError
from mpidrl.envs import EnvSpec
from mpidrl.network import SyncClock
from mpidrl.protocols.base import (
    Context,
    LearnerBase,
    Protocol,
    RoundRecord,
    Stateful,
    Traffic,
    round_values,
)
from mpidrl.protocols.workers import (
    NBYTES,
    SENT,
    STAT_COLUMNS,
    BlockWorker,
    PerAgent,
    SyncWorker,
    batch_limit,
    make_worker,
    parts,
)
from mpidrl.records import DOWNLINK, UPLINK

CHUNKS = 4
"""With dynamic placement a rank claims its block in about this many chunks (each one batch)."""


class SyncLearner(LearnerBase):
    """The central learner (rank 0) of one trial: turns received messages into the next broadcast."""

    downlink_kind: str | None = None
    """what the broadcast carries when the config changes it (else the spec's ``wire.downlink_kind``)"""

    @abc.abstractmethod
    def downlink(self) -> np.ndarray:
        """The payload to broadcast to every agent before the next round."""

    @abc.abstractmethod
    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        """Update from the round's messages, given in increasing agent order."""


class TrialLearners(Stateful):
    """The learners of T > 1 trials run together, one per trial, broadcasting one payload of T rows."""

    def __init__(self, learners: Sequence[SyncLearner]):
        self.learners = list(learners)
        self.downlink_kind = self.learners[0].downlink_kind

    def downlink(self) -> np.ndarray:
        return np.stack([learner.downlink() for learner in self.learners]).reshape(-1)

    def update(self, round: int, messages: Sequence[Sequence[tuple[int, np.ndarray]]]) -> None:
        """Update each trial's learner from its messages (``messages[b]``: trial b's, in agent order)."""
        for learner, received in zip(self.learners, messages):
            learner.update(round, received)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Each learner's state; an entry of the same shape in every trial is stacked into one array
        (``batch/KEY``, one row per trial: a checkpoint writes a few datasets, not T times as many)."""
        states = [learner.state_dict() for learner in self.learners]
        out = {}
        for key in states[0]:
            values = [np.asarray(state[key]) for state in states]
            if all(v.shape == values[0].shape and v.dtype == values[0].dtype for v in values):
                out[f"batch/{key}"] = np.stack(values)
            else:
                out.update({f"trial{b}/{key}": v for b, v in enumerate(values)})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for b, learner in enumerate(self.learners):
            own = {k.removeprefix(f"trial{b}/"): v for k, v in state.items() if k.startswith(f"trial{b}/")}
            own.update({k.removeprefix("batch/"): v[b] for k, v in state.items() if k.startswith("batch/")})
            learner.load_state_dict(own)


def split_messages(
    stats: np.ndarray, data: np.ndarray, dtype: np.dtype, agents: np.ndarray
) -> list[list[tuple[int, np.ndarray]]]:
    """Each trial's (agent, payload) pairs: ``stats`` [rows, T, columns] in the order their messages were
    packed, ``data`` the gathered bytes, ``agents`` each row's agent."""
    rows, n_trials = stats.shape[:2]
    received: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n_trials)]
    records = data.view(dtype)  # every message is whole records: slice them out of one view
    sizes = stats[:, :, NBYTES].astype(np.int64) // dtype.itemsize
    ends = np.cumsum(sizes).reshape(rows, n_trials).tolist()
    sizes, sent, agents = sizes.tolist(), stats[:, :, SENT].tolist(), agents.tolist()
    for j in range(rows):
        for b in range(n_trials):
            if sent[j][b]:
                received[b].append((agents[j], records[ends[j][b] - sizes[j][b] : ends[j][b]]))
    return received


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
    """Synchronous rounds of T >= 1 trials (see the module docstring)."""

    Learner = SyncLearner
    Worker = (BlockWorker, SyncWorker)
    dynamic_placement = True
    batches_trials = True

    def __init__(self, spec: Any, contexts: Sequence[Context], rt: Any):
        self.spec, self.rt, self.contexts = spec, rt, list(contexts)
        self.ctx = ctx = self.contexts[0]
        if rt.is_root:
            learners = [spec.learner(c) for c in self.contexts]
            self.learner = learners[0] if len(learners) == 1 else TrialLearners(learners)
        else:
            self.learner = None
        self.worker = make_worker(spec, self.contexts, rt.block(ctx.n))
        self.clock = clock(spec, ctx) if len(self.contexts) == 1 else None
        placement = ctx.cfg.agents.placement
        # "auto": a batch of agents loses more to chunking (each chunk a batch of its own, whose steps cost
        # as much as the whole block's) than it gains from balance; agents acting one at a time only gain
        wanted = placement == "dynamic" or (placement == "auto" and isinstance(self.worker, PerAgent))
        self.claims = rt.agent_claims() if spec.movable and rt.size > 1 and wanted else None
        self.limit = batch_limit(ctx.cfg, spec.policy_size(ctx.cfg, ctx.env_spec)) if self.worker.in_parts else 0

    @classmethod
    def start(cls, spec: Any, contexts: Sequence[Context], rt: Any) -> SyncRounds:
        return cls(spec, contexts, rt)

    @classmethod
    def check(cls, cfg: Config, spec: Any, env_spec: EnvSpec) -> None:
        super().check(cfg, spec, env_spec)
        if cfg.run.trial_batch > 1 and cfg.time.mode != "real":  # each trial would need its clock in a checkpoint
            raise ConfigError('run.trial_batch: trials run together need time.mode = "real"; use 1')

    @property
    def learners(self) -> list[Any]:
        return self.learner.learners if isinstance(self.learner, TrialLearners) else [self.learner]

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
        spec, rt, n, n_trials = self.spec, self.rt, self.ctx.n, len(self.contexts)
        payload = rt.broadcast(self.learner.downlink() if rt.is_root else None, spec.wire.downlink_dtype)
        downlink_bytes = int(payload.nbytes) // n_trials
        self.worker.receive(list(payload.reshape(n_trials, -1)) if n_trials > 1 else [payload])
        stats, messages, ranks = self._exchange(round)
        if stats is None:
            return None
        self.learner.update(round, messages if n_trials > 1 else messages[0])
        kind = self.learner.downlink_kind or spec.wire.downlink_kind
        out = []
        for b in range(n_trials):
            values = round_values((*STAT_COLUMNS, *spec.diagnostics), stats[:, b])
            values["downlink_bytes"] = np.full(n, downlink_bytes)
            values["rank"] = ranks
            times = advance(self.clock, round, values, downlink_bytes)
            values["sim_time"] = self.sim_time
            traffic = sync_traffic(messages[b], n, spec.wire.uplink_kind, kind, downlink_bytes, times)
            out.append(RoundRecord(values, traffic))
        return out

    def _exchange(self, round: int) -> tuple[np.ndarray | None, list[list[tuple[int, np.ndarray]]], np.ndarray]:
        """Every agent of the rank acts; rank 0 gets the [n, T, columns] statistics in agent order, each
        trial's messages and the rank that ran each agent (None, [], [] elsewhere)."""
        spec, rt, n, n_trials = self.spec, self.rt, self.ctx.n, len(self.contexts)
        width = len(STAT_COLUMNS) + len(spec.diagnostics)
        dtype = spec.wire.uplink_dtype
        if self.claims is None:
            agents = self.worker.agents
            if agents:
                runs = parts(agents, n_trials, self.limit) if self.limit else [agents]
                done = [self.worker.act(round, part).table((len(part), n_trials), dtype) for part in runs]
                table, data = (np.concatenate(x) for x in zip(*done)) if len(done) > 1 else done[0]
            else:  # more ranks than agents: this one has none
                table, data = np.empty((0, n_trials, width)), np.empty(0, np.uint8)
            stats = rt.gather_rows(table.reshape(len(agents), n_trials * width), n)
            counts = None
            if rt.is_root:
                stats = stats.reshape(n, n_trials, width)
                counts = [int(stats[span, :, NBYTES].sum()) for span in blocks(n, rt.size)]
            data = rt.gather_bytes(data, counts)
            if not rt.is_root:
                return None, [], np.empty(0)
            return stats, split_messages(stats, data, dtype, np.arange(n)), block_owners(n, rt.size)

        chunk = max(1, -(-len(self.worker.agents) // CHUNKS))
        tables, datas, ran = [], [], []
        for agents in self.claims.claims(n, chunk):
            table, data = self.worker.act(round, agents).table((len(agents), n_trials), dtype)
            tables.append(table.reshape(len(agents), n_trials * width))
            datas.append(data)
            ran += agents
        table = np.concatenate(tables) if tables else np.empty((0, n_trials * width))
        data = np.concatenate(datas) if datas else np.empty(0, np.uint8)
        sizes = rt.gather_counts([len(ran), data.size])
        table = rt.gather_rows(
            np.column_stack([table, np.array(ran, dtype=np.float64)]),
            n,
            None if sizes is None else sizes[:, 0].tolist(),
        )
        data = rt.gather_bytes(data, None if sizes is None else sizes[:, 1].tolist())
        if not rt.is_root:
            return None, [], np.empty(0)
        stats, order = table[:, :-1].reshape(n, n_trials, width), table[:, -1].astype(np.int64)
        if sorted(order.tolist()) != list(range(n)):
            raise RuntimeError(
                f"round {round}: the ranks ran agents {sorted(order.tolist())}, not each of 0..{n - 1} once"
            )
        messages = split_messages(stats, data, dtype, order)
        for received in messages:
            received.sort(key=lambda item: item[0])
        ranks = np.repeat(np.arange(rt.size), sizes[:, 0])
        back = np.argsort(order)
        return stats[back], messages, ranks[back]
