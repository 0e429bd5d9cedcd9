"""Numpy policies on one flat float64 parameter vector."""

from mpidrl.policies.mlp import MLP, make_policy

__all__ = ["MLP", "make_policy"]
