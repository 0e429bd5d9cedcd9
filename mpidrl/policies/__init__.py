"""Numpy policies on one flat float64 parameter vector."""

from mpidrl.policies.mlp import MLP, make_policy
from mpidrl.policies.qfunctions import LinearQ, TabularQ
from mpidrl.policies.stochastic import CategoricalMLP, GaussianMLP, make_stochastic_policy

__all__ = ["MLP", "LinearQ", "TabularQ", "CategoricalMLP", "GaussianMLP", "make_policy", "make_stochastic_policy"]
