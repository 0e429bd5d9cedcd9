"""The report's grid worlds as registered Gymnasium environments (report 3.3.2, 4.6).

All three share one action set, in Gymnasium's FrozenLake order with a fifth action appended:
0 left, 1 down, 2 right, 3 up, 4 stay. Observations are the state index ``row * cols + col``
(``Discrete(rows * cols)``); MLP policies one-hot encode them (:func:`mpidrl.envs.observation_encoder`).

- ``mpidrl/SimpleGrid-v0``: 5x5, start top-left, goal bottom-right, reward -1 per step and 0 on the
  step that reaches the goal, which terminates the episode. The shortest path has 8 steps, so the
  optimal undiscounted return is -7 and the optimal discounted one -(1 - gamma^7) / (1 - gamma).
- ``mpidrl/WindyGrid-v0``: Simple Grid where, after the action's move, the wind pushes the agent: by
  default one square up with probability 0.3 and, independently, one square left with probability 0.3,
  both away from the goal. The ``wind`` keyword gives the pushes as (direction, probability) pairs,
  applied in order, each an independent draw and each clipped at the walls: ``wind = [["down", 0.3],
  ["left", 0.3]]`` is the wind of the report authors' code (one push towards the goal, one away; see
  docs/reproduction.md). The wind is drawn from the environment's ``np_random``, so ``reset(seed=...)``
  fixes it.
- ``mpidrl/FrozenLake5x5-v0``: Gymnasium's FrozenLake-v1 dynamics on the fixed 5x5 map
  :data:`FROZEN_LAKE_5X5` (reward 1 at the goal, holes end the episode), slippery by default as
  FrozenLake-v1 is (``is_slippery=False`` makes it deterministic). The added ``stay`` action never
  slips: it has no direction to slip sideways from.

Every grid is registered with a cap of 100 steps (FrozenLake-v1's own cap on its 4x4 map); the
TimeLimit wrapper truncates longer episodes, and ``[env] max_steps`` overrides the cap.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv

LEFT, DOWN, RIGHT, UP, STAY = range(5)
"""Action indices shared by every grid world."""

MOVES = {LEFT: (0, -1), DOWN: (1, 0), RIGHT: (0, 1), UP: (-1, 0), STAY: (0, 0)}
"""(row, column) change of each action."""

MAX_EPISODE_STEPS = 100
"""Registered step cap of every grid world."""

FROZEN_LAKE_5X5 = ("SFFFF", "FHFHF", "FFFHF", "HFFFF", "FHFFG")
"""The fixed Frozen Lake map: S start, F frozen, H hole, G goal (chosen for mpidrl; the report's
figure 3.3 shows its map only as a picture, and the report authors' code ran Gymnasium's own
FrozenLake-v1 on its 4x4 map, not slippery, which mpidrl runs as it is)."""

WIND_DIRECTIONS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
"""(row, column) change of each direction the wind can push in."""

WIND_AWAY = (("up", 0.3), ("left", 0.3))
"""Windy Grid's registered wind: two independent 30 % pushes, up then left, both away from the goal."""

_BLOCK = 256  # uniforms drawn from np_random at a time for the wind

IDS = ("mpidrl/SimpleGrid-v0", "mpidrl/WindyGrid-v0", "mpidrl/FrozenLake5x5-v0")
"""Ids of the grid worlds, registered when :mod:`mpidrl.envs` is imported."""


def move_table(rows: int, cols: int, n_actions: int = len(MOVES)) -> list[list[int]]:
    """The cell each of the first ``n_actions`` actions moves to from every cell, clipped at the walls
    (no wind, no slipping): ``table[s][a]``."""
    moves = list(MOVES.values())[:n_actions]
    return [
        [min(max(r + dr, 0), rows - 1) * cols + min(max(c + dc, 0), cols - 1) for dr, dc in moves]
        for r in range(rows)
        for c in range(cols)
    ]


def successor_cells(env: gym.Env) -> np.ndarray:
    """int64 [n_states, n_actions]: the cell an action's move leads to from each cell, wind and slipping
    ignored, on mpidrl's grid worlds and on Gymnasium's Frozen Lake (any map; its actions are the first
    four of :data:`MOVES`). ValueError for other environments."""
    base = env.unwrapped
    if isinstance(base, GridWorld):
        return np.array(base._moves, dtype=np.int64)
    if isinstance(base, FrozenLakeEnv):
        return np.array(move_table(base.nrow, base.ncol, int(base.action_space.n)), dtype=np.int64)
    raise ValueError(f"the successor cells of {type(base).__name__} are not known (a grid world is needed)")


def wind_pushes(wind: Any, rows: int, cols: int) -> list[tuple[float, int, list[bool]]]:
    """The pushes of a ``wind`` keyword, for a rows x cols grid: (probability, change of the state index,
    whether the push stays inside the grid from each state), in order; pushes of probability 0 left out
    (they draw nothing)."""
    try:
        pairs = [(str(direction), float(p)) for direction, p in wind]
    except (TypeError, ValueError):
        raise ValueError(f"wind must be a list of [direction, probability] pairs, got {wind!r}") from None
    pushes = []
    for direction, p in pairs:
        if direction not in WIND_DIRECTIONS:
            raise ValueError(f"wind direction {direction!r} is not one of {', '.join(WIND_DIRECTIONS)}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"wind probability of {direction!r} must be in [0, 1], got {p}")
        if p > 0:
            dr, dc = WIND_DIRECTIONS[direction]
            inside = [0 <= r + dr < rows and 0 <= c + dc < cols for r in range(rows) for c in range(cols)]
            pushes.append((p, dr * cols + dc, inside))
    return pushes


class GridWorld(gym.Env):
    """A rows x cols grid from the top-left to the bottom-right corner, -1 per step, optional wind."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        rows: int = 5,
        cols: int = 5,
        wind: Any = (),
        render_mode: str | None = None,
    ):
        if rows < 1 or cols < 1 or rows * cols < 2:
            raise ValueError(f"a grid needs at least two cells, got {rows}x{cols}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r} is not supported")
        self.rows, self.cols = rows, cols
        self.pushes = wind_pushes(wind, rows, cols)
        """the wind: (probability, change of the state index, allowed from each state), in order"""
        self.render_mode = render_mode
        self.goal = rows * cols - 1
        self.observation_space = spaces.Discrete(rows * cols)
        self.action_space = spaces.Discrete(len(MOVES))
        # next state of each (state, action) without wind, as plain lists: a step is then a lookup
        self._moves = move_table(rows, cols)
        self._state = 0
        self._uniforms: list[float] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._uniforms = []  # drawn from the old np_random
        self._state = 0
        return 0, {}

    def _uniform(self) -> float:
        """The next U(0, 1) of np_random, drawn in blocks (one draw call per step costs more than the step)."""
        if not self._uniforms:
            self._uniforms = self.np_random.random(_BLOCK).tolist()[::-1]
        return self._uniforms.pop()

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        state = self._moves[self._state][int(action)]
        # Independent pushes, each clipped at the wall (a push into a wall leaves the agent where it is,
        # but its draw is still taken); Simple Grid has no pushes and consumes no randomness at all.
        for p, shift, inside in self.pushes:
            if self._uniform() < p and inside[state]:
                state += shift
        self._state = state
        terminated = state == self.goal
        return state, 0.0 if terminated else -1.0, terminated, False, {}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        cells = [["." for _ in range(self.cols)] for _ in range(self.rows)]
        cells[-1][-1] = "G"
        row, col = divmod(self._state, self.cols)
        cells[row][col] = "A"
        return "\n".join("".join(r) for r in cells) + "\n"


class FrozenLake5x5(FrozenLakeEnv):
    """FrozenLake-v1 on :data:`FROZEN_LAKE_5X5` with a fifth, non-slipping ``stay`` action."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, is_slippery: bool = True, render_mode: str | None = None):
        super().__init__(render_mode=render_mode, desc=list(FROZEN_LAKE_5X5), is_slippery=is_slippery)
        for s in range(self.nrow * self.ncol):
            letter = self.desc.flat[s]
            self.P[s][STAY] = [(1.0, s, 0, bytes(letter) in b"GH")]
        self.action_space = spaces.Discrete(len(MOVES))

    def step(self, a: Any) -> tuple[int, float, bool, bool, dict]:
        out = super().step(int(a))
        if int(a) == STAY:
            self.lastaction = None  # the text renderer names only the four moves
        return out


def register() -> None:
    """Register the grid worlds with Gymnasium (idempotent)."""
    entries = {
        IDS[0]: (GridWorld, {}),
        IDS[1]: (GridWorld, {"wind": WIND_AWAY}),
        IDS[2]: (FrozenLake5x5, {}),
    }
    for env_id, (cls, kwargs) in entries.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=f"{cls.__module__}:{cls.__name__}",
                max_episode_steps=MAX_EPISODE_STEPS,
                kwargs=kwargs,
            )


def shortest_path_return(gamma: float, rows: int = 5, cols: int = 5) -> float:
    """Optimal discounted return of Simple Grid: -1 on each step of the shortest path but its last."""
    steps = rows + cols - 2
    return -float(np.sum(gamma ** np.arange(steps - 1)))
