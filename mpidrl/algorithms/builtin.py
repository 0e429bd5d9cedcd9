"""mpidrl's algorithms as specs: for each, its parameters, its two sides, its protocol and what it can do.

The registry (:data:`mpidrl.registry.BUILTINS`) names each of these; a user's algorithm is a spec of the
same kind (see docs/extending.md).
"""

from __future__ import annotations

from mpidrl.algorithms import afedpg, davia, es, espc, lapg, nigt, qlearning
from mpidrl.algorithms.pg import policy_size
from mpidrl.protocols import AggregateRounds, AlgorithmSpec, RoundTrips, SyncRounds, Wire

RETURN = Wire(uplink_kind="return", downlink_kind="params")
"""ES family: one float64 return up, theta down"""

SMALL_ES = {"agents": {"n": 6}, "algo": {"sigma": 0.1, "fitness_shaping": "centered_rank"}, "policy": {"hidden": [4]}}
"""the examples' settings: a few agents and a small policy on CartPole-v1 (the default environment)"""
SMALL_GRID = {"env": {"id": "mpidrl/SimpleGrid-v0", "gamma": 0.9, "max_steps": 30}, "agents": {"n": 4}}
SMALL_PG = {
    "agents": {"n": 3},
    "algo": {"M": 4, "M_init": 4, "H": 30},
    "policy": {"hidden": [6]},
    "time": {"mode": "simulated", "h": "sqrt(i)", "kappa": 0.5},
}

ES = AlgorithmSpec(
    params=es.ESParams,
    learner=es.ESLearner,
    worker=es.ESWorker,
    protocol=SyncRounds,
    wire=RETURN,
    check=es.check,
    movable=True,
    example=SMALL_ES,
)

ESPC = AlgorithmSpec(
    params=espc.ESPCParams,
    learner=es.ESLearner,
    worker=espc.ESPCWorker,
    protocol=SyncRounds,
    wire=RETURN,
    check=es.check,
    diagnostics=espc.DIAGNOSTICS,
    example={**SMALL_ES, "algo": {**SMALL_ES["algo"], "m": 3, "k": 3}},
)

ES_FIXED = AlgorithmSpec(
    params=espc.ESFixedParams,
    learner=es.ESLearner,
    worker=espc.ESFixedWorker,
    protocol=SyncRounds,
    wire=RETURN,
    check=es.check,
    diagnostics=espc.DIAGNOSTICS,
    movable=True,
    example={**SMALL_ES, "algo": {**SMALL_ES["algo"], "m": 3}},
)

DQL = AlgorithmSpec(
    params=qlearning.DQLParams,
    learner=qlearning.QLearner,
    worker=qlearning.DQLWorker,
    protocol=SyncRounds,
    wire=Wire(uplink_dtype=qlearning.TRANSITION_DTYPE, uplink_kind="trajectory", downlink_kind="q_table"),
    check=qlearning.check_tabular,
    policy_size=qlearning.table_size,
    example=SMALL_GRID,
)

EBCDQL = AlgorithmSpec(
    params=qlearning.EBCDQLParams,
    learner=qlearning.EBCDQLLearner,
    worker=qlearning.EBCDQLWorker,
    protocol=SyncRounds,
    wire=Wire(uplink_dtype=qlearning.SAMPLE_DTYPE, uplink_kind="samples", downlink_kind="q_table"),
    diagnostics=("trigger_level", "triggered"),
    check=qlearning.check_tabular,
    policy_size=qlearning.table_size,
    example={**SMALL_GRID, "env": {**SMALL_GRID["env"], "id": "mpidrl/WindyGrid-v0"}},
)

DAVIA = AlgorithmSpec(
    params=davia.DAVIAParams,
    learner=davia.DAVIALearner,
    worker=davia.DAVIAWorker,
    protocol=SyncRounds,
    wire=Wire(uplink_kind="gradient", downlink_kind="weights"),
    diagnostics=("decrease",),
    check=davia.check,
    policy_size=davia.weight_count,
    example={**SMALL_GRID, "algo": {"lam": 0.055, "horizon": 4, "rho": 0.9}},
)

GRADIENT_SUM = Wire(uplink_kind="gradient_sum", downlink_kind="gradient_sum")
"""NIGT aggregation: each agent's row of the Allreduce, both ways"""


def _nigt(worker: type, params: type = nigt.NIGTAggregateParams) -> AlgorithmSpec:
    return AlgorithmSpec(
        doc=f"NIGT policy gradient (seed 001) with one Allreduce per round. {worker.__doc__}",
        params=params,
        learner=nigt.NIGTLearner,
        worker=worker,
        protocol=AggregateRounds,
        wire=GRADIENT_SUM,
        policy_size=policy_size,
        example=SMALL_PG,
    )


SYNC = _nigt(nigt.SyncNIGTWorker, nigt.NIGTParams)
RENNALA = _nigt(nigt.RennalaWorker)
MALENIA = _nigt(nigt.MaleniaWorker)

AFEDPG = AlgorithmSpec(
    doc="AFedPG (asynchronous federated policy gradient; reconstructed): agents compute the lookahead and "
    "(by default) the momentum locally; the learner takes a normalised step on every arriving message and "
    "replies to its agent; M updates make a round.",
    params=afedpg.AFedPGParams,
    learner=afedpg.AFedPGLearner,
    worker=afedpg.AFedPGWorker,
    protocol=RoundTrips,
    wire=Wire(uplink_kind="gradient", downlink_kind="params"),
    policy_size=policy_size,
    example=SMALL_PG,
)

LAPG = AlgorithmSpec(
    params=lapg.LAPGParams,
    learner=lapg.LAPGLearner,
    worker=lapg.LAPGWorker,
    protocol=SyncRounds,
    wire=Wire(uplink_kind="gradient", downlink_kind="params"),
    diagnostics=("change", "threshold"),
    policy_size=policy_size,
    example={"agents": {"n": 3}, "algo": {"H": 30, "batch": 2, "max_staleness": 2}, "policy": {"hidden": [6]}},
)

__all__ = ["AFEDPG", "DAVIA", "DQL", "EBCDQL", "ES", "ESPC", "ES_FIXED", "LAPG", "MALENIA", "RENNALA", "SYNC"]
