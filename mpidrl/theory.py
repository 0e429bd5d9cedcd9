"""The time of one aggregation round in closed form, to hold the simulated clock against.

Setting (mpidrl's simulated clock, :func:`mpidrl.protocols.plans.plan_first`): n agents; agent i
needs h_i seconds per gradient; at a round's start every agent starts a fresh gradient and computes
back to back; work unfinished when the round's rule holds is dropped, and the next round starts anew.
So with constant times agent i has finished floor(t / h_i) gradients at time t after the round's start.
Below, h_(1) <= ... <= h_(n) are the h_i sorted, and every function sorts its input itself.
Only the collection is timed here; :class:`mpidrl.protocols.aggregate.AggregateRounds` adds the
round's Allreduce (the largest kappa_i) to it.

What is exact and what is a bound (T: the round's collection time, constant h unless said):

- :func:`rennala_exact`: T for Rennala (stop at M gradients from any agents), the M-th smallest
  element of the multiset {k h_i : i = 1..n, k = 1, 2, ...}. Exact.
- :func:`rennala_bound`: t*(M) = min over m of (1/m sum_{i<=m} 1/h_(i))^-1 (1 + M/m).
  A two-sided bound, proved there: t*(M) / 2 <= T <= t*(M), both constants the best possible.
- :func:`rennala_exponential`: mean M / sum_i 1/mu_i and variance M / (sum_i 1/mu_i)^2 of T when the
  times are exponential with means mu_i (T is Gamma distributed). Exact.
- :func:`sync_exact`: ceil(M / n) max_i h_i, synchronous NIGT's T. Exact (the rule's definition).
- :func:`malenia_exact`: T for Malenia (every m_i >= 1 and (1/n sum_i 1/m_i)^-1 >= M / n). Exact.
- :func:`malenia_bounds`: max(h_(n), (M/n) h_avg) <= T <= max(h_(n), 2 (M/n) h_avg), proved there.

Sources. The project's summary of Rennala NIGT (Tyurin, Spiridonov and Rudenko, "Asynchronous Policy
Gradient Aggregation for Efficient Distributed Reinforcement Learning", arXiv 2509.24305) gives its time
complexity as O(min_m [(1/m sum_{i<=m} 1/h_(i))^-1 (...)]), the form of Rennala SGD's (Tyurin and
Richtarik, "Optimal Time Complexities of Parallel Stochastic Optimization Methods Under a Fixed
Computation Model", NeurIPS 2023), where the time to collect a batch of M stochastic gradients is of the
order of t*(M) above. Malenia SGD's (same paper) has the form h_(n) + h_avg M / n. Both papers state
their complexities up to universal constants, and their full texts were not at hand when this module
was written: the constants here (1 and 1/2 for Rennala, 1 and 2 for Malenia) are not quoted from them
but proved in the docstrings below, for mpidrl's round model, in which every agent starts afresh at the
round's start (a model where an agent may still be busy with a stale gradient when a round starts
would need up to one more h_i). Synchronous NIGT's time is what its rule means, not a theorem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from mpidrl import timing


def _times(h: float | Sequence[float] | np.ndarray, M: int) -> np.ndarray:
    """The h_i sorted ascending, checked: at least one, finite, > 0; M a positive integer."""
    if isinstance(M, bool) or int(M) != M or M < 1:
        raise ValueError(f"M must be a positive integer, got {M!r}")
    out = np.sort(np.atleast_1d(np.asarray(h, dtype=float)))
    if out.ndim != 1 or out.size == 0:
        raise ValueError("h: expected one time per agent")
    if not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise ValueError("h: every time must be finite and > 0")
    return out


def agent_times(cfg: timing.TimeConfig, n: int, d: int | None = None) -> np.ndarray:
    """The per-agent h_i of a ``[time]`` section (for a random table: each agent's mean), agent order."""
    return timing.per_agent(cfg.h, n, "time.h", d)


def _candidates(h: np.ndarray) -> np.ndarray:
    """1 / S_m for m = 1..n, S_m = sum_{i<=m} 1/h_(i) (so that (1/m S_m)^-1 (1 + M/m) = (m + M) / S_m)."""
    return 1.0 / np.cumsum(1.0 / h)


def rennala_bound(h: float | Sequence[float] | np.ndarray, M: int) -> float:
    """t*(M) = min over m in 1..n of (1/m sum_{i=1}^m 1/h_(i))^-1 (1 + M/m) = min_m (m + M) / sum_{i<=m} 1/h_(i).

    Rennala's round (stop at the M-th gradient from any agents) lasts T(M), and, with constant h,

        t*(M) / 2  <=  T(M)  <=  t*(M),

    both constants the best possible (n = 1, M = 1: T = h, t* = 2h; and T / t* = n / (n + 1) for equal
    h and M = 1, which tends to 1).

    Upper bound: fix m and let t = (m + M) / S_m, S_m = sum_{i<=m} 1/h_(i). The m fastest agents have
    finished sum_{i<=m} floor(t / h_(i)) > sum_{i<=m} (t / h_(i) - 1) = t S_m - m = M gradients by t,
    so the M-th came at t or before: T <= t for every m, hence T <= t*.
    Lower bound: let m be the number of agents with h_(i) <= T (at least one, since a gradient was
    finished by T). The others have finished none, so M <= sum_{i<=m} floor(T / h_(i)) <= T S_m; and
    m <= T S_m because each of these m terms T / h_(i) is >= 1. Adding, m + M <= 2 T S_m, so
    t* <= (m + M) / S_m <= 2 T.

    For random times this lower bound fails (see :func:`rennala_exponential`); the upper bound is in
    terms of fixed h only.
    """
    times = _times(h, M)
    m = np.arange(1, times.size + 1)
    return float(np.min((m + M) * _candidates(times)))


def rennala_best_m(h: float | Sequence[float] | np.ndarray, M: int) -> int:
    """The m attaining :func:`rennala_bound`'s minimum (the smallest such m): how many of the fastest
    agents the closed form counts on; the slower ones are as good as absent."""
    times = _times(h, M)
    m = np.arange(1, times.size + 1)
    return int(np.argmin((m + M) * _candidates(times))) + 1


def rennala_exact(h: float | Sequence[float] | np.ndarray, M: int) -> float:
    """T(M), the exact time of Rennala's collection with constant h: the M-th smallest element (counted
    with multiplicity) of the multiset {k h_i : i = 1..n, k = 1, 2, ...}.

    Agent i's k-th gradient finishes at k h_i (back to back from the round's start) and the round ends at
    the M-th completion, whichever agents they come from. Each k h_i is computed as one product, so it is
    the correctly rounded time; the simulated clock adds h_i k times, which can differ by a few units in
    the last place when h_i is not a small integer or a power of two.
    """
    times = _times(h, M)
    bound = rennala_bound(times, M)
    # by rennala_bound's proof, at least M completions are <= t*, so the M-th smallest is among them
    counts = np.minimum(M, np.floor(bound / times).astype(np.int64) + 1)
    finish = np.concatenate([np.arange(1, k + 1) * t for k, t in zip(counts, times)])
    return float(np.partition(finish, M - 1)[M - 1])


def rennala_exponential(means: float | Sequence[float] | np.ndarray, M: int) -> tuple[float, float]:
    """(mean, variance) of Rennala's collection time when agent i's gradient times are independent and
    exponential with mean mu_i (``h = {dist = "exponential", mean = ...}``): M / L and M / L^2,
    L = sum_i 1/mu_i. Exact.

    By memorylessness agent i's completions form a Poisson process of rate 1/mu_i, whatever was dropped
    at the previous round's end; the n independent processes merge into one of rate L, and the M-th
    event of a Poisson process of rate L comes after a Gamma(M, rate L) time. Rounds draw independent
    times (the TIME stream is keyed by round), so per-round times are independent Gamma(M, L) draws.

    Against the deterministic closed form: M / L <= t*(M) computed with h_i = mu_i (each term of
    t*'s minimum is (m + M) / S_m >= M / L), and the ratio is not bounded below: n equal means and
    M = 1 give 1 / (n + 1). Random times can make Rennala faster than the constant-time formula says.
    """
    times = _times(means, M)
    rate = float(np.sum(1.0 / times))
    return M / rate, M / rate**2


def sync_exact(h: float | Sequence[float] | np.ndarray, M: int) -> float:
    """ceil(M / n) max_i h_i: synchronous NIGT's collection with constant h (every agent computes
    ceil(M / n) gradients back to back; the round waits for the slowest). Exact, by the rule's definition.
    With equal h it equals :func:`rennala_exact` (the M-th of the multiset {k h} is ceil(M / n) h)."""
    times = _times(h, M)
    return math.ceil(M / times.size) * float(times[-1])


def malenia_bounds(h: float | Sequence[float] | np.ndarray, M: int) -> tuple[float, float]:
    """(lower, upper) = (max(h_(n), (M/n) h_avg), max(h_(n), 2 (M/n) h_avg)), h_avg = (1/n) sum_i h_i:
    with constant h, Malenia's collection time T lies between them (a factor 2 apart at most).

    Malenia's rule: every m_i >= 1 and (1/n sum_i 1/m_i)^-1 >= M / n, i.e. sum_i 1/m_i <= n^2 / M.
    Lower: m_n >= 1 needs T >= h_(n); m_i <= T / h_i gives sum_i 1/m_i >= n h_avg / T, so the rule
    needs T >= M h_avg / n. Upper: at t = the upper value, t / h_i >= 1 for every i, and
    floor(x) >= x / 2 for x >= 1, so sum_i 1/m_i <= 2 n h_avg / t <= n^2 / M: the rule holds by t.
    """
    times = _times(h, M)
    n = times.size
    spread = M / n * float(np.mean(times))
    return max(float(times[-1]), spread), max(float(times[-1]), 2 * spread)


def malenia_exact(h: float | Sequence[float] | np.ndarray, M: int) -> float:
    """T, the exact time of Malenia's collection with constant h: the earliest completion time k h_i at
    which every agent has a gradient and sum_i 1/m_i <= n^2 / M, with m_j = #{k >= 1 : k h_j <= t}.
    The rule is evaluated in exact rational arithmetic (the simulated clock uses floating point).
    Completions at the same time are taken in agent order, as the simulated clock does."""
    times = np.asarray(h, dtype=float)
    _times(times, M)
    n = times.size
    _, upper = malenia_bounds(times, M)
    events = []
    for i, t in enumerate(times):
        k = np.arange(1, int(np.floor(upper / t)) + 2)
        events.append(np.stack([k * t, np.full(k.size, i)], axis=1))
    order = np.concatenate(events)
    order = order[np.lexsort((order[:, 1], order[:, 0]))]
    counts = [0] * n
    missing, inverse = n, Fraction(0)
    target = Fraction(n * n, M)
    for t, i in order:
        i = int(i)
        if counts[i] == 0:
            missing -= 1
        else:
            inverse -= Fraction(1, counts[i])
        counts[i] += 1
        inverse += Fraction(1, counts[i])
        if missing == 0 and inverse <= target:
            return float(t)
    raise AssertionError("Malenia's rule did not hold by its upper bound")  # excluded by malenia_bounds
