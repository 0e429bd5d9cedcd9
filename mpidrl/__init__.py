"""mpidrl: communication-efficient distributed reinforcement learning on MPI.

The Python API: :func:`register` adds an algorithm of your own (see docs/extending.md); the command
``mpidrl`` (:mod:`mpidrl.cli`) runs, checks, summarises and plots experiments.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "register"]


def __getattr__(name: str) -> Any:
    # loaded on first use: `import mpidrl` stays cheap and does not start MPI
    if name == "register":
        from mpidrl.registry import register

        return register
    raise AttributeError(f"module 'mpidrl' has no attribute {name!r}")
