"""Stochastic MLP policies for policy gradients, with hand-written log-probability gradients.

Both policies share the layout of :class:`~mpidrl.policies.mlp.MLP` (per layer ``W`` then ``b``) and add
a backward pass. They act on batches: :meth:`batch_sampler` draws the actions of many rows of parameters
(agents) at once, each from its own generator (a batch of one is one agent). The estimator needs
``sum_t w_t grad log pi(a_t | s_t)`` (GPOMDP weights ``w_t``), so
:meth:`StochasticMLP.grad_log_prob` takes a whole trajectory and its weights and returns one d-vector
from a single batched backward pass.

- :class:`CategoricalMLP`: logits = MLP(s), pi(a | s) = softmax(logits)_a.
- :class:`GaussianMLP`: the output holds the mean mu and a pre-std rho of a diagonal Gaussian over the
  pre-squash action u, std = softplus(rho) + ``MIN_STD``; the environment receives
  ``a = low + (tanh(u) + 1) / 2 * (high - low)``. The recorded action is u, and the gradient is that of
  log N(u; mu, std). This is also the exact gradient of log pi(a | s) of the squashed action: the change
  of variables adds ``-log |da/du|``, which depends on u alone and not on theta.

The output layer is initialised 100 times smaller than the hidden ones so the first policy is close to
uniform (categorical) or zero-mean with std softplus(0) + MIN_STD ~ 0.69 (Gaussian).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpidrl.config import PolicyConfig
from mpidrl.envs import EnvSpec
from mpidrl.policies.mlp import MLP

MIN_STD = 1e-3
"""floor of the Gaussian policy's standard deviation (keeps log-probabilities finite)"""

_LOG_2PI = float(np.log(2.0 * np.pi))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class StochasticMLP(MLP):
    """An MLP with a cached forward pass and its backward pass (tanh or relu hidden layers)."""

    def __init__(self, spec: EnvSpec, hidden: tuple[int, ...], activation: str, out: int, init: str = "random"):
        super().__init__(spec, hidden, activation, init)
        self.sizes = (spec.obs_dim, *hidden, out)
        self.shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.size = sum(i * o + o for i, o in self.shapes)
        self.activation_name = activation

    def features(self, theta: np.ndarray):
        """obs -> outputs for fixed parameters, with the layer views computed once (fast per step)."""
        layers = self.layers(theta)
        hidden, (w_out, b_out) = layers[:-1], layers[-1]
        act = self.activation

        def out(x: np.ndarray) -> np.ndarray:
            for w, b in hidden:
                x = act(x @ w + b)
            return x @ w_out + b_out

        return out

    def init(self, rng: np.random.Generator) -> np.ndarray:
        theta = super().init(rng)
        self.layers(theta)[-1][0][...] *= 0.01
        return theta

    def forward_cache(self, theta: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Outputs for a batch ``obs`` [T, obs_dim] and the inputs of every layer (for :meth:`backward`)."""
        layers = self.layers(theta)
        inputs = [obs]
        x = obs
        for w, b in layers[:-1]:
            x = self.activation(x @ w + b)
            inputs.append(x)
        w, b = layers[-1]
        return x @ w + b, inputs

    def backward(self, theta: np.ndarray, inputs: list[np.ndarray], dout: np.ndarray) -> np.ndarray:
        """Gradient w.r.t. theta of ``sum(dout * outputs)``, given the cache of :meth:`forward_cache`."""
        layers = self.layers(theta)
        grad = np.zeros(self.size)
        glayers = self.layers(grad)
        delta = dout
        for depth in range(len(layers) - 1, -1, -1):
            w, _ = layers[depth]
            gw, gb = glayers[depth]
            gw[...] = inputs[depth].T @ delta
            gb[...] = delta.sum(axis=0)
            if depth == 0:
                break
            back = delta @ w.T
            h = inputs[depth]
            delta = back * (1.0 - h * h) if self.activation_name == "tanh" else back * (h > 0)
        return grad


class CategoricalMLP(StochasticMLP):
    """Softmax policy over ``spec.n_actions`` discrete actions."""

    def __init__(
        self, spec: EnvSpec, hidden: tuple[int, ...] = (64, 64), activation: str = "tanh", init: str = "random"
    ):
        super().__init__(spec, hidden, activation, spec.n_actions, init)

    def batch_sampler(self, thetas: np.ndarray, gens: Sequence[np.random.Generator]):
        """``(active, x) -> actions`` for the rows ``active`` of ``thetas`` [E, d] and their inputs x: row
        e draws one uniform from ``gens[e]`` per step and takes the action where it falls in the
        cumulative softmax (inverse CDF), the bits one row alone would give."""
        outputs = self.batch_outputs(thetas)

        def draw(active: np.ndarray, x: np.ndarray) -> np.ndarray:
            z = outputs(active, x)
            cdf = np.cumsum(np.exp(z - z.max(axis=1, keepdims=True)), axis=1)
            u = np.array([gens[e].random() for e in active.tolist()])
            # searchsorted(cdf, u * total, side="right") of each row: the entries <= the point
            return np.minimum((cdf <= (u * cdf[:, -1])[:, None]).sum(axis=1), cdf.shape[1] - 1)

        return draw

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """The environments' actions of recorded actions: the same indices."""
        return actions

    def log_prob(self, theta: np.ndarray, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """log pi(a_t | s_t) for a batch."""
        z = self.forward(theta, obs)
        zmax = z.max(axis=1, keepdims=True)
        lse = (zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True)))[:, 0]
        return z[np.arange(len(actions)), actions.astype(int)] - lse

    def grad_log_prob(self, theta: np.ndarray, obs: np.ndarray, actions: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """sum_t weights_t grad log pi(a_t | s_t)."""
        z, inputs = self.forward_cache(theta, obs)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dz = -p
        dz[np.arange(len(actions)), actions.astype(int)] += 1.0
        return self.backward(theta, inputs, dz * weights[:, None])


class GaussianMLP(StochasticMLP):
    """Diagonal Gaussian over the pre-squash action u; the environment gets the tanh-squashed, scaled u."""

    def __init__(
        self, spec: EnvSpec, hidden: tuple[int, ...] = (64, 64), activation: str = "tanh", init: str = "random"
    ):
        super().__init__(spec, hidden, activation, 2 * spec.act_dim, init)
        self.k = spec.act_dim

    def actor(self, theta: np.ndarray):
        """The deterministic (mean) action, squashed, for evaluation episodes."""
        return lambda obs: self.squash(self.mean_std(theta, obs)[0])

    def mean_std(self, theta: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.forward(theta, obs)
        return out[..., : self.k], _softplus(out[..., self.k :]) + MIN_STD

    def squash(self, u: np.ndarray) -> np.ndarray:
        """The environment action of a pre-squash sample u."""
        return self._low + (np.tanh(u) + 1.0) * self._half_range

    def batch_sampler(self, thetas: np.ndarray, gens: Sequence[np.random.Generator]):
        """``(active, x) -> u`` for the rows ``active`` of ``thetas`` [E, d] and their inputs x: row e
        draws k standard normals from ``gens[e]`` per step, u = mu + std * z (the bits one row alone
        would give); the environments get :meth:`env_actions` of u."""
        outputs, k = self.batch_outputs(thetas), self.k

        def draw(active: np.ndarray, x: np.ndarray) -> np.ndarray:
            o = outputs(active, x)
            z = np.empty((len(active), k))
            for row, e in zip(z, active.tolist()):
                gens[e].standard_normal(out=row)  # k draws into the row: the draws of standard_normal(k)
            return o[:, :k] + (_softplus(o[:, k:]) + MIN_STD) * z

        return draw

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """The environments' actions of pre-squash samples u [B, k]."""
        return self.squash(actions)

    def log_prob(self, theta: np.ndarray, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """log N(u_t; mu(s_t), std(s_t)) for a batch of pre-squash actions u_t [T, k]."""
        mu, std = self.mean_std(theta, obs)
        z = (actions - mu) / std
        return (-0.5 * z * z - np.log(std) - 0.5 * _LOG_2PI).sum(axis=1)

    def grad_log_prob(self, theta: np.ndarray, obs: np.ndarray, actions: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """sum_t weights_t grad log N(u_t; mu(s_t), std(s_t))."""
        out, inputs = self.forward_cache(theta, obs)
        mu, rho = out[:, : self.k], out[:, self.k :]
        std = _softplus(rho) + MIN_STD
        diff = actions - mu
        dmu = diff / std**2
        dstd = diff * diff / std**3 - 1.0 / std
        dout = np.concatenate([dmu, dstd * _sigmoid(rho)], axis=1)
        return self.backward(theta, inputs, dout * weights[:, None])


def make_stochastic_policy(cfg: PolicyConfig, spec: EnvSpec) -> CategoricalMLP | GaussianMLP:
    """Categorical MLP for discrete actions, Gaussian (tanh-squashed) MLP for boxes."""
    cls = CategoricalMLP if spec.discrete_actions else GaussianMLP
    return cls(spec, cfg.hidden, cfg.activation, cfg.init)
