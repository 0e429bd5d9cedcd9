"""Action-value functions over discrete states and actions, on one flat float64 parameter vector.

:class:`TabularQ` keeps one value per (state, action): ``theta[s * n_actions + a]``.
:class:`LinearQ` is ``Q(s, a) = w . phi(s, a)`` with a fixed feature table ``phi``; the algorithms built
on it (DAVIA) treat ``w`` as the weights of a linear model and take gradients. Both feature maps are
one-hot, phi(s, a) = e_{index[s, a]}:

- ``"onehot"``: one feature per (state, action), index = s * n_actions + a (d = states x actions); it
  represents the same functions as the table.
- ``"successor"``: the cell the action's move leads to from s (wind and slipping ignored), d = states;
  actions that lead to the same cell share a feature, so Q(s, a) = w[s'(s, a)] is a value of the cell
  reached. This is the feature of the report authors' grid-world code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FEATURES = ("onehot", "successor")
"""Feature maps :class:`LinearQ` knows."""


def greedy_actor(q: np.ndarray) -> Callable[[np.ndarray], int]:
    """obs -> argmax_a Q(s, a) for one-hot encoded states (the first maximum on ties)."""
    return lambda obs: int(np.argmax(obs @ q))


class TabularQ:
    """A table Q[s, a] viewed from a flat vector of n_states * n_actions values."""

    def __init__(self, n_states: int, n_actions: int):
        self.n_states, self.n_actions = n_states, n_actions
        self.size = n_states * n_actions
        """number of parameters d"""

    def init(self) -> np.ndarray:
        """Q = 0 everywhere (every action ties, so the first greedy choices are uniform)."""
        return np.zeros(self.size)

    def table(self, theta: np.ndarray) -> np.ndarray:
        """[n_states, n_actions] view of ``theta``."""
        if theta.shape != (self.size,):
            raise ValueError(f"theta has shape {theta.shape}, the table needs ({self.size},)")
        return theta.reshape(self.n_states, self.n_actions)

    def actor(self, theta: np.ndarray) -> Callable[[np.ndarray], int]:
        return greedy_actor(self.table(theta))


class LinearQ:
    """Q(s, a) = w . phi(s, a) with a fixed one-hot feature table phi of shape [n_states, n_actions, d].

    ``successors`` ([n_states, n_actions] cells, :func:`mpidrl.envs.grids.successor_cells`) is needed
    by the "successor" features.
    """

    def __init__(self, n_states: int, n_actions: int, features: str = "onehot", successors: np.ndarray | None = None):
        if features not in FEATURES:
            raise ValueError(f"unknown features {features!r}; known: {', '.join(FEATURES)}")
        self.n_states, self.n_actions = n_states, n_actions
        self.size = self.feature_count(n_states, n_actions, features)
        """number of weights d"""
        if features == "onehot":
            self.index = np.arange(n_states * n_actions, dtype=np.int64).reshape(n_states, n_actions)
        else:
            if successors is None or np.shape(successors) != (n_states, n_actions):
                raise ValueError(f"successor features need a [{n_states}, {n_actions}] table of successor cells")
            self.index = np.asarray(successors, dtype=np.int64)
        """int64 [n_states, n_actions]: the feature (entry of w) of each state-action pair"""
        self.phi = np.eye(self.size)[self.index]

    @staticmethod
    def feature_count(n_states: int, n_actions: int, features: str) -> int:
        """d of a feature map: states x actions (one-hot), states (successor)."""
        return n_states if features == "successor" else n_states * n_actions

    def init(self) -> np.ndarray:
        """w = 0."""
        return np.zeros(self.size)

    def table(self, w: np.ndarray) -> np.ndarray:
        """[n_states, n_actions] values of every state-action pair."""
        if w.shape != (self.size,):
            raise ValueError(f"w has shape {w.shape}, the model needs ({self.size},)")
        return self.phi @ w

    def actor(self, w: np.ndarray) -> Callable[[np.ndarray], int]:
        return greedy_actor(self.table(w))
