"""First-order optimizers on a flat parameter vector, minimising; state kept for exact resume."""

from __future__ import annotations

import numpy as np

from mpidrl.config import OptimConfig


class Optimizer:
    """Adam or SGD with heavy-ball momentum, with L2 regularisation added to the gradient.

    ``step(theta, grad)`` returns the new parameters for the loss gradient ``grad + l2 * theta``.
    """

    def __init__(self, cfg: OptimConfig, size: int):
        self.cfg = cfg
        self.m = np.zeros(size)
        """first moment (adam) or velocity (sgd)"""
        self.v = np.zeros(size)
        """second moment (adam only)"""
        self.t = 0
        """steps taken"""

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        g = grad + cfg.l2 * theta if cfg.l2 else grad
        self.t += 1
        if cfg.name == "sgd":
            self.m = cfg.momentum * self.m + g
            return theta - cfg.lr * self.m
        self.m = cfg.beta1 * self.m + (1.0 - cfg.beta1) * g
        self.v = cfg.beta2 * self.v + (1.0 - cfg.beta2) * g * g
        m_hat = self.m / (1.0 - cfg.beta1**self.t)
        v_hat = self.v / (1.0 - cfg.beta2**self.t)
        return theta - cfg.lr * m_hat / (np.sqrt(v_hat) + cfg.eps)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": np.array(self.t)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.m, self.v, self.t = state["m"].copy(), state["v"].copy(), int(state["t"])
