"""Everything checked before a run starts, in one place: the config, the environment, the algorithm,
the protocol, the memory and the time model.

Rank 0 alone checks (``mpidrl run`` broadcasts what it found to the other ranks); ``mpidrl validate``,
``--resume`` and ``mpidrl sweep`` check the same way. Every problem is one :class:`ConfigError` line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mpidrl import registry, timing
from mpidrl.config import Config, ConfigError, from_dict, read_toml, resolve
from mpidrl.envs import EnvSpec, available_memory, footprint, make_env, spec_of
from mpidrl.network import Links


@dataclass(frozen=True)
class Checked:
    """A config that passed every check, with what the checks found."""

    cfg: Config
    """the validated config"""
    env_spec: EnvSpec
    """observation and action shapes of the environment"""
    d: int
    """the number of parameters the algorithm learns"""
    notes: tuple[str, ...] = ()
    """warnings about the config that did not stop it (keys dropped by ``--set algo.name=X``)"""


def environment(cfg: Config) -> EnvSpec:
    """Build one checked instance of the environment and read its spec (ConfigError if it cannot be made)."""
    try:
        env = make_env(cfg.env, 0, env_checker=True)
        try:
            env.reset(seed=0)  # some environments fail only here (a renderer or a dependency they load late)
            return spec_of(env)
        finally:
            env.close()
    except ConfigError:
        raise
    except Exception as exc:  # the environment's own complaint about its kwargs, a missing dependency, ...
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ConfigError(f"env: cannot make {cfg.env.id} with env.kwargs {cfg.env.kwargs}: {message}") from None


def check(cfg: Config, node_share: float = 1.0, env_spec: EnvSpec | None = None) -> Checked:
    """Validate what the config alone cannot: the environment exists, the algorithm and its protocol can
    handle it, the agents fit in memory (``node_share``: the fraction of all agents this machine hosts) and
    the time model holds for the policy size. ``env_spec``: already known (skip building an environment)."""
    spec = registry.lookup(cfg.algo.name)
    if cfg.run.trial_batch > 1 and not spec.protocol.batches_trials:
        able = [name for name, other in registry.specs().items() if other.protocol.batches_trials]
        raise ConfigError(f"run.trial_batch: trials run together with {', '.join(able)}, not {cfg.algo.name}; use 1")
    if env_spec is None:
        env_spec = environment(cfg)
    spec.check(cfg, env_spec)
    spec.protocol.check(cfg, spec, env_spec)
    d = spec.policy_size(cfg, env_spec)
    try:
        check_memory(cfg, spec.movable, d, node_share)
    except ConfigError:
        raise
    except Exception as exc:  # measuring an environment's memory builds several instances of it
        raise ConfigError(f"env: cannot make several {cfg.env.id}: {type(exc).__name__}: {exc}") from None
    timing.check(cfg.time, cfg.agents.n, d)
    if cfg.time.network != "kappa":
        Links(cfg.time, cfg.agents.n, d=d)  # every link value is a time or a bandwidth for every agent
    return Checked(cfg, env_spec, d)


def config_data(config: str | Path | Mapping[str, Any] | Config | None) -> dict[str, Any]:
    """A config as plain sections: read from a TOML file, given as sections, or those of a :class:`Config`
    (None: the defaults)."""
    if config is None:
        return {}
    if isinstance(config, str | Path):
        return read_toml(config)
    if isinstance(config, Config):
        return config.to_dict()
    if isinstance(config, Mapping):
        return dict(config)
    raise ConfigError(f"config: expected a TOML file, a table of sections or a Config, got {type(config).__name__}")


def load_checked(
    config: str | Path | Mapping[str, Any] | Config | None, overrides: Iterable[str] = (), node_share: float = 1.0
) -> Checked:
    """Load a config (a TOML file, sections, a :class:`Config` or None) with ``--set`` overrides and check it."""
    notes: list[str] = []
    return replace(check(from_dict(resolve(config_data(config), overrides, notes)), node_share), notes=tuple(notes))


def check_memory(cfg: Config, movable: bool, d: int, node_share: float = 1.0) -> None:
    """Refuse a run whose agents (d parameters each) cannot fit in this machine's memory (environments
    dominate); ``movable``: agents may run on other ranks (dynamic placement)."""
    per_agent = footprint(cfg.env) + 8 * d
    # with dynamic placement a rank also keeps the environments of up to a block of other ranks' agents
    hosted = 2 if movable and cfg.agents.placement != "blocks" else 1
    need = hosted * int(cfg.agents.n * node_share) * per_agent + 8 * 8 * d
    have = available_memory()
    if need > have:
        raise ConfigError(
            f"agents.n: {cfg.agents.n} agents of {cfg.env.id} need about {need / 2**30:.1f} GiB "
            f"({per_agent / 2**20:.2f} MiB each) but {have / 2**30:.1f} GiB is available; use fewer agents "
            "or more nodes"
        )
