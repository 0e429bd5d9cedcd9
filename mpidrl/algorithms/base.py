"""The algorithm interface: a learner side and an agent side, with no MPI in either.

A synchronous round, as :mod:`mpidrl.comm` runs it::

    payload = learner.downlink()             # rank 0; broadcast to every rank
    worker.receive(payload)                  # every rank, once per round
    result = worker.act(round, agent)        # for each logical agent the rank hosts
    learner.update(round, messages)          # rank 0, messages = [(agent, result.message), ...]

Messages are 1-D numpy arrays of the algorithm's ``uplink_dtype``; their ``nbytes`` is what is counted.
A :class:`Worker` serves a block of logical agents on one rank; everything it draws at random comes
from :mod:`mpidrl.rng` keyed by the agent index, so the block boundaries do not change any result.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mpidrl.config import Config
from mpidrl.envs import EnvSpec
from mpidrl.policies import make_policy


@dataclass(frozen=True)
class Context:
    """What both sides of an algorithm know at the start of a trial."""

    cfg: Config
    """the whole validated config"""
    trial: int
    """trial index l; random keys are (seed, l, ...)"""
    spec: EnvSpec
    """shapes of the environment's observations and actions"""

    @property
    def seed(self) -> int:
        return self.cfg.run.seed

    @property
    def n(self) -> int:
        return self.cfg.agents.n


@dataclass
class AgentResult:
    """One logical agent's round: its optional message and what it experienced."""

    message: np.ndarray | None
    """payload sent to the learner, or None when the agent stays silent"""
    reward: float = math.nan
    """discounted return (mean over the round's episodes; NaN if none)"""
    ret: float = math.nan
    """undiscounted return, same rule"""
    episodes: int = 0
    """episodes completed in the round"""
    steps: int = 0
    """environment steps taken in the round"""
    diagnostics: tuple[float, ...] = ()
    """values of the algorithm's ``diagnostics`` names, in order"""


class Learner(abc.ABC):
    """The central learner (rank 0): turns received messages into the next broadcast."""

    downlink_kind: str | None = None
    """what the broadcast carries when the config changes it (else the spec's ``downlink_kind``)"""

    @abc.abstractmethod
    def downlink(self) -> np.ndarray:
        """The payload to broadcast to every agent before the next round."""

    @abc.abstractmethod
    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        """Update from the round's messages, given in increasing agent order."""

    def actor(self) -> Callable[[np.ndarray], Any] | None:
        """The learner's current greedy policy for evaluation episodes (None: not evaluable)."""
        return None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly from here (arrays only)."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state but was given {sorted(state)}")


class Worker(abc.ABC):
    """The agent side for a block of logical agents hosted by one rank."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        self.ctx = ctx
        self.agents = list(agents)

    @abc.abstractmethod
    def receive(self, payload: np.ndarray) -> None:
        """Take in the round's broadcast."""

    @abc.abstractmethod
    def act(self, round: int, agent: int) -> AgentResult:
        """Run logical agent ``agent``'s episode(s) for round ``round``."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """State that must survive a checkpoint (arrays only).

        Each array has one row per hosted agent, in ``self.agents`` order, so a run can resume on any
        number of ranks; keys starting with ``shared/`` hold state that is the same on every rank (a
        replica of the learner's) and are stored once.
        """
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state but was given {sorted(state)}")


@dataclass(frozen=True)
class AlgorithmSpec:
    """How the runtime drives one algorithm."""

    name: str
    """the ``[algo] name``"""
    learner: Callable[[Context], Learner]
    """factory of the learner side"""
    worker: Callable[[Context, Sequence[int]], Worker]
    """factory of the agent side for a block of agents"""
    uplink_dtype: np.dtype
    """dtype of uplink message arrays"""
    downlink_dtype: np.dtype
    """dtype of the broadcast payload"""
    uplink_kind: str
    """what an uplink message carries (return, trajectory, gradient, ...)"""
    downlink_kind: str
    """what the broadcast carries (params, q_table, ...)"""
    diagnostics: tuple[str, ...] = ()
    """per-agent values reported each round (recorded with record_messages)"""
    check: Callable[[Config, EnvSpec], None] = field(default=lambda cfg, spec: None)
    """raises ConfigError if the algorithm cannot handle the config or environment"""
    movable: bool = False
    """any rank may run any agent's round (the worker keeps no per-agent state between rounds), so
    synchronous rounds may place agents dynamically (``[agents] placement``)"""
    policy_size: Callable[[Config, EnvSpec], int] = field(default=lambda cfg, spec: make_policy(cfg.policy, spec).size)
    """d, the number of parameters of the policy (or value function) the algorithm learns; ``[time]``
    formulas may use it. Called only on configs ``check`` accepted."""
    protocol: str = "sync"
    """how comm drives it: "sync" (rounds.py), "aggregate" (one Allreduce per round) or "afedpg"
    (one round trip per gradient), see mpidrl.comm.aggregate"""
