"""Algorithms: one module per family, each a learner side and an agent side with no MPI in them."""

from __future__ import annotations

from mpidrl.algorithms import afedpg, batched, davia, es, espc, lapg, nigt, qlearning
from mpidrl.algorithms.base import AgentResult, AlgorithmSpec, Context, Learner, Worker
from mpidrl.config import ALGO_PARAMS, Config, ConfigError
from mpidrl.envs import EnvSpec, available_memory, footprint, make_env, spec_of

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

__all__ = [
    "REGISTRY",
    "AgentResult",
    "AlgorithmSpec",
    "Context",
    "Learner",
    "Worker",
    "lookup",
    "check",
    "dynamic_placement",
    "policy_size",
]


def lookup(name: str) -> AlgorithmSpec:
    """The :class:`AlgorithmSpec` of ``name``; ConfigError if it is not implemented."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"algo.name: unknown algorithm {name!r}; allowed: {', '.join(REGISTRY)}") from None


def check(cfg: Config, node_share: float = 1.0) -> EnvSpec:
    """Validate what the config alone cannot: the environment exists, the algorithm can handle it, and
    the agents fit in memory (``node_share``: the fraction of all agents this machine hosts). The time
    model, which may depend on :func:`policy_size`, is checked by the caller (mpidrl.timing.check)."""
    spec = lookup(cfg.algo.name)
    env = make_env(cfg.env, 0, env_checker=True)
    try:
        env_spec = spec_of(env)
    finally:
        env.close()
    spec.check(cfg, env_spec)
    if cfg.agents.placement == "dynamic" and not (spec.movable and spec.protocol == "sync"):
        raise ConfigError(
            f"agents.placement: {cfg.algo.name} cannot place agents dynamically (its agents keep state between "
            'rounds or it has its own protocol); use "blocks" or "auto"'
        )
    batched.check(cfg, env_spec)
    check_memory(cfg, spec.policy_size(cfg, env_spec), node_share)
    return env_spec


def dynamic_placement(cfg: Config, world_size: int) -> bool:
    """Whether synchronous rounds of this run let ranks take over each other's agents."""
    spec = lookup(cfg.algo.name)
    allowed = spec.movable and spec.protocol == "sync" and world_size > 1
    return allowed and cfg.agents.placement in ("auto", "dynamic")


def policy_size(cfg: Config, env_spec: EnvSpec) -> int:
    """d: the number of parameters of the policy ``cfg``'s algorithm learns on ``env_spec``."""
    return lookup(cfg.algo.name).policy_size(cfg, env_spec)


def check_memory(cfg: Config, d: int, node_share: float = 1.0) -> None:
    """Refuse a run whose agents (d parameters each) cannot fit in this machine's memory (environments
    dominate)."""
    per_agent = footprint(cfg.env) + 8 * d
    # with dynamic placement a rank also keeps the environments of up to a block of other ranks' agents
    hosted = 2 if lookup(cfg.algo.name).movable and cfg.agents.placement != "blocks" else 1
    need = hosted * int(cfg.agents.n * node_share) * per_agent + 8 * 8 * d
    have = available_memory()
    if need > have:
        raise ConfigError(
            f"agents.n: {cfg.agents.n} agents of {cfg.env.id} need about {need / 2**30:.1f} GiB "
            f"({per_agent / 2**20:.2f} MiB each) but {have / 2**30:.1f} GiB is available; use fewer agents "
            "or more nodes"
        )
