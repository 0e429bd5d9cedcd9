"""What every protocol shares: the algorithm's spec, the trial context, the round's record.

A protocol is one way agents and learner exchange messages. It builds the algorithm's two sides
(``spec.learner`` on rank 0, ``spec.worker`` for the block of agents each rank hosts), drives them through
the interface it declares as abstract base classes, counts every message where it is sent, and returns,
on rank 0, one :class:`RoundRecord` per trial and round in run-file terms. The run loop
(:mod:`mpidrl.run`) knows only this base class.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mpidrl.config import Config, ConfigError
from mpidrl.envs import EnvSpec
from mpidrl.policies import make_policy
from mpidrl.records import MESSAGE_DTYPE

if TYPE_CHECKING:
    from mpidrl.comm.runtime import Runtime


@dataclass(frozen=True)
class Context:
    """What both sides of an algorithm know at the start of a trial."""

    cfg: Config
    """the whole validated config"""
    trial: int
    """trial index l; random keys are (seed, l, ...)"""
    env_spec: EnvSpec
    """shapes of the environment's observations and actions"""

    @property
    def seed(self) -> int:
        return self.cfg.run.seed

    @property
    def n(self) -> int:
        return self.cfg.agents.n


@dataclass(frozen=True)
class Wire:
    """What an algorithm's messages are: the dtype and kind of each direction's payload."""

    uplink_dtype: np.dtype = np.dtype(np.float64)
    """dtype of an agent's message (its ``nbytes`` is what is counted)"""
    downlink_dtype: np.dtype = np.dtype(np.float64)
    """dtype of what the learner sends down"""
    uplink_kind: str = "message"
    """what an uplink message carries (return, trajectory, gradient, ...), as logged in /messages"""
    downlink_kind: str = "params"
    """what a downlink message carries (params, q_table, ...)"""


def _default_size(cfg: Config, env_spec: EnvSpec) -> int:
    return make_policy(cfg.policy, env_spec).size


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm as the registry holds it: its parameters, its two sides, how they talk, what it can do.

    ``name`` is given by the registry (:func:`mpidrl.registry.register`), not by the spec's author.
    """

    params: type
    """frozen dataclass of the ``[algo]`` keys (a subclass of :class:`mpidrl.config.AlgoParams`)"""
    learner: Callable[[Context], Any]
    """factory of the learner side (rank 0), implementing ``protocol.Learner``"""
    worker: Callable[[Context, Sequence[int]], Any]
    """factory of the agent side for a block of agents, implementing ``protocol.Worker``"""
    protocol: type[Protocol]
    """how the two sides exchange messages (a class of :mod:`mpidrl.protocols`)"""
    wire: Wire = field(default_factory=Wire)
    """dtypes and kinds of the messages"""
    diagnostics: tuple[str, ...] = ()
    """per-agent values the worker reports each round (recorded with ``run.record_messages``)"""
    check: Callable[[Config, EnvSpec], None] = field(default=lambda cfg, env_spec: None)
    """raises ConfigError if the algorithm cannot handle the config or environment"""
    policy_size: Callable[[Config, EnvSpec], int] = _default_size
    """d, the number of parameters the algorithm learns; ``[time]`` formulas may use it"""
    movable: bool = False
    """capability: the worker keeps no per-agent state between rounds, so any rank may run any agent's
    round (dynamic placement, ``[agents] placement``)"""
    resumable: bool = True
    """capability: learner and worker state round-trip through a checkpoint, so ``--resume`` is exact"""
    example: dict = field(default_factory=dict)
    """a small config (TOML tables merged over the defaults; ``algo.name`` is added) on which the
    algorithm runs in seconds: the contract tests run every registered algorithm on its example"""
    doc: str = ""
    """what the algorithm does, for the config reference (default: the docstring of ``params``)"""
    name: str = ""
    """the ``[algo] name``, set when registered"""


@dataclass
class AgentResult:
    """One logical agent's round: its optional message and what it experienced."""

    message: np.ndarray | None = None
    """payload sent to the learner, or None when the agent stays silent (synchronous rounds)"""
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


RESULT_COLUMNS = ("reward", "return", "episodes", "steps")
"""The per-agent metrics every protocol takes from an :class:`AgentResult`, in its order."""


class Stateful:
    """State that survives a checkpoint: arrays only, restored exactly."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly from here.

        A worker's arrays hold one row per hosted agent, in ``self.agents`` order, so a run can resume on
        any number of ranks; keys starting with ``shared/`` hold state that is the same on every rank (a
        replica of the learner's) and are stored once.
        """
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state but was given {sorted(state)}")


class LearnerBase(Stateful):
    """What every learner side offers besides its protocol's exchange: its current policy."""

    def actor(self) -> Callable[[np.ndarray], Any] | None:
        """The learner's current greedy policy for evaluation episodes (None: not evaluable)."""
        return None


class Traffic:
    """The messages of one round, in log order, as the protocol counted them."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, int, str, np.ndarray, Any, Any]] = []

    def add(
        self, agents: Any, direction: int, kind: str, nbytes: Any, sent: Any = math.nan, arrived: Any = math.nan
    ) -> None:
        """Messages of ``agents`` (one per entry) in one direction; ``nbytes`` each (a number or one per agent);
        ``sent`` and ``arrived``: their times on the simulated network, from the trial's start (NaN: none)."""
        agents = np.atleast_1d(np.asarray(agents, dtype=np.int64))
        nbytes = np.broadcast_to(np.asarray(nbytes, dtype=np.int64), agents.shape)
        self._parts.append((agents, direction, kind, nbytes, sent, arrived))

    def rows(self, trial: int, round: int, t: float) -> np.ndarray:
        """The /messages rows of the round, stamped with the clock ``t`` at the round's end."""
        count = sum(len(agents) for agents, *_ in self._parts)
        rows = np.zeros(count, MESSAGE_DTYPE)
        rows["trial"], rows["round"], rows["time"] = trial, round, t
        pos = 0
        for agents, direction, kind, nbytes, sent, arrived in self._parts:
            part = rows[pos : pos + len(agents)]
            part["agent"], part["direction"], part["kind"], part["nbytes"] = agents, direction, kind, nbytes
            part["sent"], part["arrived"] = sent, arrived
            pos += len(agents)
        return rows


@dataclass
class RoundRecord:
    """What rank 0 knows after one trial's round, in run-file terms."""

    values: dict[str, Any]
    """per-agent metrics and diagnostics ([n] arrays) and the round's ``sim_time``, by run-file name"""
    traffic: Traffic
    """every message of the round, for the message log"""


class Protocol(abc.ABC):
    """How agents and learner exchange messages, for the trials of one run of an algorithm.

    Subclasses name the interfaces they drive (``Learner``, ``Worker``: abstract base classes the
    algorithm's sides implement) and the per-agent values they report themselves (``diagnostics``).
    """

    Learner: type = LearnerBase
    """the learner-side interface"""
    Worker: type | tuple[type, ...] = Stateful
    """the agent-side interface"""
    diagnostics: tuple[str, ...] = ()
    """per-agent values the protocol itself reports each round (beside the algorithm's)"""
    dynamic_placement: bool = False
    """the protocol can let ranks take over each other's agents (``[agents] placement = "dynamic"``)"""
    batches_trials: bool = False
    """the protocol can run several trials together (``[run] trial_batch``)"""
    sim_time: float = math.nan
    """simulated clock at the end of the last round (NaN in real mode)"""

    def __init__(self, spec: AlgorithmSpec, ctx: Context, rt: Runtime):
        self.spec, self.ctx, self.rt = spec, ctx, rt
        self.learner = spec.learner(ctx) if rt.is_root else None
        """the learner side (rank 0; None elsewhere)"""
        self.worker = spec.worker(ctx, rt.block(ctx.n))
        """this rank's agents"""

    @classmethod
    def start(cls, spec: AlgorithmSpec, contexts: Sequence[Context], rt: Runtime) -> Protocol:
        """The protocol for the trials ``contexts`` run together (one, unless it ``batches_trials``)."""
        if len(contexts) != 1:
            raise ValueError(f"{cls.__name__} runs one trial at a time, not {len(contexts)}")
        return cls(spec, contexts[0], rt)

    @classmethod
    def check(cls, cfg: Config, spec: AlgorithmSpec, env_spec: EnvSpec) -> None:
        """Raise ConfigError if this protocol cannot run ``cfg`` (before any rank starts work)."""
        if cfg.agents.placement == "dynamic" and not (cls.dynamic_placement and spec.movable):
            raise ConfigError(
                f"agents.placement: {spec.name} cannot place agents dynamically (its agents keep state between "
                'rounds or it has its own protocol); use "blocks" or "auto"'
            )
        if cfg.run.trial_batch > 1 and not cls.batches_trials:
            raise ConfigError(
                f"run.trial_batch: {spec.name} runs one trial at a time ({cls.__name__} cannot run trials "
                "together); use 1"
            )
        if cfg.agents.batch and not getattr(spec.worker, "in_parts", False):
            raise ConfigError(
                f"agents.batch: {spec.name}'s agents act on their whole block at once (only the ES family runs a "
                "block in parts); use 0"
            )

    @classmethod
    def check_spec(cls, spec: AlgorithmSpec) -> None:
        """Raise TypeError if the spec's sides do not implement this protocol's interfaces."""
        for side, interface in (("learner", cls.Learner), ("worker", cls.Worker)):
            factory = getattr(spec, side)
            if isinstance(factory, type) and not issubclass(factory, interface):
                names = " or ".join(
                    f"{i.__module__}.{i.__qualname__}"
                    for i in (interface if isinstance(interface, tuple) else (interface,))
                )
                raise TypeError(
                    f"{spec.name or spec}: {side} {factory.__qualname__} does not implement "
                    f"{names}, the interface {cls.__name__} drives"
                )

    @property
    def learners(self) -> list[Any]:
        """Rank 0: the learner of each trial the protocol runs (for evaluation episodes)."""
        return [self.learner]

    @abc.abstractmethod
    def run(self, round: int) -> list[RoundRecord] | None:
        """One round of every trial; on rank 0 each trial's record (in trial order), None elsewhere."""

    def close(self) -> None:  # noqa: B027 - most protocols hold nothing to release
        """Release what the rounds hold over MPI (collective; after the trials' last round)."""


def round_values(columns: Sequence[str], table: np.ndarray) -> dict[str, np.ndarray]:
    """The named columns of a gathered per-agent table [n, len(columns)]."""
    return {name: table[:, j] for j, name in enumerate(columns)}


def result_row(res: AgentResult) -> tuple[float, ...]:
    """The :data:`RESULT_COLUMNS` of an agent's result."""
    return (res.reward, res.ret, res.episodes, res.steps)
