"""Numpy policies on one flat float64 parameter vector."""

from mpidrl.policies.mlp import MLP, make_policy
from mpidrl.policies.stochastic import CategoricalMLP, GaussianMLP, make_stochastic_policy

__all__ = ["MLP", "make_policy", "CategoricalMLP", "GaussianMLP", "make_stochastic_policy"]
