"""Experiment configuration: TOML files, ``--set section.key=value`` overrides, full validation.

A config has the sections ``run``, ``env``, ``agents``, ``algo``, ``policy``, ``optim`` and ``time``;
each is a frozen dataclass with a documented default for every key. :func:`load` reads a file and
applies overrides; every problem surfaces as one :class:`ConfigError` line naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from mpidrl import registry
from mpidrl.config.schema import AlgoParams, ConfigError, build, require, to_plain

__all__ = [
    "AlgoParams",
    "Config",
    "ConfigError",
    "flatten",
    "load",
    "from_dict",
    "parse_overrides",
    "require",
    "resolve",
]


@dataclass(frozen=True)
class RunConfig:
    """How long and how often: trials, rounds, output."""

    seed: int = 0
    """seed of the experiment; fixes every random draw of every trial"""
    trials: int = 1
    """independent repetitions, each from a fresh policy (trial l uses keys (seed, l, ...))"""
    rounds: int = 100
    """synchronisations of the learner with its agents per trial"""
    out: str = "results/run.h5"
    """path of the HDF5 run file (``--out`` overrides it); left at this default, each run writes
    results/<config file's stem>_<YYYYmmdd-HHMMSS>.h5 instead, so that runs do not overwrite each other"""
    record_messages: bool = False
    """also write one /messages row per message and the per-agent algorithm diagnostics"""
    eval_every: int = 0
    """evaluate the learner's unperturbed policy every this many rounds (0: never)"""
    eval_episodes: int = 5
    """episodes per evaluation"""
    log_every: float = 5.0
    """seconds between progress lines on rank 0"""
    checkpoint_every: int = 10
    """save a resumable checkpoint every this many rounds (0: only when stopped by a signal)"""
    trial_batch: int = 1
    """run this many trials together (algorithms with synchronous rounds, real time; 1: one trial at a
    time): one collective of each kind for all of them and, for the built-in ones, every agent of every
    trial in one batch of arrays; each trial's results are the same bits whatever the batch; the trials of
    a batch share one wall clock, and a checkpoint holds the whole batch"""

    def check(self, key: str) -> None:
        require(0 <= self.seed < 2**63, f"{key}.seed", f"must be in [0, 2^63), got {self.seed}")
        require(self.trials >= 1, f"{key}.trials", f"must be >= 1, got {self.trials}")
        require(self.rounds >= 1, f"{key}.rounds", f"must be >= 1, got {self.rounds}")
        require(self.out != "", f"{key}.out", "must name a file")
        require(self.eval_every >= 0, f"{key}.eval_every", f"must be >= 0, got {self.eval_every}")
        require(self.eval_episodes >= 1, f"{key}.eval_episodes", "must be >= 1")
        require(self.log_every > 0, f"{key}.log_every", f"must be > 0, got {self.log_every}")
        require(self.checkpoint_every >= 0, f"{key}.checkpoint_every", f"must be >= 0, got {self.checkpoint_every}")
        require(self.trial_batch >= 1, f"{key}.trial_batch", f"must be >= 1, got {self.trial_batch}")


@dataclass(frozen=True)
class EnvConfig:
    """The environment every agent acts in."""

    id: str = "CartPole-v1"
    """Gymnasium id (CartPole-v1, Ant-v5, ...), one of mpidrl's grid worlds, or "my_module:MyEnv-v0" to import
    your own module first (it must be importable on every rank: installed, or its directory on PYTHONPATH)"""
    kwargs: dict = field(default_factory=dict)
    """keyword arguments passed to ``gymnasium.make``"""
    max_steps: int = 0
    """step cap per episode (0: the environment's own limit)"""
    gamma: float = 1.0
    """discount factor of the reward metric and of the algorithms"""
    variation: str = "none"
    """per-agent change of the environment for heterogeneous runs ("none": all agents share one)"""

    def check(self, key: str) -> None:
        require(self.id != "", f"{key}.id", "must name an environment")
        require(self.max_steps >= 0, f"{key}.max_steps", f"must be >= 0, got {self.max_steps}")
        require(0.0 <= self.gamma <= 1.0, f"{key}.gamma", f"must be in [0, 1], got {self.gamma}")


@dataclass(frozen=True)
class AgentsConfig:
    """The logical agents, spread over the MPI ranks."""

    n: int = 1
    """number of logical agents"""
    placement: Literal["auto", "blocks", "dynamic"] = "auto"
    """which rank runs which agent in synchronous rounds: "blocks" (contiguous blocks, one per rank),
    "dynamic" (ranks claim chunks of a quarter of a block, their own first, then chunks of other ranks'
    blocks not yet started; only for algorithms whose agents keep no state between rounds: es, es-fixed),
    "auto" (blocks for agents that act as one batch, as mpidrl's own do: a chunk is a smaller batch, so
    dynamic placement trades batching for balance; dynamic for agents that act one at a time).
    Results are the same whatever the placement."""
    batch: int = 0
    """the most sub-environments (agents x trials run together) a rank steps as one batch in synchronous
    rounds of the ES family; a rank with more runs its block in consecutive parts of equal size. 0: about
    2 MiB of policy parameters a part (8-8 MLP on CartPole: 2016 sub-environments, 32-32: 204). Every
    agent of a batch reads its own parameters at every step, so a batch whose parameters outgrow the
    caches is slower per agent than two halves run one after the other (with dynamic placement the chunks
    claimed are the batches). Results are the same whatever the batch."""

    def check(self, key: str) -> None:
        require(self.n >= 1, f"{key}.n", f"must be >= 1, got {self.n}")
        require(self.batch >= 0, f"{key}.batch", f"must be >= 0 (0: automatic), got {self.batch}")
        require(self.n <= 1_000_000, f"{key}.n", f"must be <= 1000000, got {self.n}")


@dataclass(frozen=True)
class PolicyConfig:
    """The parametric policy, a numpy function of one flat float64 vector."""

    kind: Literal["mlp"] = "mlp"
    """policy family (mlp: deterministic MLP; argmax for discrete actions, tanh-squashed for boxes)"""
    hidden: tuple[int, ...] = (8, 8)
    """hidden layer sizes"""
    activation: Literal["tanh", "relu"] = "tanh"
    """hidden activation"""
    init: Literal["random", "zeros"] = "random"
    """initial parameters of every trial: "random" (W ~ N(0, 1/fan_in), b = 0; stochastic policies' output layer
    100 times smaller) or "zeros" (all parameters 0, as the report authors' CartPole/Ant code)"""

    def check(self, key: str) -> None:
        for i, h in enumerate(self.hidden):
            require(h >= 1, f"{key}.hidden[{i}]", f"must be >= 1, got {h}")


@dataclass(frozen=True)
class OptimConfig:
    """The learner's optimizer, stepping on ``-g + l2 * theta``."""

    name: Literal["adam", "sgd"] = "adam"
    """adam, or sgd with (heavy-ball) momentum"""
    lr: float = 0.01
    """learning rate"""
    l2: float = 0.0
    """L2 regularisation coefficient"""
    momentum: float = 0.9
    """sgd momentum"""
    beta1: float = 0.9
    """adam first-moment decay"""
    beta2: float = 0.999
    """adam second-moment decay"""
    eps: float = 1e-8
    """adam denominator offset"""

    def check(self, key: str) -> None:
        require(self.lr > 0, f"{key}.lr", f"must be > 0, got {self.lr}")
        require(self.l2 >= 0, f"{key}.l2", f"must be >= 0, got {self.l2}")
        require(0 <= self.momentum < 1, f"{key}.momentum", f"must be in [0, 1), got {self.momentum}")
        require(0 <= self.beta1 < 1, f"{key}.beta1", f"must be in [0, 1), got {self.beta1}")
        require(0 <= self.beta2 < 1, f"{key}.beta2", f"must be in [0, 1), got {self.beta2}")
        require(self.eps > 0, f"{key}.eps", f"must be > 0, got {self.eps}")


@dataclass(frozen=True)
class TimeConfig:
    """The clock: real wall-clock, or a simulated clock driven by per-agent times."""

    mode: Literal["real", "simulated"] = "real"
    """real: wall-clock seconds; simulated: a virtual clock from h and kappa"""
    h: float | tuple[float, ...] | str | dict = 1.0
    """seconds for agent i to compute one gradient: a number, a list of n numbers, a formula such as
    "sqrt(i)" of i (1-based agent), n (agents) and d (parameters of the policy being learned, known once
    it is built from [env] and [policy]) with sqrt, log, exp, min, max, abs, or a table
    {dist = "exponential" | "lognormal" | "uniform", ...} drawn per gradient (see mpidrl.timing)"""
    kappa: float | tuple[float, ...] | str | dict = 0.0
    """seconds for agent i to take part in one communication (same forms as h), e.g. the paper's
    expensive communication "sqrt(i) * d ** 0.25" (d^(1/4) times sqrt(i))"""
    delay_scale: float = 0.0
    """real mode: sleep h_i * delay_scale seconds per gradient on top of the real computation (0: none)"""
    network: str = "kappa"
    """simulated mode, what a message costs: "kappa" (kappa_i seconds per exchange, whatever it carries),
    "links" (each message takes latency + bytes / bandwidth of its agent's link, from the four keys
    below), or a named profile that sets them: "infiniband", "ethernet", "wifi", "lte", "lte-stragglers"
    (docs/networks.md says where each comes from; keys given beside a profile override it)"""
    uplink_latency: float | tuple[float, ...] | str | dict | None = None
    """seconds before the first byte of agent i's message reaches the learner (same forms as h)"""
    uplink_bandwidth: float | tuple[float, ...] | str | dict | None = None
    """bytes per second of agent i's link to the learner (same forms as h; > 0)"""
    downlink_latency: float | tuple[float, ...] | str | dict | None = None
    """seconds before the first byte of a message from the learner reaches agent i"""
    downlink_bandwidth: float | tuple[float, ...] | str | dict | None = None
    """bytes per second of the learner's link to agent i (> 0)"""

    def check(self, key: str) -> None:
        require(self.delay_scale >= 0, f"{key}.delay_scale", f"must be >= 0, got {self.delay_scale}")
        links = [k for k in LINK_KEYS if getattr(self, k) is not None]
        if self.network == "kappa":
            require(not links, f"{key}.{links[0] if links else ''}", 'needs time.network = "links" or a profile')
            return
        require(
            self.mode == "simulated",
            f"{key}.network",
            'times messages on the simulated clock: set time.mode = "simulated"',
        )
        require(
            self.network == "links" or self.network in network_profiles(),
            f"{key}.network",
            f'expected "kappa", "links" or one of {", ".join(network_profiles())}, got {self.network!r}',
        )
        missing = [k for k in LINK_KEYS if getattr(self, k) is None]
        require(not missing, f"{key}.{missing[0] if missing else ''}", f'missing for time.network = "{self.network}"')


LINK_KEYS = ("uplink_latency", "uplink_bandwidth", "downlink_latency", "downlink_bandwidth")
"""The keys of ``[time]`` that describe each agent's link (``time.network`` other than "kappa")."""


def network_profiles() -> dict[str, dict[str, Any]]:
    """The named network profiles: name -> the ``[time]`` link keys it sets (mpidrl/config/networks/*.toml)."""
    folder = resources.files("mpidrl.config") / "networks"
    return {
        entry.name.removesuffix(".toml"): tomllib.loads(entry.read_text())["time"]
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml")
    }


def _with_profile(time: Mapping[str, Any]) -> dict[str, Any]:
    """``[time]`` with the keys of its named network profile filled in (keys given win)."""
    time = dict(time)
    profile = network_profiles().get(time.get("network", ""))
    if profile is not None:
        for key, value in profile.items():
            time.setdefault(key, value)
    return time


SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "env": EnvConfig,
    "agents": AgentsConfig,
    "policy": PolicyConfig,
    "optim": OptimConfig,
    "time": TimeConfig,
}


@dataclass(frozen=True)
class Config:
    """A whole experiment: every section, validated."""

    run: RunConfig = field(default_factory=RunConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    algo: Any = field(default_factory=AlgoParams)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    time: TimeConfig = field(default_factory=TimeConfig)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data."""
        return to_plain(self)

    def to_json(self) -> str:
        """The resolved config as canonical JSON (stored in every run file)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def from_dict(data: Mapping[str, Any]) -> Config:
    """Validate plain data (as read from TOML) into a :class:`Config`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: expected a table, got {data!r}")
    allowed = list(SECTIONS) + ["algo"]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; allowed sections are {', '.join(allowed)}")
    tables = {name: data.get(name, {}) for name in SECTIONS}
    if isinstance(tables["time"], Mapping):
        tables["time"] = _with_profile(tables["time"])
    sections = {name: build(cls, tables[name], name) for name, cls in SECTIONS.items()}
    algo_data = data.get("algo", {})
    if not isinstance(algo_data, Mapping):
        raise ConfigError(f"algo: expected a table, got {algo_data!r}")
    name = algo_data.get("name", registry.DEFAULT)
    spec = registry.lookup(name)
    algo = build(spec.params, {**algo_data, "name": name}, "algo")
    algo.check_with("algo", sections)
    return Config(algo=algo, **sections)


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys: ``{"agents": {"n": 5}}`` becomes ``{"agents.n": 5}``.

    An empty table is kept as a value (``{"env.kwargs": {}}``), so that setting it is not lost.
    """
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def parse_overrides(pairs: Iterable[str]) -> list[tuple[list[str], Any]]:
    """Parse ``section.key=value`` strings; the value is read as a TOML value, else as a string."""
    parsed = []
    for pair in pairs:
        path, sep, raw = pair.partition("=")
        keys = path.strip().split(".")
        if not sep or len(keys) < 2 or not all(keys):
            raise ConfigError(f"--set {pair!r}: expected section.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        parsed.append((keys, value))
    return parsed


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``--set`` overrides applied (nested keys create tables)."""
    data = json.loads(json.dumps(data))  # deep copy of plain TOML data
    for keys, value in parse_overrides(overrides):
        node = data
        for depth, k in enumerate(keys[:-1]):
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(keys[: depth + 1])}: is a value, not a table")
        node[keys[-1]] = value
    return data


def switch_algorithm(data: Mapping[str, Any], overrides: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """``data`` with its ``[algo]`` table cut to the keys of the algorithm an override names.

    ``--set algo.name=X`` with X not the table's algorithm starts from X's defaults: the table's keys that X
    accepts keep their values, the others are dropped and returned (a table for one algorithm stays
    usable for another). Keys set by other overrides are left to them (an unknown one is still an error).
    """
    data = dict(data)
    names = [value for keys, value in parse_overrides(overrides) if keys == ["algo", "name"]]
    table = data.get("algo")
    if not names or not isinstance(table, Mapping) or not isinstance(names[-1], str):
        return data, []
    new, old = names[-1], table.get("name", registry.DEFAULT)
    if new == old:
        return data, []
    try:
        params = registry.lookup(new).params
    except ConfigError:
        return data, []  # from_dict reports the unknown algorithm
    accepted = {f.name for f in dataclasses.fields(params) if f.init}
    dropped = sorted(set(table) - accepted)
    data["algo"] = {k: v for k, v in table.items() if k in accepted}
    return data, [f"algo.{k}" for k in dropped]


def resolve(data: Mapping[str, Any], overrides: Iterable[str] = (), notes: list[str] | None = None) -> dict[str, Any]:
    """Plain config data with ``--set`` overrides applied, the algorithm switched first
    (:func:`switch_algorithm`); a warning naming the dropped keys is appended to ``notes``."""
    overrides = list(overrides)
    data, dropped = switch_algorithm(data, overrides)
    if dropped and notes is not None:
        name = [value for keys, value in parse_overrides(overrides) if keys == ["algo", "name"]][-1]
        notes.append(f"algo.name={name}: dropped {', '.join(dropped)} ({name} has no such parameters)")
    return apply_overrides(data, overrides)


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a TOML file, turning every failure into a one-line ConfigError (``what`` names the file's role)."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML (not UTF-8 text)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def load(path: str | Path | None, overrides: Iterable[str] = (), notes: list[str] | None = None) -> Config:
    """Load a config file (or the defaults when ``path`` is None) and apply ``--set`` overrides
    (:func:`resolve`; its warnings go to ``notes``)."""
    data = read_toml(path) if path is not None else {}
    return from_dict(resolve(data, overrides, notes))
