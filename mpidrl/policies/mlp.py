"""A multilayer perceptron whose weights are views into one flat float64 vector.

Layout of theta: for each layer in order, the weight matrix ``W`` (fan_in x fan_out, row-major) then the
bias ``b`` (fan_out). The deterministic action is the argmax of the outputs for discrete actions and
``low + (tanh(out) + 1) / 2 * (high - low)`` for boxes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mpidrl.config import PolicyConfig
from mpidrl.envs import EnvSpec

_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}


class MLP:
    """Deterministic MLP policy for an environment of spec ``spec``."""

    def __init__(self, spec: EnvSpec, hidden: tuple[int, ...] = (8, 8), activation: str = "tanh", init: str = "random"):
        out = spec.n_actions if spec.discrete_actions else spec.act_dim
        self.spec = spec
        self.initial = init
        """initial parameters: random (see :meth:`init`) or zeros"""
        self.sizes = (spec.obs_dim, *hidden, out)
        self.activation = _ACTIVATIONS[activation]
        self.shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.size = sum(i * o + o for i, o in self.shapes)
        """number of parameters d"""
        if not spec.discrete_actions:
            self._low = spec.act_low
            self._half_range = (spec.act_high - spec.act_low) / 2.0

    def layers(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W, b) views into ``theta`` for each layer."""
        if theta.shape != (self.size,):
            raise ValueError(f"theta has shape {theta.shape}, the policy needs ({self.size},)")
        out, pos = [], 0
        for fan_in, fan_out in self.shapes:
            w = theta[pos : pos + fan_in * fan_out].reshape(fan_in, fan_out)
            pos += fan_in * fan_out
            out.append((w, theta[pos : pos + fan_out]))
            pos += fan_out
        return out

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Initial parameters: W ~ N(0, 1/fan_in), b = 0; all zeros (``rng`` unused) with init "zeros"."""
        theta = np.zeros(self.size)
        if self.initial == "zeros":
            return theta
        for w, _ in self.layers(theta):
            w[...] = rng.standard_normal(w.shape) / np.sqrt(w.shape[0])
        return theta

    def forward(self, theta: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Outputs (logits or pre-squash actions) for one observation or a batch of them."""
        layers = self.layers(theta)
        x = obs
        for w, b in layers[:-1]:
            x = self.activation(x @ w + b)
        w, b = layers[-1]
        return x @ w + b

    def actor(self, theta: np.ndarray, raw: bool = False) -> Callable[[np.ndarray], object]:
        """A function obs -> action for fixed parameters (layer views computed once).

        With ``raw`` the function takes the environment's own observations (a state index for discrete
        observations, a float32 or float64 vector for boxes, which the first product turns into float64
        exactly) rather than encoded vectors, and saves the encoder's call on every step.
        """
        layers = self.layers(theta)
        hidden, (w_out, b_out) = layers[:-1], layers[-1]
        act = self.activation

        # One function per action kind, called once per environment step: no inner call layers, and the
        # ndarray argmax method rather than np.argmax's dispatch (each costs microseconds a step).
        if self.spec.discrete_actions:

            def greedy(x: np.ndarray) -> int:
                for w, b in hidden:
                    x = act(x @ w + b)
                return int((x @ w_out + b_out).argmax())

            if self.spec.discrete_obs:
                # Over a few discrete states a deterministic policy is a lookup table (obs is the state's
                # one-hot vector), computed as for a batch of policies so both give the same actions.
                table = self.greedy_table(theta[None])[0].tolist()
                if raw:
                    return lambda obs: table[int(obs)]
                return lambda obs: table[int(obs.argmax())]
            return greedy
        low, half = self._low, self._half_range

        def squashed(x: np.ndarray) -> np.ndarray:
            for w, b in hidden:
                x = act(x @ w + b)
            return low + (np.tanh(x @ w_out + b_out) + 1.0) * half

        return squashed

    def batch_actor(self, thetas: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``(active, obs) -> actions`` for the parameter rows ``active`` of ``thetas`` [E, d] (increasing
        indices) and their raw observations [len(active), obs_dim]: one forward pass for all of them
        (:meth:`batch_outputs`), each row's actions the bits :meth:`actor` (``raw=True``) gives for that row
        alone (over discrete states both look the action up in :meth:`greedy_table`)."""
        if self.spec.discrete_obs:  # raw observations are state indices: one lookup table per row
            table = self.greedy_table(thetas)
            return lambda active, obs: table[active, obs]
        outputs = self.batch_outputs(thetas)
        if self.spec.discrete_actions:
            return lambda active, obs: outputs(active, obs).argmax(axis=1)
        low, half = self._low, self._half_range
        return lambda active, obs: low + (np.tanh(outputs(active, obs)) + 1.0) * half

    def batch_outputs(self, thetas: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``(active, x) -> outputs`` [len(active), out] of the parameter rows ``active`` of ``thetas``
        [E, d] (increasing indices; a broadcast view of one row serves a batch sharing its parameters) for
        their inputs ``x`` [len(active), obs_dim]: one forward pass for all of them.

        Each row's outputs are the bits :meth:`forward` gives for that row and one input: a stacked
        ``matmul`` multiplies each row as the single product does, and the activations act elementwise
        (one row acting alone takes the single product itself).
        The weights of the rows still acting are kept gathered in compact arrays: while at least 3/4 of
        the gathered rows still act, the pass runs over all of them (a row's outputs do not depend on the
        others) and only the acting rows' outputs are returned; below that the acting rows are gathered
        again. ``active`` is compared by identity: a caller keeps the same array while the set is
        unchanged, as :func:`mpidrl.envs.episodes.rollout` does.
        """
        n = thetas.shape[0]
        full, pos = [], 0
        for fan_in, fan_out in self.shapes:
            w = thetas[:, pos : pos + fan_in * fan_out].reshape(n, fan_in, fan_out)
            pos += fan_in * fan_out
            full.append((w, thetas[:, pos : pos + fan_out]))
            pos += fan_out
        act = self.activation
        current: dict[str, Any] = {"active": None, "rows": np.arange(n), "layers": full, "at": None}
        alone: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}  # row -> its layers, for one row acting

        def forward(active: np.ndarray, obs: np.ndarray) -> np.ndarray:
            if len(active) == 1:  # the single product, the same bits with less overhead
                e = int(active[0])
                layers = alone.get(e)
                if layers is None:
                    layers = alone[e] = [(w[e], b[e]) for w, b in full]
                x = obs[0]
                for w, b in layers[:-1]:
                    x = act(x @ w + b)
                w, b = layers[-1]
                return (x @ w + b)[None]
            if active is not current["active"]:
                rows = current["rows"]
                at = np.searchsorted(rows, active)
                inside = len(active) * 4 >= len(rows) * 3 and (at < len(rows)).all() and (rows[at] == active).all()
                if inside:
                    current["at"] = None if len(active) == len(rows) else at
                else:
                    current["rows"], current["at"] = active, None
                    current["layers"] = [(w[active], b[active]) for w, b in full]
                current["active"] = active
            *hidden, (w_out, b_out) = current["layers"]
            at = current["at"]
            if at is None:
                x = obs
            else:  # the gathered rows that stopped acting get zeros; their outputs are dropped
                x = np.zeros((len(current["rows"]), obs.shape[1]), dtype=obs.dtype)
                x[at] = obs
            for w, b in hidden:
                x = act(np.matmul(x[:, None, :], w)[:, 0, :] + b)
            out = np.matmul(x[:, None, :], w_out)[:, 0, :] + b_out
            return out if at is None else out[at]

        return forward

    def greedy_table(self, thetas: np.ndarray) -> np.ndarray:
        """int64 [E, n_states]: the greedy action in every one-hot state of each of E parameter vectors.

        The first layer of a one-hot input is a row of W; later layers sum their inputs one by one in
        index order, so a row of the result depends only on its own parameters, whatever E is.
        """
        n = thetas.shape[0]
        x, pos = None, 0
        for i, (fan_in, fan_out) in enumerate(self.shapes):
            w = thetas[:, pos : pos + fan_in * fan_out].reshape(n, fan_in, fan_out)
            pos += fan_in * fan_out
            b = thetas[:, None, pos : pos + fan_out]
            pos += fan_out
            if x is None:
                z = w + b
            else:
                z = x[:, :, 0, None] * w[:, None, 0, :]
                for k in range(1, fan_in):
                    z = z + x[:, :, k, None] * w[:, None, k, :]
                z = z + b
            x = self.activation(z) if i < len(self.shapes) - 1 else z
        return x.argmax(axis=2)


def make_policy(cfg: PolicyConfig, spec: EnvSpec) -> MLP:
    """The policy named by ``[policy]`` for environment ``spec``."""
    return MLP(spec, cfg.hidden, cfg.activation, cfg.init)
