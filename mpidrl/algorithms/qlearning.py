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

import gymnasium as gym
import numpy as np

from mpidrl import rng
from mpidrl.config import AlgoParams, Config, ConfigError, require
from mpidrl.envs import EnvSpec, make_env
from mpidrl.policies.qfunctions import TabularQ, greedy_actor, greedy_sets
from mpidrl.protocols import AgentResult, Context, SyncLearner, SyncWorker


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


@dataclass
class Trajectory:
    """One epsilon-greedy episode: T steps, states s_0..s_T."""

    states: np.ndarray
    """int64 [T + 1]"""
    actions: np.ndarray
    """int64 [T]"""
    rewards: np.ndarray
    """float64 [T]"""
    terminated: bool
    """the episode ended in a terminal state (else it was truncated)"""
    discounted: float
    """sum_t gamma^t r_t"""

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def undiscounted(self) -> float:
        return float(self.rewards.sum())

    def terminals(self) -> np.ndarray:
        """uint8 [T]: 1 on the step that terminated the episode."""
        out = np.zeros(self.steps, np.uint8)
        out[-1] = self.terminated
        return out


def explore_episode(
    env: gym.Env,
    greedy: list[list[int]],
    n_actions: int,
    epsilon: float,
    gen: np.random.Generator,
    seed: int,
    gamma: float,
    first: bool = False,
) -> Trajectory:
    """Run one episode: a uniform random action with probability ``epsilon``, else a greedy one.

    ``greedy[s]`` lists the actions of maximal Q at s; ties are broken uniformly with ``gen``, so a
    zero-initialised Q starts with a uniform random walk instead of always the first action, or, with
    ``first``, go to the first of them (the tie draw is still taken, so the streams stay aligned).
    """
    s, _ = env.reset(seed=seed)
    states, actions, rewards = [int(s)], [], []
    discounted, discount, i = 0.0, 1.0, _DRAWS
    while True:
        if i == _DRAWS:
            explore = (gen.random(_DRAWS) < epsilon).tolist()
            random_actions = gen.integers(n_actions, size=_DRAWS).tolist()
            tie = gen.random(_DRAWS).tolist()
            i = 0
        if explore[i]:
            a = random_actions[i]
        else:
            best = greedy[states[-1]]
            a = best[0] if first else best[int(tie[i] * len(best))]
        i += 1
        s, r, terminated, truncated, _ = env.step(a)
        r = float(r)
        states.append(int(s))
        actions.append(a)
        rewards.append(r)
        discounted += discount * r
        discount *= gamma
        if terminated or truncated:
            return Trajectory(np.array(states), np.array(actions), np.array(rewards), bool(terminated), discounted)


def pack_trajectory(traj: Trajectory) -> np.ndarray:
    """The DQL message of an episode (see :data:`TRANSITION_DTYPE`)."""
    extra = 0 if traj.terminated else 1
    msg = np.zeros(traj.steps + extra, TRANSITION_DTYPE)
    msg["s"][: traj.steps] = traj.states[:-1]
    msg["a"][: traj.steps] = traj.actions
    msg["r"][: traj.steps] = traj.rewards
    if traj.terminated:
        msg["flag"][-1] = TERMINAL
    else:
        msg["s"][-1] = traj.states[-1]
        msg["flag"][-1] = FINAL_STATE
    return msg


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


def trigger(deltas: np.ndarray, level: float, beta: float, rho: float, floor: float) -> tuple[np.ndarray, float]:
    """EBCDQL's event trigger over an episode's TD errors; returns the mask of sent steps and the new L.

    For each step in order: L <- (1 - beta) L + beta |delta|, then send if |delta| >= max(rho L, floor).
    """
    mask = np.zeros(len(deltas), bool)
    for t, d in enumerate(np.abs(deltas).tolist()):
        level = (1.0 - beta) * level + beta * d
        mask[t] = d >= max(rho * level, floor)
    return mask, level


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
        parts = [self.unpack(msg) for _, msg in messages]
        samples = [np.concatenate(column) for column in zip(*parts)]
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


class ValueWorker(SyncWorker):
    """Agent side shared by the value-based algorithms: a Q table from the broadcast, one episode a round."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        super().__init__(ctx, agents)
        self.envs = {agent: make_env(ctx.cfg.env, agent) for agent in self.agents}
        self.q = np.zeros((ctx.env_spec.discrete_obs, ctx.env_spec.n_actions))
        self.greedy = greedy_sets(self.q)

    def table(self, payload: np.ndarray) -> np.ndarray:
        """The Q table a broadcast payload stands for."""
        return payload.reshape(self.q.shape)

    def receive(self, payload: np.ndarray) -> None:
        self.q = self.table(payload)
        self.greedy = greedy_sets(self.q)  # Q is fixed for the round: find the greedy actions once

    def episode(self, round: int, agent: int) -> Trajectory:
        """The agent's epsilon-greedy episode of ``round``."""
        ctx = self.ctx
        gen = rng.generator(ctx.seed, ctx.trial, rng.Stream.EXPLORE, round, agent)
        seed = rng.reset_seed(ctx.seed, ctx.trial, round, agent)
        epsilon = exploration_rate(ctx.cfg.algo, round)
        first = ctx.cfg.algo.greedy_ties == "first"
        return explore_episode(
            self.envs[agent], self.greedy, self.q.shape[1], epsilon, gen, seed, ctx.cfg.env.gamma, first
        )

    @staticmethod
    def result(traj: Trajectory, message: np.ndarray | None, diagnostics: tuple[float, ...] = ()) -> AgentResult:
        return AgentResult(message, traj.discounted, traj.undiscounted, 1, traj.steps, diagnostics)


class DQLWorker(ValueWorker):
    """Sends every episode's whole trajectory."""

    def act(self, round: int, agent: int) -> AgentResult:
        traj = self.episode(round, agent)
        return self.result(traj, pack_trajectory(traj))


class EBCDQLWorker(ValueWorker):
    """Sends the steps whose TD error triggers; keeps each agent's trigger level L across rounds."""

    def __init__(self, ctx: Context, agents: Sequence[int]):
        super().__init__(ctx, agents)
        self.level = {agent: 0.0 for agent in self.agents}

    def act(self, round: int, agent: int) -> AgentResult:
        p, gamma = self.ctx.cfg.algo, self.ctx.cfg.env.gamma
        traj = self.episode(round, agent)
        s, s2, terminal = traj.states[:-1], traj.states[1:], traj.terminals()
        deltas = td_errors(self.q, s, traj.actions, traj.rewards, s2, terminal, gamma)
        mask, self.level[agent] = trigger(deltas, self.level[agent], p.beta, p.rho, trigger_floor(p, round))
        message = None
        if mask.any():
            message = np.zeros(int(mask.sum()), SAMPLE_DTYPE)
            message["s"], message["a"], message["r"] = s[mask], traj.actions[mask], traj.rewards[mask]
            message["s2"], message["terminal"] = s2[mask], terminal[mask]
        return self.result(traj, message, (self.level[agent], float(mask.sum())))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"agents": np.array(self.agents), "trigger_level": np.array([self.level[a] for a in self.agents])}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        levels = dict(zip(state["agents"].tolist(), state["trigger_level"].tolist()))
        self.level = {agent: levels[agent] for agent in self.agents}


def table_size(cfg: Config, spec: EnvSpec) -> int:
    """d of the Q table: states x actions."""
    return TabularQ(spec.discrete_obs, spec.n_actions).size
