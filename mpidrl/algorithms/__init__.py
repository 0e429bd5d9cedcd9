"""Algorithms: one module per family, each a learner side and an agent side with no MPI in them."""

from __future__ import annotations

from mpidrl.algorithms import afedpg, batched, davia, es, espc, lapg, nigt, qlearning
from mpidrl.algorithms.base import AgentResult, AlgorithmSpec, Context, Learner, Worker
from mpidrl.config import ALGO_PARAMS, Config, ConfigError
from mpidrl.envs import EnvSpec, available_memory, footprint, make_env, spec_of
from mpidrl.policies import make_policy

REGISTRY: dict[str, AlgorithmSpec] = {
    spec.name: spec
    for spec in (
        es.SPEC,
        espc.SPEC,
        espc.FIXED_SPEC,
        qlearning.DQL_SPEC,
        qlearning.EBCDQL_SPEC,
        davia.SPEC,
        *nigt.SPECS,
        afedpg.SPEC,
        lapg.SPEC,
    )
}
"""Every runnable algorithm by its ``[algo] name``."""

assert set(REGISTRY) <= set(ALGO_PARAMS), "every algorithm needs a parameter dataclass in config.algos"

__all__ = ["REGISTRY", "AgentResult", "AlgorithmSpec", "Context", "Learner", "Worker", "lookup", "check"]


def lookup(name: str) -> AlgorithmSpec:
    """The :class:`AlgorithmSpec` of ``name``; ConfigError if it is not implemented."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"algo.name: unknown algorithm {name!r}; allowed: {', '.join(REGISTRY)}") from None


def check(cfg: Config, node_share: float = 1.0) -> EnvSpec:
    """Validate what the config alone cannot: the environment exists, the algorithm can handle it, and
    the agents fit in memory (``node_share``: the fraction of all agents this machine hosts)."""
    spec = lookup(cfg.algo.name)
    env = make_env(cfg.env, 0, env_checker=True)
    try:
        env_spec = spec_of(env)
    finally:
        env.close()
    spec.check(cfg, env_spec)
    batched.check(cfg, env_spec)
    check_memory(cfg, env_spec, node_share)
    return env_spec


def check_memory(cfg: Config, env_spec: EnvSpec, node_share: float = 1.0) -> None:
    """Refuse a run whose agents cannot fit in this machine's memory (environments dominate)."""
    d = make_policy(cfg.policy, env_spec).size
    per_agent = footprint(cfg.env) + 8 * d
    need = int(cfg.agents.n * node_share) * per_agent + 8 * 8 * d
    have = available_memory()
    if need > have:
        raise ConfigError(
            f"agents.n: {cfg.agents.n} agents of {cfg.env.id} need about {need / 2**30:.1f} GiB "
            f"({per_agent / 2**20:.2f} MiB each) but {have / 2**30:.1f} GiB is available; use fewer agents "
            "or more nodes"
        )
