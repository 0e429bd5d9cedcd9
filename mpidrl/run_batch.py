"""Trials in batches (``[run] trial_batch`` > 1): :class:`BatchRounds` drives B trials' rounds together.

:class:`mpidrl.run.Experiment` runs a batch like one trial (control flags, checkpoints, stops and the
run file are shared with the other protocols); every round yields one result per trial, recorded under
that trial's index exactly as an unbatched run records it. The algorithms' batched sides are in
:mod:`mpidrl.algorithms.batched`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mpidrl.algorithms import AlgorithmSpec, batched
from mpidrl.comm import Runtime
from mpidrl.comm.rounds import batch_round
from mpidrl.config import Config
from mpidrl.envs import EnvSpec
from mpidrl.run import message_rows, round_values


class BatchRounds:
    """Rounds of a batch of trials: one broadcast and one gather per round for all of them."""

    sim_time = np.nan
    """batched trials run in real time only"""

    def __init__(self, cfg: Config, trials: range, spec: AlgorithmSpec, rt: Runtime, env_spec: EnvSpec):
        self.cfg, self.trials, self.spec, self.rt = cfg, trials, spec, rt
        self.learner = batched.LEARNERS[spec.name](spec, cfg, trials, env_spec) if rt.is_root else None
        self.worker = batched.WORKERS[spec.name](cfg, trials, rt.block(cfg.agents.n), env_spec)

    def close(self) -> None:
        """Nothing to release: a batch's rounds complete within themselves."""

    def learners(self) -> list[Any]:
        """Rank 0: the learner of each trial of the batch."""
        return self.learner.learners

    def run(self, r: int) -> list[tuple[dict[str, Any], Callable[[float], np.ndarray]]] | None:
        """One round; on rank 0 each trial's metrics and message log, in trial order."""
        n, spec = self.cfg.agents.n, self.spec
        results = batch_round(self.rt, spec, self.learner, self.worker, r, n)
        if results is None:
            return None
        self.learner.update(r, [res.messages for res in results])
        out = []
        for trial, res in zip(self.trials, results):
            values = round_values(res, spec, n)
            values["sim_time"] = np.nan
            out.append((values, self._log(res, trial, r)))
        return out

    def _log(self, res: Any, trial: int, r: int) -> Callable[[float], np.ndarray]:
        return lambda t: message_rows(res, self.spec, trial, r, t, self.learner.downlink_kind)
