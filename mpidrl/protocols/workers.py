"""The agent side of synchronous rounds: what a batch of agents did in a round (:class:`Results`), the
interfaces a worker implements (:class:`BlockWorker`: a rank's agents as one batch; :class:`SyncWorker`: one
agent at a time, run for every trial by :class:`PerAgent`), and the parts a large block runs in
(``[agents] batch``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mpidrl.comm import blocks
from mpidrl.config import Config
from mpidrl.protocols.base import RESULT_COLUMNS, AgentResult, Context, Stateful

STAT_COLUMNS = (*RESULT_COLUMNS, "uplink_messages", "uplink_bytes")
"""Columns of the per-agent statistics row every rank sends each round; diagnostics follow."""
NBYTES = STAT_COLUMNS.index("uplink_bytes")
SENT = STAT_COLUMNS.index("uplink_messages")

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
