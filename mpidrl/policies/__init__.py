"""Numpy policies on one flat float64 parameter vector."""

from mpidrl.policies.mlp import MLP, make_policy
from mpidrl.policies.qfunctions import LinearQ, TabularQ

__all__ = ["MLP", "LinearQ", "TabularQ", "make_policy"]
