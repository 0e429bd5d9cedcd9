"""Trials of the asynchronous policy-gradient family (protocols "aggregate" and "afedpg").

:class:`mpidrl.run.Experiment` drives them through :class:`AsyncRounds` (checkpoints, stops and the
run file are shared with the synchronous algorithms). Each round is planned by the clock:

- simulated mode: :func:`mpidrl.timing.plan_first` decides, from the h_i, which gradients finish
  first; each agent computes exactly those (ties broken by agent index), and the round lasts until
  the last counted completion plus the Allreduce (the slowest kappa_i). Nothing sleeps. Rank 0 still
  runs the REPORT/STOP protocol, stopping when the reports match the plan, so control traffic is the
  same as in real mode and results do not depend on the number of ranks or on message timing.
- real mode: the stopping rule is applied to the reports as they arrive; with ``time.delay_scale``
  > 0 agent i waits h_i * delay_scale seconds before each gradient. ``wall_time`` measures it.
"""

from __future__ import annotations

import numpy as np

from mpidrl import timing
from mpidrl.algorithms import AlgorithmSpec, Context
from mpidrl.algorithms import nigt as nigt_algos
from mpidrl.comm import Runtime, block_owners
from mpidrl.comm.afedpg import AFEDPG_COLUMNS, afedpg_round
from mpidrl.comm.aggregate import AGG_COLUMNS, REPORT_BYTES, STOP_BYTES, AggregateResult, aggregate_round
from mpidrl.config import Config
from mpidrl.store import MESSAGE_DTYPE

UNLIMITED = 2**62
"""cap of an agent's gradients in a round when only the stopping rule ends it"""


def delays(cfg: Config, model: timing.TimeModel, round: int):
    """delay(agent, k): injected seconds before the agent's k-th gradient (real mode only)."""
    scale = cfg.time.delay_scale
    if cfg.time.mode != "real" or scale == 0:
        return lambda agent, k: 0.0
    return lambda agent, k: float(model.compute(round, agent, k + 1)[k]) * scale


def plan_round(ctx: Context, model: timing.TimeModel, round: int):
    """(rule for rank 0, caps per agent, simulated duration of the round) of an aggregation round."""
    n, cfg = ctx.n, ctx.cfg
    simulated = cfg.time.mode == "simulated"
    if cfg.algo.name == "nigt-sync":
        q = nigt_algos.sync_quota(ctx, round)
        busy = max(float(model.compute(round, i, q).sum()) for i in range(n))
        return None, np.full(n, q), busy + model.allreduce(round)
    rule = nigt_algos.stop_rule(ctx, round)
    if not simulated:
        return rule, np.full(n, UNLIMITED), np.nan
    plan, t_stop = timing.plan_first(model, round, rule)
    return (lambda counts: bool(np.array_equal(counts, plan))), plan, t_stop + model.allreduce(round)


def aggregate_messages(res: AggregateResult, spec: AlgorithmSpec, trial: int, round: int, t: float) -> np.ndarray:
    """/messages rows: each agent's Allreduce share both ways, then its REPORTs and its STOP."""
    n = res.stats.shape[0]
    reports = res.stats[:, AGG_COLUMNS.index("control_messages")].astype(int)
    rows = []
    for agent in range(n):
        rows.append((trial, round, agent, 0, spec.uplink_kind, res.downlink_bytes, t))
        rows.append((trial, round, agent, 1, spec.downlink_kind, res.downlink_bytes, t))
        if reports[agent]:
            rows += [(trial, round, agent, 0, "control", REPORT_BYTES, t)] * (reports[agent] - 1)
            rows.append((trial, round, agent, 1, "control", STOP_BYTES, t))
    return np.array(rows, dtype=MESSAGE_DTYPE)


def afedpg_messages(res, spec: AlgorithmSpec, trial: int, round: int, t: float) -> np.ndarray:
    """/messages rows of an AFedPG round: gradients up, broadcast and replies down, the STOP."""
    col = {name: j for j, name in enumerate(AFEDPG_COLUMNS)}
    rows = []
    for agent, row in enumerate(res.stats):
        sent = int(row[col["uplink_messages"]])
        if sent:
            rows += [(trial, round, agent, 0, spec.uplink_kind, int(row[col["uplink_bytes"]]) // sent, t)] * sent
        rows.append((trial, round, agent, 1, spec.downlink_kind, int(row[col["downlink_bytes"]]), t))
        rows.append((trial, round, agent, 1, "control", STOP_BYTES, t))
    return np.array(rows, dtype=MESSAGE_DTYPE)


class AsyncRounds:
    """Rounds of an aggregation (or AFedPG) algorithm, driven by :class:`mpidrl.run.Experiment`."""

    def __init__(self, ctx: Context, spec: AlgorithmSpec, rt: Runtime, learner, worker):
        self.ctx, self.spec, self.rt, self.learner, self.worker = ctx, spec, rt, learner, worker
        self.model = timing.TimeModel(ctx.cfg.time, ctx.n, ctx.seed, ctx.trial, spec.policy_size(ctx.cfg, ctx.spec))
        self.simulated = ctx.cfg.time.mode == "simulated"
        self.sim_time = 0.0 if self.simulated else np.nan
        """simulated clock at the end of the last round (NaN in real mode)"""

    def close(self) -> None:
        """Nothing to release: the protocols' messages all complete within their round."""

    def run(self, r: int):
        """One round; on rank 0 the round's metrics and its message log, None elsewhere."""
        ctx, spec, rt, n, model = self.ctx, self.spec, self.rt, self.ctx.n, self.model
        if spec.protocol == "afedpg":
            m = nigt_algos.round_m(ctx, r)
            order, caps, duration = None, np.full(n, UNLIMITED), np.nan
            if self.simulated:
                order, caps, t_last = timing.plan_afedpg(model, r, m)
                duration = t_last + model.allreduce(r) / 2  # the round's closing broadcast
            res = afedpg_round(rt, self.learner, self.worker, r, n, m, order, caps, delays(ctx.cfg, model, r))
            columns, payload = AFEDPG_COLUMNS, 0
        else:
            rule, caps, duration = plan_round(ctx, model, r)
            res = aggregate_round(rt, self.worker, r, n, rule, caps, delays(ctx.cfg, model, r))
            columns, payload = AGG_COLUMNS, None
        if not rt.is_root:
            return None
        if payload is None:
            self.learner.update(r, [(-1, res.g)])
            payload = res.downlink_bytes
        if self.simulated:
            self.sim_time += duration
        values = {name: res.stats[:, j] for j, name in enumerate(columns)}
        values["rank"] = block_owners(n, rt.size)
        values.setdefault("downlink_bytes", np.full(n, payload))
        values["sim_time"] = self.sim_time
        log = aggregate_messages if spec.protocol == "aggregate" else afedpg_messages
        return values, lambda t: log(res, spec, ctx.trial, r, t)
