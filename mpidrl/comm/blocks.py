"""Logical agents over ranks: contiguous blocks, sizes differing by at most one."""

from __future__ import annotations

import numpy as np


def blocks(n: int, size: int) -> list[range]:
    """Contiguous blocks of the n agents over ``size`` ranks, sizes differing by at most one."""
    base, extra = divmod(n, size)
    out, start = [], 0
    for r in range(size):
        stop = start + base + (1 if r < extra else 0)
        out.append(range(start, stop))
        start = stop
    return out


def block_owners(n: int, size: int) -> np.ndarray:
    """The rank whose block holds each of the n agents."""
    return np.repeat(np.arange(size), [len(b) for b in blocks(n, size)])
