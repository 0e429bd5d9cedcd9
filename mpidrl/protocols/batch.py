"""Synchronous rounds of a batch of trials run together as arrays (``[run] trial_batch`` > 1).

One collective of each kind serves the whole batch: the broadcast carries the B learners' payloads, the
gathers every (agent, trial)'s statistics row and message. Accounting is per trial, as if the trials ran
one by one: each agent of trial b receives trial b's payload (a B-th of the broadcast) and sends its own
message; every round yields one :class:`~mpidrl.protocols.base.RoundRecord` per trial, recorded under
that trial's index exactly as an unbatched run records it.

An algorithm that can batch declares it with :class:`Batched` on its spec: the batch sides and a check.
The agent side (:class:`BatchWorker`) hosts the rank's agents for every trial of the batch; environment
e of the batch is hosted agent ``e // B`` in trial ``e % B`` (agent-major, the order of the gather).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mpidrl.comm import block_owners, blocks
from mpidrl.config import Config, ConfigError
from mpidrl.envs import EnvSpec
from mpidrl.protocols.base import Context, Protocol, RoundRecord, Stateful, round_values
from mpidrl.protocols.sync import NBYTES, SENT, STAT_COLUMNS, sync_traffic


class BatchLearner(Stateful):
    """The learners of a batch of trials, one per trial, broadcasting one payload of B rows."""

    def __init__(self, spec: Any, contexts: Sequence[Context]):
        self.learners = [spec.learner(ctx) for ctx in contexts]
        self.downlink_kind = self.learners[0].downlink_kind

    def downlink(self) -> np.ndarray:
        return np.stack([learner.downlink() for learner in self.learners]).reshape(-1)

    def update(self, round: int, messages: Sequence[Sequence[tuple[int, np.ndarray]]]) -> None:
        """Update each trial's learner from its messages (``messages[b]``: trial b's, in agent order)."""
        for learner, received in zip(self.learners, messages):
            learner.update(round, received)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Each learner's state; an entry of the same shape in every trial is stacked into one array
        (``batch/KEY``, one row per trial: a checkpoint writes a few datasets, not B times as many)."""
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


class BatchWorker(Stateful):
    """The rank's agents in every trial of a batch; :meth:`act` runs all their episodes of a round."""

    def __init__(self, cfg: Config, trials: Sequence[int], agents: Sequence[int], env_spec: EnvSpec):
        self.cfg, self.trials, self.agents, self.env_spec = cfg, list(trials), list(agents), env_spec
        b = len(self.trials)
        self.env_trial = np.tile(np.arange(b), len(self.agents))
        """index in the batch of each environment's trial"""
        self.env_agent = np.repeat(np.array(self.agents, dtype=np.int64), b)
        """each environment's agent"""
        self.payload = np.zeros((b, 0))

    def receive(self, payload: np.ndarray) -> None:
        """The broadcast: one row per trial of the batch."""
        self.payload = payload.reshape(len(self.trials), -1)

    @abc.abstractmethod
    def act(self, round: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Rows [hosted agents, B, statistics + diagnostics] (the columns of
        :data:`mpidrl.protocols.sync.STAT_COLUMNS`, then the diagnostics) and each environment's message
        (None: silent), agent-major."""


@dataclass(frozen=True)
class Batched:
    """The capability of running trials in batches: an algorithm's batch sides."""

    worker: Callable[[Config, Sequence[int], Sequence[int], EnvSpec], BatchWorker]
    """factory of the agent side: (config, trials, hosted agents, environment spec)"""
    learner: Callable[[Any, Sequence[Context]], BatchLearner] = BatchLearner
    """factory of the learner side: (spec, the trials' contexts)"""
    check: Callable[[Config, EnvSpec], None] = lambda cfg, env_spec: None
    """raises ConfigError if this config cannot run in batches"""

    @property
    def rounds(self) -> type[Protocol]:
        return BatchRounds


class BatchRounds(Protocol):
    """Synchronous rounds of a batch of trials (see the module docstring)."""

    Learner = BatchLearner
    Worker = BatchWorker

    def __init__(self, spec: Any, contexts: Sequence[Context], rt: Any):
        self.spec, self.rt, self.contexts = spec, rt, list(contexts)
        self.ctx = contexts[0]
        cfg, trials = self.ctx.cfg, [ctx.trial for ctx in contexts]
        self.learner = spec.batch.learner(spec, contexts) if rt.is_root else None
        self.worker = spec.batch.worker(cfg, trials, rt.block(self.ctx.n), self.ctx.env_spec)
        self.sim_time = np.nan
        """batched trials run in real time only"""

    @classmethod
    def check(cls, cfg: Config, spec: Any, env_spec: EnvSpec) -> None:
        if cfg.time.mode != "real":  # each trial of a batch would need a clock of its own in a checkpoint
            raise ConfigError('run.trial_batch: batched trials need time.mode = "real"; use 1')
        spec.batch.check(cfg, env_spec)

    @property
    def learners(self) -> list[Any]:
        return self.learner.learners

    def run(self, round: int) -> list[RoundRecord] | None:
        spec, rt, n = self.spec, self.rt, self.ctx.n
        n_trials = len(self.contexts)
        payload = rt.broadcast(self.learner.downlink() if rt.is_root else None, spec.wire.downlink_dtype)
        downlink_bytes = int(payload.nbytes) // n_trials
        self.worker.receive(payload)

        rows, messages = self.worker.act(round)  # rows [hosted agents, B, width]; messages agent-major
        chunks = [
            np.ascontiguousarray(m, dtype=spec.wire.uplink_dtype).reshape(-1).view(np.uint8)
            for m in messages
            if m is not None
        ]
        width = rows.shape[2]
        stats = rt.gather_rows(rows.reshape(len(self.worker.agents), -1), n)
        counts = None
        if rt.is_root:
            stats = stats.reshape(n, n_trials, width)
            counts = [int(stats[b, :, NBYTES].sum()) for b in blocks(n, rt.size)]
        data = rt.gather_bytes(np.concatenate(chunks) if chunks else np.empty(0, np.uint8), counts)
        if not rt.is_root:
            return None

        received: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n_trials)]
        records = data.view(spec.wire.uplink_dtype)  # every message is whole records: slice them out of one view
        sizes = stats[:, :, NBYTES].astype(np.int64) // spec.wire.uplink_dtype.itemsize
        ends = np.cumsum(sizes).reshape(n, n_trials).tolist()
        sizes, sent = sizes.tolist(), stats[:, :, SENT].tolist()
        for agent in range(n):
            for b in range(n_trials):
                if sent[agent][b]:
                    received[b].append((agent, records[ends[agent][b] - sizes[agent][b] : ends[agent][b]]))
        self.learner.update(round, received)

        owners = block_owners(n, rt.size)
        kind = self.learner.downlink_kind or spec.wire.downlink_kind
        out = []
        for b in range(n_trials):
            values = round_values((*STAT_COLUMNS, *spec.diagnostics), stats[:, b])
            values["downlink_bytes"] = np.full(n, downlink_bytes)
            values["rank"] = owners
            values["sim_time"] = np.nan
            traffic = sync_traffic(received[b], n, spec.wire.uplink_kind, kind, downlink_bytes)
            out.append(RoundRecord(values, traffic))
        return out
