"""The simulated network: each agent's link to the learner, and what messages and collectives cost on it.

With ``time.network`` other than "kappa", a message of b bytes between the learner and agent i takes

    latency_i + b / bandwidth_i                                    (uplink or downlink parameters)

seconds: the bytes the protocol counts, on the agent's own link. Every agent has its own link to the
learner (a star, as devices under one base station or access point): the learner's side is never the
bottleneck, and links do not share capacity. Latencies and bandwidths take the forms of ``h``: numbers,
lists, formulas of i, n and d, or random tables drawn per message from the NETWORK stream keyed by
(round, agent), so message times do not depend on the ranks.

Collectives among the agents (the NIGT family's Allreduce) use the standard latency-bandwidth (alpha-beta)
cost of MPICH's ring algorithm (Thakur, Rabenseifner and Gropp, "Optimization of collective communication
operations in MPICH", IJHPCA 19(1), 2005): an Allreduce of b bytes over p participants, a reduce-scatter
then an allgather, takes ``2 (p - 1) alpha + 2 (p - 1) / p * b / beta``. A step of the ring sends from
one agent to the next through the learner's network (one uplink, one downlink) and every step waits for
the slowest pair, so alpha is the largest uplink latency plus the largest downlink latency and beta the
smallest bandwidth of any link: heterogeneous links cost a collective what its slowest participant costs.
"""

from __future__ import annotations

import numpy as np

from mpidrl import rng
from mpidrl.config import LINK_KEYS, TimeConfig
from mpidrl.timing import _Distribution, _spec, per_agent


class Links:
    """Per-agent links of one trial: durations of messages of a known size."""

    def __init__(self, cfg: TimeConfig, n: int, seed: int = 0, trial: int = 0, d: int | None = None):
        self.n, self.seed, self.trial = n, seed, trial
        self._specs = {
            key: _spec(getattr(cfg, key), n, f"time.{key}", d, rate=key.endswith("bandwidth")) for key in LINK_KEYS
        }

    def _values(self, key: str, round: int, agent: int, count: int) -> np.ndarray:
        spec = self._specs[key]
        if not isinstance(spec, _Distribution):
            return np.full(count, spec[agent])
        coordinate = len(LINK_KEYS) * round + LINK_KEYS.index(key)
        return spec.draw(rng.generator(self.seed, self.trial, rng.Stream.NETWORK, coordinate, agent), agent, count)

    def mean(self, key: str) -> np.ndarray:
        """[n] each agent's (mean) value of a link key."""
        spec = self._specs[key]
        return spec.mean if isinstance(spec, _Distribution) else spec

    def up(self, round: int, agent: int, nbytes: float | np.ndarray) -> np.ndarray:
        """Durations of the messages from ``agent`` to the learner in ``round``, one per entry of ``nbytes``
        (the k-th message of a round always draws the same random link values)."""
        nbytes = np.atleast_1d(np.asarray(nbytes, dtype=float))
        latency = self._values("uplink_latency", round, agent, nbytes.size)
        return latency + nbytes / self._values("uplink_bandwidth", round, agent, nbytes.size)

    def down(self, round: int, agent: int, nbytes: float | np.ndarray) -> np.ndarray:
        """Durations of the messages from the learner to ``agent`` in ``round``, one per entry of ``nbytes``."""
        nbytes = np.atleast_1d(np.asarray(nbytes, dtype=float))
        latency = self._values("downlink_latency", round, agent, nbytes.size)
        return latency + nbytes / self._values("downlink_bandwidth", round, agent, nbytes.size)

    def alpha_beta(self) -> tuple[float, float]:
        """(alpha, beta) of a step between two agents: the largest latencies, the smallest bandwidth."""
        alpha = float(np.max(self.mean("uplink_latency")) + np.max(self.mean("downlink_latency")))
        beta = float(min(np.min(self.mean("uplink_bandwidth")), np.min(self.mean("downlink_bandwidth"))))
        return alpha, beta


def ring_allreduce(p: int, nbytes: float, alpha: float, beta: float) -> float:
    """Seconds of a ring Allreduce of ``nbytes`` among ``p`` participants: 2 (p-1) alpha + 2 (p-1)/p b/beta."""
    if p <= 1:
        return 0.0
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes / beta


class SyncClock:
    """The simulated clock of synchronous rounds (every agent downloads, computes, uploads; the learner then
    updates). With ``time.network = "kappa"`` a round lasts ``max_i(h_i * units_i) + max_i(kappa_i)``: the
    slowest agent's computation, then the slowest participant's exchange. With links it lasts

        max_i( down_i(B_down) + h_i * units_i + up_i(B_up_i) )

    each agent's download of the broadcast, its computation and its upload (only if it sent: an agent that
    stays silent costs the round its computation alone), on its own link.
    """

    def __init__(self, cfg: TimeConfig, n: int, seed: int = 0, trial: int = 0, d: int | None = None):
        self.h = per_agent(cfg.h, n, "time.h", d)
        self.kappa = per_agent(cfg.kappa, n, "time.kappa", d)
        self.links = Links(cfg, n, seed, trial, d) if cfg.network != "kappa" else None
        self.now = 0.0

    def advance(
        self, round: int, units: np.ndarray, up_bytes: np.ndarray, down_bytes: float
    ) -> dict[str, np.ndarray] | None:
        """One round in which agent i computed ``units[i]`` episodes (or gradients) and sent ``up_bytes[i]``
        (0: silent) after receiving ``down_bytes``; with links, each agent's message times
        (``down_sent``, ``down_arrived``, ``up_sent``, ``up_arrived``; NaN for no message)."""
        start = self.now
        if self.links is None:
            self.now += float(np.max(self.h * units)) + float(np.max(self.kappa))
            return None
        n = len(units)
        down = np.array([self.links.down(round, i, down_bytes)[0] for i in range(n)])
        computed = start + down + self.h * units
        up = np.array([self.links.up(round, i, up_bytes[i])[0] if up_bytes[i] > 0 else 0.0 for i in range(n)])
        self.now = float(np.max(computed + up))
        sent = up_bytes > 0
        return {
            "down_sent": np.full(n, start),
            "down_arrived": start + down,
            "up_sent": np.where(sent, computed, np.nan),
            "up_arrived": np.where(sent, computed + up, np.nan),
        }
