"""Trials in batches (``[run] trial_batch``): DQL, EBCDQL, DAVIA and ES on the grid worlds as arrays.

A batch of B trials runs its rounds together (:mod:`mpidrl.protocols.batch`). The learner side is one
learner per trial (:class:`~mpidrl.protocols.BatchLearner`; DQL and EBCDQL update all trials' tables in
one pass, :class:`BatchQLearner`); the agent side (:class:`GridBatchWorker` and its subclasses) hosts
the rank's agents for every trial of the batch and runs all their episodes at once, B x (hosted agents)
environments stepped as array lookups (:mod:`mpidrl.envs.batch`). Environment e of the batch is hosted
agent ``e // B`` in trial ``e % B`` (agent-major, the order of the uplink gather).

Every number is the one the unbatched algorithm computes for that trial and agent, bit for bit:

- exploration (DQL, EBCDQL, DAVIA) takes the words of the agent's EXPLORE stream of the round and
  turns them into what ``explore_episode`` draws from it, per block of 64 steps: 64 uniforms
  (explore or not), 64 random actions (``integers(n_actions)``, Lemire's method on 32-bit halves), 64
  uniforms (ties between greedy actions), see :class:`ExplorationDraws`;
- environments reset with the agent's ENV seed (:func:`mpidrl.rng.reset_seed`) where the grid is random;
- the per-episode computations (TD errors, the trigger, DAVIA's g) are elementwise across episodes,
  with their sums in the same order as for one episode;
- ES perturbations come from the same NOISE streams and the greedy action table from the same
  fixed-order forward pass (:meth:`mpidrl.policies.MLP.greedy_table`).

So a trial's results depend neither on the batch size nor on the number of ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpidrl import rng
from mpidrl.algorithms.davia import davia_gradients, linear_q, predicted_decreases, upload_threshold
from mpidrl.algorithms.es import perturbation
from mpidrl.algorithms.qlearning import (
    _DRAWS,
    FINAL_STATE,
    SAMPLE_DTYPE,
    TERMINAL,
    TRANSITION_DTYPE,
    exploration_rate,
    td_update,
    trigger_floor,
)
from mpidrl.config import Config, ConfigError
from mpidrl.envs import EnvSpec
from mpidrl.envs.batch import Episodes, GridBatch, run_episodes
from mpidrl.policies import make_policy
from mpidrl.protocols import BatchLearner, BatchWorker, Context

_U53 = 1.0 / 9007199254740992.0  # numpy's uint64 -> [0, 1) double: (x >> 11) * 2^-53
_LOW32 = np.uint64(0xFFFFFFFF)


def uniforms(words: np.ndarray) -> np.ndarray:
    """Generator.random() of each 64-bit word."""
    return (words >> np.uint64(11)) * _U53


class ExplorationDraws:
    """What ``explore_episode`` draws from each environment's EXPLORE stream, block by block.

    A block of 64 steps takes 160 words: 64 uniforms, 32 words split into 64 32-bit halves (low, then
    high) for the random actions, 64 uniforms for the ties. A random action is ``(u32 * n) >> 32``
    unless Lemire's method rejects the half (``(u32 * n) mod 2^32 < (2^32 - n) mod n``, a chance of
    about 2^-32), in which case numpy draws another; an environment where that happens takes this block
    and every later one from a numpy generator replaying ``explore_episode``'s calls.
    """

    def __init__(self, seed: int, trials: np.ndarray, agents: np.ndarray, round: int, n_actions: int):
        self.seed, self.trials, self.agents, self.round, self.n = seed, trials, agents, round, n_actions
        self.threshold = np.uint64((2**32 - n_actions) % n_actions)
        size = len(trials)
        self.explore = np.zeros((size, 0))
        self.actions = np.zeros((size, 0), np.int64)
        self.ties = np.zeros((size, 0))
        self.replayed: set[int] = set()

    def at(self, t: int, envs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(explore uniform, random action, tie uniform) of step t for environments ``envs``."""
        if t >= self.explore.shape[1]:
            self._draw(t // _DRAWS, envs)
        return self.explore[envs, t], self.actions[envs, t], self.ties[envs, t]

    def _draw(self, block: int, envs: np.ndarray) -> None:
        size = len(self.trials)
        words = np.zeros((size, 160), np.uint64)
        for e in envs.tolist():
            words[e] = rng.raw(
                self.seed, int(self.trials[e]), rng.Stream.EXPLORE, self.round, int(self.agents[e]), 160, 40 * block
            )
        halves = np.empty((size, 64), np.uint64)
        halves[:, 0::2], halves[:, 1::2] = words[:, 64:96] & _LOW32, words[:, 64:96] >> np.uint64(32)
        m = halves * np.uint64(self.n)
        explore, actions, ties = uniforms(words[:, :64]), (m >> np.uint64(32)).astype(np.int64), uniforms(words[:, 96:])
        rejected = ((m & _LOW32) < self.threshold).any(axis=1)
        for e in set(envs[rejected[envs]].tolist()) | (self.replayed & set(envs.tolist())):
            explore[e], actions[e], ties[e] = self._replay(e, block)
            self.replayed.add(e)
        self.explore = np.concatenate([self.explore, explore], axis=1)
        self.actions = np.concatenate([self.actions, actions], axis=1)
        self.ties = np.concatenate([self.ties, ties], axis=1)

    def _replay(self, e: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block ``block`` of environment e as numpy's generator draws it (the rare, exact path)."""
        gen = rng.generator(self.seed, int(self.trials[e]), rng.Stream.EXPLORE, self.round, int(self.agents[e]))
        for _ in range(block + 1):
            out = gen.random(_DRAWS), gen.integers(self.n, size=_DRAWS), gen.random(_DRAWS)
        return out


class BatchQLearner(BatchLearner):
    """DQL and EBCDQL: the TD updates of all trials in one pass over one table of B x n_states rows.

    Trial b's states are offset by b * n_states, so every (s, a) cell belongs to one trial and its
    mean TD error sums that trial's samples in agent order, as :class:`QLearner` does.
    """

    def update(self, round: int, messages: Sequence[Sequence[tuple[int, np.ndarray]]]) -> None:
        parts = [msg for received in messages for _, msg in received]
        if not parts:
            return
        lengths = [len(received) for received in messages]
        trial = np.repeat(np.repeat(np.arange(len(messages)), lengths), [len(msg) for msg in parts])
        s, a, r, s2, terminal = self.learners[0].unpack(np.concatenate(parts))
        if len(s) != len(trial):  # DQL: drop the state-only records, as unpack did
            trial = trial[np.concatenate(parts)["flag"] != FINAL_STATE]
        n_states = self.learners[0].model.n_states
        q = np.stack([learner.theta for learner in self.learners]).reshape(-1, self.learners[0].model.n_actions)
        offset = trial * n_states
        cfg = self.learners[0].ctx.cfg
        td_update(q, (s + offset, a, r, s2 + offset, terminal), cfg.algo.alpha, cfg.env.gamma)
        for b, learner in enumerate(self.learners):
            learner.theta = q[b * n_states : (b + 1) * n_states].reshape(-1)


class GridBatchWorker(BatchWorker):
    """The rank's agents in every trial of a batch, on a grid world stepped as arrays."""

    def __init__(self, cfg: Config, trials: Sequence[int], agents: Sequence[int], env_spec: EnvSpec):
        super().__init__(cfg, trials, agents, env_spec)
        self.grid = GridBatch(cfg.env)

    def reset_seeds(self, round: int) -> list[int] | None:
        if not self.grid.random:
            return None  # a deterministic grid ignores its seed: skip drawing it
        seed = self.cfg.run.seed
        pairs = zip(self.env_trial.tolist(), self.env_agent.tolist())
        return [rng.reset_seed(seed, self.trials[b], round, agent) for b, agent in pairs]

    def rows(self, ep: Episodes, messages: list[np.ndarray | None], *diagnostics: np.ndarray) -> np.ndarray:
        """The statistics rows of a round (columns of :data:`mpidrl.protocols.sync.STAT_COLUMNS`)."""
        nbytes = np.array([0 if m is None else m.nbytes for m in messages], dtype=float)
        columns = [ep.discounted, ep.undiscounted, np.ones(len(messages)), ep.steps, nbytes > 0, nbytes, *diagnostics]
        return np.stack(columns, axis=1).astype(float).reshape(len(self.agents), len(self.trials), -1)


def split(flat: np.ndarray, counts: np.ndarray) -> list[np.ndarray | None]:
    """Consecutive pieces of ``flat`` of the given lengths (None for a piece of length 0)."""
    ends = np.cumsum(counts).tolist()
    return [flat[end - c : end] if c else None for end, c in zip(ends, counts.tolist())]


class BatchValueWorker(GridBatchWorker):
    """Epsilon-greedy episodes with each trial's broadcast Q (DQL, EBCDQL; DAVIA's w is the same table)."""

    def tables(self) -> np.ndarray:
        """[B, n_states, n_actions] Q of each trial."""
        return self.payload.reshape(len(self.trials), self.env_spec.discrete_obs, self.env_spec.n_actions)

    def episodes(self, round: int) -> Episodes:
        q = self.tables()
        best = q == q.max(axis=2, keepdims=True)
        cumulative = np.cumsum(best, axis=2)
        count = cumulative[:, :, -1]
        epsilon = exploration_rate(self.cfg.algo, round)
        first = self.cfg.algo.greedy_ties == "first"
        draws = ExplorationDraws(
            self.cfg.run.seed, np.array(self.trials)[self.env_trial], self.env_agent, round, q.shape[2]
        )
        env_trial = self.env_trial

        def policy(t: int, envs: np.ndarray, states: np.ndarray) -> np.ndarray:
            explore, random_actions, ties = draws.at(t, envs)
            b = env_trial[envs]
            # the pick-th of the tied greedy actions (the 0-th: the first)
            pick = np.zeros(len(envs), np.int64) if first else (ties * count[b, states]).astype(np.int64)
            greedy = np.argmax(cumulative[b, states] > pick[:, None], axis=1)
            return np.where(explore < epsilon, random_actions, greedy)

        return run_episodes(self.grid, len(env_trial), policy, self.cfg.env.gamma, self.reset_seeds(round))

    def td_errors(self, ep: Episodes) -> np.ndarray:
        """[E, T] TD error of every step with the trial's Q (no bootstrap after a terminal step)."""
        q = self.tables()[self.env_trial]
        rows = np.arange(len(q))[:, None]
        last = np.arange(ep.actions.shape[1]) == ep.steps[:, None] - 1
        bootstrap = np.where(last & ep.terminated[:, None], 0.0, q[rows, ep.states[:, 1:]].max(axis=2))
        return ep.rewards + self.cfg.env.gamma * bootstrap - q[rows, ep.states[:, :-1], ep.actions]


class BatchDQLWorker(BatchValueWorker):
    """Every episode's whole trajectory (the records of :func:`mpidrl.algorithms.qlearning.pack_trajectory`)."""

    def act(self, round: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
        ep = self.episodes(round)
        width = ep.states.shape[1]
        j = np.arange(width)
        records = (j < ep.steps[:, None]) | ((j == ep.steps[:, None]) & ~ep.terminated[:, None])
        flat = np.zeros(int(records.sum()), TRANSITION_DTYPE)
        flat["s"] = ep.states[records]
        flat["a"] = np.pad(ep.actions, ((0, 0), (0, 1)))[records]
        flat["r"] = np.pad(ep.rewards, ((0, 0), (0, 1)))[records]
        flags = np.where(j == ep.steps[:, None], FINAL_STATE, 0)
        flags = np.where((j == ep.steps[:, None] - 1) & ep.terminated[:, None], TERMINAL, flags)
        flat["flag"] = flags[records]
        messages = split(flat, records.sum(axis=1))
        return self.rows(ep, messages), messages


class BatchEBCDQLWorker(BatchValueWorker):
    """The triggered samples of every episode; one trigger level per (agent, trial), kept across rounds."""

    def __init__(self, cfg: Config, trials: Sequence[int], agents: Sequence[int], env_spec: EnvSpec):
        super().__init__(cfg, trials, agents, env_spec)
        self.level = np.zeros(len(self.env_trial))

    def act(self, round: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
        p = self.cfg.algo
        ep = self.episodes(round)
        deltas = np.abs(self.td_errors(ep))
        sent = np.zeros(deltas.shape, bool)
        level, floor = self.level, trigger_floor(p, round)
        for t in range(deltas.shape[1]):  # the trigger of qlearning.trigger, for every episode at once
            live = t < ep.steps
            level = np.where(live, (1.0 - p.beta) * level + p.beta * deltas[:, t], level)
            sent[:, t] = live & (deltas[:, t] >= np.maximum(p.rho * level, floor))
        self.level = level
        flat = np.zeros(int(sent.sum()), SAMPLE_DTYPE)
        last = np.arange(deltas.shape[1]) == ep.steps[:, None] - 1
        flat["s"], flat["a"], flat["r"] = ep.states[:, :-1][sent], ep.actions[sent], ep.rewards[sent]
        flat["s2"], flat["terminal"] = ep.states[:, 1:][sent], (last & ep.terminated[:, None])[sent]
        counts = sent.sum(axis=1)
        messages = split(flat, counts)
        return self.rows(ep, messages, level, counts), messages

    def state_dict(self) -> dict[str, np.ndarray]:
        """Trigger levels, one row per hosted agent, one column per trial of the batch."""
        return {"agents": np.array(self.agents), "trigger_level": self.level.reshape(len(self.agents), -1).copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state["agents"].tolist() != self.agents:
            raise ValueError(f"checkpoint holds agents {state['agents'].tolist()}, this rank hosts {self.agents}")
        self.level = state["trigger_level"].reshape(-1).copy()


class BatchDAVIAWorker(BatchValueWorker):
    """g of every episode (:func:`mpidrl.algorithms.davia.davia_gradients`), sent when the condition holds."""

    def __init__(self, cfg: Config, trials: Sequence[int], agents: Sequence[int], env_spec: EnvSpec):
        super().__init__(cfg, trials, agents, env_spec)
        self.model = linear_q(cfg, env_spec)

    def tables(self) -> np.ndarray:
        """[B, n_states, n_actions] Q = w[feature of (s, a)] of each trial (features are one-hot)."""
        return self.payload[:, self.model.index]

    def act(self, round: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
        p = self.cfg.algo
        ep = self.episodes(round)
        w = self.payload[self.env_trial]
        g, index = davia_gradients(
            w,
            self.model.index,
            ep.states,
            ep.actions,
            ep.rewards,
            ep.steps,
            ep.terminated,
            self.cfg.env.gamma,
            p.reg,
        )
        decrease = predicted_decreases(g, index, ep.steps, p.step)
        send = decrease >= upload_threshold(p.lam, p.rho, p.horizon, round)
        messages = [g[e] if send[e] else None for e in range(len(g))]
        return self.rows(ep, messages, decrease), messages


class BatchESWorker(GridBatchWorker):
    """Each (agent, trial)'s perturbed greedy policy for one episode; sends its discounted return."""

    def __init__(self, cfg: Config, trials: Sequence[int], agents: Sequence[int], env_spec: EnvSpec):
        super().__init__(cfg, trials, agents, env_spec)
        self.policy = make_policy(cfg.policy, env_spec)
        self.contexts = [Context(cfg, t, env_spec) for t in self.trials]

    def act(self, round: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
        sigma, size = self.cfg.algo.sigma, self.policy.size
        thetas = np.empty((len(self.env_trial), size))
        for e, (b, agent) in enumerate(zip(self.env_trial.tolist(), self.env_agent.tolist())):
            thetas[e] = self.payload[b] + sigma * perturbation(self.contexts[b], round, agent, size)
        table = self.policy.greedy_table(thetas)
        ep = run_episodes(
            self.grid, len(thetas), lambda t, envs, s: table[envs, s], self.cfg.env.gamma, self.reset_seeds(round)
        )
        messages = list(ep.discounted.reshape(-1, 1))
        return self.rows(ep, messages), messages


def check_grid(cfg: Config, env_spec: EnvSpec) -> None:
    """Raise ConfigError unless the environment is a grid world the batch can step."""
    GridBatch(cfg.env)


def check_es(cfg: Config, env_spec: EnvSpec) -> None:
    """Raise ConfigError unless ES can run in batches with this config."""
    if cfg.algo.downlink != "params" or cfg.algo.episodes != 1:
        raise ConfigError('run.trial_batch: batched ES needs algo.downlink = "params" and algo.episodes = 1')
    if not env_spec.discrete_obs:
        raise ConfigError("run.trial_batch: batched ES needs a grid world (discrete states)")
    check_grid(cfg, env_spec)
