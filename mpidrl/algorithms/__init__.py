"""Algorithms: one module per family, each a learner side and an agent side with no MPI in them."""

from __future__ import annotations

from mpidrl.algorithms import es, espc
from mpidrl.algorithms.base import AgentResult, AlgorithmSpec, Context, Learner, Worker
from mpidrl.config import ALGO_PARAMS, Config, ConfigError
from mpidrl.envs import EnvSpec, make_env, spec_of

REGISTRY: dict[str, AlgorithmSpec] = {spec.name: spec for spec in (es.SPEC, espc.SPEC, espc.FIXED_SPEC)}
"""Every runnable algorithm by its ``[algo] name``."""

assert set(REGISTRY) <= set(ALGO_PARAMS), "every algorithm needs a parameter dataclass in config.algos"

__all__ = ["REGISTRY", "AgentResult", "AlgorithmSpec", "Context", "Learner", "Worker", "lookup", "check"]


def lookup(name: str) -> AlgorithmSpec:
    """The :class:`AlgorithmSpec` of ``name``; ConfigError if it is not implemented."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"algo.name: unknown algorithm {name!r}; allowed: {', '.join(REGISTRY)}") from None


def check(cfg: Config) -> EnvSpec:
    """Validate what the config alone cannot: the environment exists and the algorithm can handle it."""
    spec = lookup(cfg.algo.name)
    env = make_env(cfg.env, 0)
    try:
        env_spec = spec_of(env)
    finally:
        env.close()
    spec.check(cfg, env_spec)
    return env_spec
