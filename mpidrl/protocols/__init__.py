"""Protocols: how agents and learner exchange messages, one module per way.

- :mod:`~mpidrl.protocols.sync` (:class:`SyncRounds`): broadcast, every agent acts, gather (ES, ESPC,
  ES-fixed, DQL, EBCDQL, DAVIA, LAPG), for one trial or several together; its agent side (the worker
  interfaces, :class:`Results`) in :mod:`~mpidrl.protocols.workers`;
- :mod:`~mpidrl.protocols.aggregate` (:class:`AggregateRounds`): gradients until a stopping rule holds,
  REPORT/STOP control, one Allreduce (synchronous NIGT, Rennala, Malenia);
- :mod:`~mpidrl.protocols.roundtrip` (:class:`RoundTrips`): one round trip per gradient (AFedPG).

Each protocol owns its planning (which agent computes what, the simulated clock), its exchange (through
:class:`mpidrl.comm.Runtime`), its per-agent record columns and its message log, and declares the
interface it drives on the algorithm side as abstract base classes (``Protocol.Learner``,
``Protocol.Worker``). Protocols know no algorithm: variants are the algorithms' own hooks.
"""

from mpidrl.protocols.aggregate import AggregateLearner, AggregateRounds, AggregateWorker
from mpidrl.protocols.base import (
    AgentResult,
    AlgorithmSpec,
    Context,
    LearnerBase,
    Protocol,
    RoundRecord,
    Stateful,
    Traffic,
    Wire,
)
from mpidrl.protocols.roundtrip import RoundTripLearner, RoundTrips, RoundTripWorker
from mpidrl.protocols.sync import SyncLearner, SyncRounds, TrialLearners
from mpidrl.protocols.workers import BlockWorker, PerAgent, Results, SyncWorker

__all__ = [
    "AgentResult",
    "AggregateLearner",
    "AggregateRounds",
    "AggregateWorker",
    "AlgorithmSpec",
    "BlockWorker",
    "Context",
    "LearnerBase",
    "PerAgent",
    "Protocol",
    "Results",
    "RoundRecord",
    "RoundTripLearner",
    "RoundTripWorker",
    "RoundTrips",
    "Stateful",
    "SyncLearner",
    "SyncRounds",
    "SyncWorker",
    "Traffic",
    "TrialLearners",
    "Wire",
]
