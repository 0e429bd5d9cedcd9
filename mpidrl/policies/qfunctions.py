"""Action-value functions over discrete states and actions, on one flat float64 parameter vector.

:class:`TabularQ` keeps one value per (state, action): ``theta[s * n_actions + a]``.
:class:`LinearQ` is ``Q(s, a) = w . phi(s, a)`` with a fixed feature table ``phi``; with one-hot
features (the only kind the report uses) it represents the same functions as the table, but the
algorithms built on it (DAVIA) treat ``w`` as the weights of a linear model and take gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FEATURES = ("onehot",)
"""Feature maps :class:`LinearQ` knows."""


def greedy_sets(q: np.ndarray) -> list[list[int]]:
    """For each state (row of ``q``), the actions of maximal value (several when tied)."""
    best = q == q.max(axis=1, keepdims=True)
    actions = np.nonzero(best)[1].tolist()  # row-major: each state's actions in increasing order
    ends = np.cumsum(best.sum(axis=1)).tolist()
    return [actions[start:end] for start, end in zip([0, *ends[:-1]], ends)]


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
    """Q(s, a) = w . phi(s, a) with a fixed feature table phi of shape [n_states, n_actions, d]."""

    def __init__(self, n_states: int, n_actions: int, features: str = "onehot"):
        if features not in FEATURES:
            raise ValueError(f"unknown features {features!r}; known: {', '.join(FEATURES)}")
        self.n_states, self.n_actions = n_states, n_actions
        self.phi = np.eye(n_states * n_actions).reshape(n_states, n_actions, -1)
        self.size = self.phi.shape[2]
        """number of weights d"""

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
