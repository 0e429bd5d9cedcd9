"""Distributed Q-learning (DQL, report 2.4.1) and its event-triggered variant (EBCDQL, report 2.4.2).

Both share a tabular Q held by the learner and broadcast every round (``n_states * n_actions``
float64 values). Each agent runs one epsilon-greedy episode per round with the broadcast Q; its
exploration (random actions, ties between greedy actions) comes from the agent's EXPLORE stream keyed
by (round, agent), so results do not depend on how agents are spread over ranks.

Uplink, DQL: the whole trajectory as :data:`TRANSITION_DTYPE` records (state int16, action uint8,
flag uint8, reward float64: 12 bytes a step). The successor state s' of a step is the state of the
next record, so it is not sent twice; the last step of a terminated episode needs no s' (its value is
0), and a truncated episode appends one state-only record holding s_T. A message therefore shrinks as
episodes get shorter.

Uplink, EBCDQL: the agent computes each step's TD error delta with its copy of Q, updates its trigger
level L <- (1 - beta) L + beta |delta| (L starts at 0 and lives across rounds) and keeps the step only if
|delta| >= max(rho L, floor), the floor being ``eps_floor`` (the specification keeps it apart from the
exploration rate) or, with ``trigger_floor = "exploration"``, the round's exploration rate (the report
authors' code used one epsilon for both). Kept steps are rarely consecutive, so each :data:`SAMPLE_DTYPE`
record carries its own s' (14 bytes a sample); an episode without a triggered step sends nothing.

Learner (both): every received sample's TD error is computed with the Q of the round (the one the
agents used), then Q(s, a) += alpha * mean of the deltas at (s, a).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mpidrl import rng
from mpidrl.config import AlgoParams, Config, ConfigError, require
from mpidrl.envs import EnvSpec
from mpidrl.envs.episodes import Episodes, rollout
from mpidrl.envs.pool import EnvPool
from mpidrl.policies.qfunctions import TabularQ, greedy_actor
from mpidrl.protocols import BlockWorker, Context, Results, SyncLearner


@dataclass(frozen=True)
class Exploration(AlgoParams):
    """The epsilon-greedy schedule every value-based algorithm shares."""

    explore_start: float = 0.8
    """epsilon-greedy exploration rate in round 0"""
    explore_decay: float = 0.01
    """exploration rate subtracted per round (one episode per agent per round)"""
    explore_end: float = 0.05
    """floor of the exploration rate"""
    greedy_ties: Literal["random", "first"] = "random"
    """how a greedy choice between actions of equal value is made: uniformly at random, or the first in action
    order (numpy's argmax; the same random numbers are drawn either way)"""

    def check(self, key: str) -> None:
        for name in ("explore_start", "explore_end"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{key}.{name}", f"must be in [0, 1], got {value}")
        require(self.explore_decay >= 0, f"{key}.explore_decay", f"must be >= 0, got {self.explore_decay}")
        require(
            self.explore_end <= self.explore_start,
            f"{key}.explore_end",
            f"must be <= explore_start ({self.explore_start}), got {self.explore_end}",
        )


@dataclass(frozen=True)
class DQLParams(Exploration):
    """Distributed Q-learning (report 2.4.1): each agent sends its whole trajectory every episode."""

    alpha: float = 0.9
    """learner step: Q(s, a) += alpha * mean TD error of the round's samples at (s, a)"""

    def check(self, key: str) -> None:
        require(0 < self.alpha <= 1, f"{key}.alpha", f"must be in (0, 1], got {self.alpha}")
        super().check(key)


@dataclass(frozen=True)
class EBCDQLParams(DQLParams):
    """Event-based communication DQL (report 2.4.2): only samples whose TD error triggers are sent."""

    beta: float = 0.3
    """trigger level filter: L <- (1 - beta) L + beta |delta| (report range 0.05-0.6)"""
    rho: float = 1.1
    """a sample is sent when |delta| >= max(rho L, floor) (report range 0.9-1.3)"""
    eps_floor: float = 0.01
    """smallest |TD error| ever sent (with trigger_floor "eps_floor")"""
    trigger_floor: Literal["eps_floor", "exploration"] = "eps_floor"
    """the floor of the trigger |delta| >= max(rho L, floor): eps_floor, or the round's exploration rate
    (one epsilon as both exploration rate and floor)"""

    def check(self, key: str) -> None:
        require(0 < self.alpha <= 1, f"{key}.alpha", f"must be in (0, 1], got {self.alpha}")
        require(0 < self.beta <= 1, f"{key}.beta", f"must be in (0, 1], got {self.beta}")
        require(self.rho > 0, f"{key}.rho", f"must be > 0, got {self.rho}")
        require(self.eps_floor >= 0, f"{key}.eps_floor", f"must be >= 0, got {self.eps_floor}")
        Exploration.check(self, key)


CONTINUES, TERMINAL, FINAL_STATE = 0, 1, 2
"""Flags of a trajectory record: s' is the next record's state; the episode terminated here (no s');
the record only holds s_T of a truncated episode (no action, no reward)."""

TRANSITION_DTYPE = np.dtype([("s", "<i2"), ("a", "u1"), ("flag", "u1"), ("r", "<f8")])
"""One step of a DQL trajectory."""

SAMPLE_DTYPE = np.dtype([("s", "<i2"), ("a", "u1"), ("terminal", "u1"), ("r", "<f8"), ("s2", "<i2")])
"""One triggered EBCDQL sample (s, a, r, s', terminated)."""

_DRAWS = 64  # exploration draws taken from the stream at a time (longer episodes draw again)


def exploration_rate(params: object, round: int) -> float:
    """epsilon_k = max(explore_end, explore_start - explore_decay * k) for round k."""
    return max(params.explore_end, params.explore_start - params.explore_decay * round)


def unpack_trajectory(msg: np.ndarray) -> tuple[np.ndarray, ...]:
    """(s, a, r, s', terminal) arrays of the steps of a DQL message."""
    s = msg["s"].astype(np.int64)
    s_next = np.append(s[1:], 0)  # the terminal step's s' is unused
    step = msg["flag"] != FINAL_STATE
    return s[step], msg["a"][step].astype(np.int64), msg["r"][step], s_next[step], msg["flag"][step] == TERMINAL


def unpack_samples(msg: np.ndarray) -> tuple[np.ndarray, ...]:
    """(s, a, r, s', terminal) arrays of an EBCDQL message."""
    return (
        msg["s"].astype(np.int64),
        msg["a"].astype(np.int64),
        msg["r"],
        msg["s2"].astype(np.int64),
        msg["terminal"].astype(bool),
    )


def td_errors(
    q: np.ndarray, s: np.ndarray, a: np.ndarray, r: np.ndarray, s2: np.ndarray, terminal: np.ndarray, gamma: float
) -> np.ndarray:
    """delta = r + gamma max_a' Q(s', a') - Q(s, a), with no bootstrap after a terminal step."""
    return r + gamma * np.where(terminal, 0.0, q[s2].max(axis=1)) - q[s, a]


def td_update(q: np.ndarray, samples: Sequence[np.ndarray], alpha: float, gamma: float) -> None:
    """Q(s, a) += alpha * mean of the TD errors (all computed with the current Q) at (s, a), in place."""
    s, a, r, s2, terminal = samples
    delta = td_errors(q, s, a, r, s2, terminal, gamma)
    index = s * q.shape[1] + a
    sums = np.bincount(index, delta, minlength=q.size)
    counts = np.bincount(index, minlength=q.size)
    hit = counts > 0
    q.reshape(-1)[hit] += alpha * sums[hit] / counts[hit]


def trigger_floor(params: object, round: int) -> float:
    """The smallest |TD error| EBCDQL sends in ``round``."""
    return exploration_rate(params, round) if params.trigger_floor == "exploration" else params.eps_floor


def check_tabular(cfg: Config, spec: EnvSpec) -> None:
    """Refuse environments a table over (state, action) cannot represent."""
    name, env_id = cfg.algo.name, cfg.env.id
    if not spec.discrete_obs:
        raise ConfigError(
            f"algo.name: {name} needs a Discrete observation space (a table over states), but {env_id} "
            f"observes a {spec.obs_dim}-dimensional Box; use a grid world (e.g. mpidrl/SimpleGrid-v0) or es"
        )
    if not spec.discrete_actions:
        raise ConfigError(f"algo.name: {name} needs a Discrete action space, but {env_id} has continuous actions")
    if spec.discrete_obs > np.iinfo(np.int16).max or spec.n_actions > np.iinfo(np.uint8).max:
        raise ConfigError(
            f"env.id: {env_id} has {spec.discrete_obs} states and {spec.n_actions} actions; {name} messages "
            "hold at most 32767 states and 255 actions"
        )


class QLearner(SyncLearner):
    """The tabular learner of DQL; :meth:`unpack` reads one message into sample arrays."""

    unpack = staticmethod(unpack_trajectory)

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.model = TabularQ(ctx.env_spec.discrete_obs, ctx.env_spec.n_actions)
        self.theta = self.model.init()

    def downlink(self) -> np.ndarray:
        return self.theta

    def update(self, round: int, messages: Sequence[tuple[int, np.ndarray]]) -> None:
        if not messages:
            return
        # one unpack of all messages: a message ends in a record whose s' is never read (a terminal step,
        # or the state-only record of a truncated episode), so no step takes its s' from the next message
        # (joined as bytes: concatenating structured arrays costs a dtype promotion per array)
        dtype = messages[0][1].dtype
        samples = self.unpack(np.concatenate([np.ascontiguousarray(m).view(np.uint8) for _, m in messages]).view(dtype))
        self.theta = self.theta.copy()  # the broadcast array may still be in the agents' hands (one process)
        td_update(self.model.table(self.theta), samples, self.ctx.cfg.algo.alpha, self.ctx.cfg.env.gamma)

    def actor(self):
        return greedy_actor(self.model.table(self.theta))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"q": self.theta.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.theta = state["q"].copy()


class EBCDQLLearner(QLearner):
    """The tabular learner of EBCDQL: messages are triggered samples."""

    unpack = staticmethod(unpack_samples)


class ValueWorker(BlockWorker):
    """Agent side shared by the value-based algorithms: each (agent, trial) runs one epsilon-greedy episode a
    round with its trial's broadcast Q, all of them at once."""

    def __init__(self, contexts: Sequence[Context], agents: Sequence[int]):
        super().__init__(contexts, agents)
        spec = self.ctx.env_spec
        self.shape = (spec.discrete_obs, spec.n_actions)
        self.envs = EnvPool(self.ctx.cfg.env, self.agents, len(self.contexts))
        self.env_trial = np.tile(np.arange(len(self.contexts)), len(self.agents))
        """index among the trials of each (agent, trial) the worker runs, agent-major"""
        self.payloads = np.zeros((len(self.contexts), 0))

    def receive(self, payloads: Sequence[np.ndarray]) -> None:
        self.payloads = np.stack(payloads)

    def tables(self) -> np.ndarray:
        """[T, n_states, n_actions] Q of each trial."""
        return self.payloads.reshape(len(self.contexts), *self.shape)

    def episodes(self, round: int) -> Episodes:
        """Every (agent, trial)'s epsilon-greedy episode of ``round``, with its trajectory."""
        cfg = self.ctx.cfg
        pairs = [(ctx.trial, agent) for agent in self.agents for ctx in self.contexts]
        policy = EpsilonGreedy(self.tables(), self.env_trial, pairs, round, cfg)
        batch = self.envs.batch(self.agents)
        if batch.seeded:
            seeds = [rng.reset_seed(cfg.run.seed, trial, round, agent) for trial, agent in pairs]
        else:  # the reset seeds would decide nothing: do not draw them
            seeds = [0] * len(pairs)
        return rollout(batch, policy, cfg.env.gamma, seeds, record=True)

    def td_errors(self, ep: Episodes) -> np.ndarray:
        """[E, T] TD error of every step with its trial's Q (:func:`td_errors`; 0 after the episode)."""
        n_states, n_actions = self.shape
        live = np.arange(ep.actions.shape[1]) < ep.steps[:, None]
        last = np.arange(ep.actions.shape[1]) == ep.steps[:, None] - 1
        offset = (self.env_trial * n_states)[:, None]  # trial b's states are rows b * n_states + s of one table
        s, s2 = (ep.observations[:, :-1] + offset)[live], (ep.observations[:, 1:] + offset)[live]
        terminal = (last & ep.terminated[:, None])[live]
        deltas = np.zeros(live.shape)
        q = self.tables().reshape(-1, n_actions)
        deltas[live] = td_errors(q, s, ep.actions[live], ep.rewards[live], s2, terminal, self.ctx.cfg.env.gamma)
        return deltas

    @staticmethod
    def results(ep: Episodes, messages: list[np.ndarray | None], *diagnostics: np.ndarray) -> Results:
        return Results(messages, ep.discounted, ep.undiscounted, 1, ep.steps, diagnostics)


class EpsilonGreedy:
    """The epsilon-greedy policy of a batch of (agent, trial) pairs with their trials' Q tables.

    Each pair draws from its EXPLORE stream of the round, 64 steps at a time, exactly these calls: 64
    uniforms (explore or not), 64 random actions (``integers(n_actions)``), 64 uniforms (ties between greedy
    actions: the pick-th of the tied actions, pick = int(u * count), or with ``greedy_ties = "first"`` the
    first, the draw still taken). A zero-initialised Q thus starts with a uniform random walk. The first
    block comes from the stream's scratch generator (:func:`mpidrl.rng.scratch`); a pair whose episode
    goes on gets a generator of its own, brought to the same point by drawing the first block again.
    """

    def __init__(self, q: np.ndarray, env_trial: np.ndarray, pairs: list[tuple[int, int]], round: int, cfg: Config):
        best = q == q.max(axis=2, keepdims=True)
        self.cumulative = np.cumsum(best, axis=2)
        self.count = self.cumulative[:, :, -1]
        self.env_trial, self.n_actions = env_trial, q.shape[2]
        self.epsilon = exploration_rate(cfg.algo, round)
        self.first = cfg.algo.greedy_ties == "first"
        self.seed, self.round, self.pairs = cfg.run.seed, round, pairs
        self.gens: dict[int, np.random.Generator] = {}
        """generators of the pairs that needed a second block"""
        size = (len(pairs), _DRAWS)
        self.draws = (np.zeros(size), np.zeros(size, np.int64), np.zeros(size))
        self.t = 0

    def _block(self, gen: np.random.Generator, e: int) -> None:
        explore, actions, ties = self.draws
        explore[e], actions[e], ties[e] = (
            gen.random(_DRAWS),
            gen.integers(self.n_actions, size=_DRAWS),
            gen.random(_DRAWS),
        )

    def generator(self, e: int, blocks: int) -> np.random.Generator:
        """Pair e's own generator; made on first need and brought past its first ``blocks`` blocks."""
        if e not in self.gens:
            trial, agent = self.pairs[e]
            gen = self.gens[e] = rng.generator(self.seed, trial, rng.Stream.EXPLORE, self.round, agent)
            for _ in range(blocks):
                gen.random(_DRAWS), gen.integers(self.n_actions, size=_DRAWS), gen.random(_DRAWS)
        return self.gens[e]

    def __call__(self, active: np.ndarray, states: np.ndarray) -> np.ndarray:
        i = self.t % _DRAWS
        if i == 0:
            for e in active.tolist():
                if self.t == 0:
                    trial, agent = self.pairs[e]
                    self._block(rng.scratch(self.seed, trial, rng.Stream.EXPLORE, self.round, agent), e)
                else:
                    self._block(self.generator(e, self.t // _DRAWS), e)
        self.t += 1
        explore, random_actions, ties = (d[active, i] for d in self.draws)
        b = self.env_trial[active]
        pick = np.zeros(len(active), np.int64) if self.first else (ties * self.count[b, states]).astype(np.int64)
        greedy = np.argmax(self.cumulative[b, states] > pick[:, None], axis=1)
        return np.where(explore < self.epsilon, random_actions, greedy)


def split(flat: np.ndarray, counts: np.ndarray) -> list[np.ndarray | None]:
    """Consecutive pieces of ``flat`` of the given lengths (None for a piece of length 0)."""
    ends = np.cumsum(counts).tolist()
    return [flat[end - c : end] if c else None for end, c in zip(ends, counts.tolist())]


def pack_trajectories(ep: Episodes) -> list[np.ndarray]:
    """The DQL message of every episode (see :data:`TRANSITION_DTYPE`)."""
    width = ep.observations.shape[1]
    j = np.arange(width)
    records = (j < ep.steps[:, None]) | ((j == ep.steps[:, None]) & ~ep.terminated[:, None])
    flat = np.zeros(int(records.sum()), TRANSITION_DTYPE)
    flat["s"] = ep.observations[records]
    flat["a"] = np.pad(ep.actions, ((0, 0), (0, 1)))[records]
    flat["r"] = np.pad(ep.rewards, ((0, 0), (0, 1)))[records]
    flags = np.where(j == ep.steps[:, None], FINAL_STATE, CONTINUES)
    flags = np.where((j == ep.steps[:, None] - 1) & ep.terminated[:, None], TERMINAL, flags)
    flat["flag"] = flags[records]
    return split(flat, records.sum(axis=1))


class DQLWorker(ValueWorker):
    """Sends every episode's whole trajectory."""

    def act(self, round: int, agents: Sequence[int]) -> Results:
        ep = self.episodes(round)
        return self.results(ep, pack_trajectories(ep))


class EBCDQLWorker(ValueWorker):
    """Sends the steps whose TD error triggers; keeps each (agent, trial)'s trigger level L across rounds."""

    def __init__(self, contexts: Sequence[Context], agents: Sequence[int]):
        super().__init__(contexts, agents)
        self.level = np.zeros(len(self.env_trial))

    def act(self, round: int, agents: Sequence[int]) -> Results:
        p = self.ctx.cfg.algo
        ep = self.episodes(round)
        deltas = np.abs(self.td_errors(ep))
        sent, self.level = trigger(deltas, ep.steps, self.level, p.beta, p.rho, trigger_floor(p, round))
        flat = np.zeros(int(sent.sum()), SAMPLE_DTYPE)
        last = np.arange(deltas.shape[1]) == ep.steps[:, None] - 1
        flat["s"], flat["a"], flat["r"] = ep.observations[:, :-1][sent], ep.actions[sent], ep.rewards[sent]
        flat["s2"], flat["terminal"] = ep.observations[:, 1:][sent], (last & ep.terminated[:, None])[sent]
        counts = sent.sum(axis=1)
        return self.results(ep, split(flat, counts), self.level, counts)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Trigger levels, one row per hosted agent (one column per trial with several)."""
        level = self.level.reshape(len(self.agents), -1)
        return {"agents": np.array(self.agents), "trigger_level": level[:, 0] if level.shape[1] == 1 else level}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state["agents"].tolist() != self.agents:
            raise ValueError(f"checkpoint holds agents {state['agents'].tolist()}, this rank hosts {self.agents}")
        self.level = state["trigger_level"].reshape(-1).copy()


def trigger(
    deltas: np.ndarray, steps: np.ndarray, level: np.ndarray, beta: float, rho: float, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """EBCDQL's event trigger over episodes' |TD errors| [E, T] (each ``steps`` long); the mask of sent steps
    and the new levels L [E].

    For each step in order: L <- (1 - beta) L + beta |delta|, then send if |delta| >= max(rho L, floor).
    """
    sent = np.zeros(deltas.shape, bool)
    for t in range(deltas.shape[1]):
        live = t < steps
        level = np.where(live, (1.0 - beta) * level + beta * deltas[:, t], level)
        sent[:, t] = live & (deltas[:, t] >= np.maximum(rho * level, floor))
    return sent, level


def table_size(cfg: Config, spec: EnvSpec) -> int:
    """d of the Q table: states x actions."""
    return TabularQ(spec.discrete_obs, spec.n_actions).size
