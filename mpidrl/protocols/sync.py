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
instead give a :class:`SyncWorker`, one agent at a time; :class:`PerAgent` runs it for every trial.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mpidrl.comm import block_owners, blocks
from mpidrl.config import Config, ConfigError
from mpidrl.envs import EnvSpec
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
    round_values,
)
from mpidrl.records import DOWNLINK, UPLINK

STAT_COLUMNS = (*RESULT_COLUMNS, "uplink_messages", "uplink_bytes")
"""Columns of the per-agent statistics row every rank sends each round; diagnostics follow."""
NBYTES = STAT_COLUMNS.index("uplink_bytes")
SENT = STAT_COLUMNS.index("uplink_messages")

CHUNKS = 4
"""With dynamic placement a rank claims its block in about this many chunks (each one batch)."""

BATCH_BYTES = 2 * 2**20
"""``[agents] batch = 0``: a batch holds about this many bytes of policy parameters (float64)."""


def batch_limit(cfg: Config, policy_size: int) -> int:
    """The most sub-environments a rank steps as one batch (``[agents] batch``, 0: :data:`BATCH_BYTES` of
    parameters)."""
    return cfg.agents.batch or max(1, BATCH_BYTES // (8 * max(policy_size, 1)))


def parts(agents: Sequence[int], copies: int, limit: int) -> list[Sequence[int]]:
    """``agents`` in consecutive parts of (nearly) equal size with at most ``limit`` sub-environments
    (``copies`` per agent) each, or one part of one agent if an agent alone has more."""
    count = max(1, -(-len(agents) * copies // limit))
    return [agents[span.start : span.stop] for span in blocks(len(agents), min(count, max(len(agents), 1)))]


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


@dataclass
class Results:
    """What a batch of A agents did in a round in each of the T trials: arrays [A, T] (or broadcastable)."""

    messages: Sequence[np.ndarray | None]
    """each (agent, trial)'s message, agent-major (None: silent)"""
    reward: Any
    """discounted return (mean over the round's episodes)"""
    ret: Any
    """undiscounted return, same rule"""
    episodes: Any
    """episodes completed in the round"""
    steps: Any
    """environment steps taken in the round"""
    diagnostics: Sequence[Any] = field(default_factory=tuple)
    """values of the algorithm's ``diagnostics`` names, in order"""

    def table(self, shape: tuple[int, int], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """The statistics rows [A, T, columns] (:data:`STAT_COLUMNS`, then the diagnostics) and the
        messages' bytes, packed in order."""
        if len(self.messages) != shape[0] * shape[1]:
            raise ValueError(f"{len(self.messages)} messages for {shape[0]} agents in {shape[1]} trial(s)")
        chunks, sent, nbytes = [], np.zeros(len(self.messages)), np.zeros(len(self.messages))
        for j, message in enumerate(self.messages):
            if message is not None:
                msg = np.ascontiguousarray(message, dtype=dtype).reshape(-1)
                chunks.append(msg.view(np.uint8))
                sent[j], nbytes[j] = 1, msg.nbytes
        columns = (self.reward, self.ret, self.episodes, self.steps, sent, nbytes, *self.diagnostics)
        table = np.stack([np.broadcast_to(np.asarray(c, dtype=np.float64).reshape(-1), sent.shape) for c in columns])
        data = np.concatenate(chunks) if chunks else np.empty(0, np.uint8)
        return table.T.reshape(*shape, len(columns)), data


class BlockWorker(Stateful):
    """The agent side: the agents a rank hosts, in every trial the rounds run, acting as one batch.

    Everything it draws at random comes from :mod:`mpidrl.rng` keyed by (trial, agent), so neither the
    block boundaries nor the batch change any result.
    """

    in_parts: bool = False
    """:meth:`act` takes any contiguous part of the hosted agents (their state, if any, kept by agent), so a
    rank may run a large block as several batches (``[agents] batch``)"""

    def __init__(self, contexts: Sequence[Context], agents: Sequence[int]):
        self.contexts = list(contexts)
        self.ctx = self.contexts[0]
        self.agents = list(agents)

    @abc.abstractmethod
    def receive(self, payloads: Sequence[np.ndarray]) -> None:
        """Take in the round's broadcast: one payload per trial."""

    @abc.abstractmethod
    def act(self, round: int, agents: Sequence[int]) -> Results:
        """Run the round of ``agents`` (the hosted ones, or with dynamic placement any chunk claimed)."""


class SyncWorker(Stateful):
    """The agent side one agent at a time, for one trial (the simple way to write one; see :class:`PerAgent`)."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        self.ctx = ctx
        self.agents = list(agents)

    @abc.abstractmethod
    def receive(self, payload: np.ndarray) -> None:
        """Take in the round's broadcast."""

    @abc.abstractmethod
    def act(self, round: int, agent: int) -> AgentResult:
        """Run logical agent ``agent``'s episode(s) for round ``round``."""

    def act_many(self, round: int, agents: Sequence[int]) -> list[AgentResult]:
        """:meth:`act` of each of ``agents``; override to run them as one batch."""
        return [self.act(round, agent) for agent in agents]


class PerAgent(BlockWorker):
    """A :class:`BlockWorker` made of one per-agent worker per trial, acting agent by agent."""

    def __init__(self, factory: Callable[[Context, Sequence[int]], SyncWorker], contexts, agents):
        super().__init__(contexts, agents)
        self.workers = [factory(ctx, agents) for ctx in self.contexts]

    def receive(self, payloads: Sequence[np.ndarray]) -> None:
        for worker, payload in zip(self.workers, payloads):
            worker.receive(payload)

    def act(self, round: int, agents: Sequence[int]) -> Results:
        by_trial = [worker.act_many(round, agents) for worker in self.workers]
        done = [results[i] for i in range(len(agents)) for results in by_trial]  # agent-major
        columns = [np.array([getattr(r, name) for r in done], dtype=np.float64) for name in _RESULT_FIELDS]
        k = len(done[0].diagnostics) if done else 0
        diagnostics = [np.array([r.diagnostics[j] for r in done], dtype=np.float64) for j in range(k)]
        return Results([r.message for r in done], *columns, diagnostics)

    def state_dict(self) -> dict[str, np.ndarray]:
        """One trial: its worker's state; several: each under ``trial<b>/`` (``shared/trial<b>/``)."""
        if len(self.workers) == 1:
            return self.workers[0].state_dict()
        out = {}
        for b, worker in enumerate(self.workers):
            for key, value in worker.state_dict().items():
                shared = key.startswith("shared/")
                out[f"shared/trial{b}/{key[7:]}" if shared else f"trial{b}/{key}"] = value
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if len(self.workers) == 1:
            self.workers[0].load_state_dict(state)
            return
        for b, worker in enumerate(self.workers):
            own = {}
            for key, value in state.items():
                if key.startswith(f"trial{b}/"):
                    own[key.removeprefix(f"trial{b}/")] = value
                elif key.startswith(f"shared/trial{b}/"):
                    own["shared/" + key.removeprefix(f"shared/trial{b}/")] = value
            worker.load_state_dict(own)


_RESULT_FIELDS = ("reward", "ret", "episodes", "steps")


def make_worker(spec: Any, contexts: Sequence[Context], agents: Sequence[int]) -> BlockWorker:
    """The agent side of ``spec`` for ``agents`` in the trials ``contexts``."""
    if isinstance(spec.worker, type) and issubclass(spec.worker, BlockWorker):
        return spec.worker(contexts, agents)
    return PerAgent(spec.worker, contexts, agents)


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
