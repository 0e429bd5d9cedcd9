"""Running an experiment: trials of synchronous rounds, metrics to the run file, progress to stderr.

Every rank calls :func:`execute` with the same validated config; rank 0 also owns the learner, the run
file and the progress report.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from mpidrl import __version__, rng, timing
from mpidrl.algorithms import AlgorithmSpec, Context, Learner, lookup
from mpidrl.comm import Runtime, library_version, mpi4py_version
from mpidrl.comm.rounds import STAT_COLUMNS, RoundResult, sync_round
from mpidrl.config import Config
from mpidrl.envs import EnvSpec, make_env, observation_encoder, rollout
from mpidrl.log import Progress
from mpidrl.store import MESSAGE_DTYPE, RunWriter


def git_sha() -> str:
    """The commit of the source tree mpidrl runs from, if it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def provenance(cfg: Config, rt: Runtime) -> dict[str, Any]:
    """Root attributes of the run file describing what produced it."""
    import h5py

    return {
        "config": cfg.to_json(),
        "mpidrl_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "mpi4py_version": mpi4py_version(),
        "mpi_library": library_version(),
        "world_size": rt.size,
        "n_agents": cfg.agents.n,
        "seed": cfg.run.seed,
        "git_sha": git_sha(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
        "slurm_array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID", ""),
    }


def evaluate(cfg: Config, spec: EnvSpec, learner: Learner, trial: int, round: int) -> float:
    """Mean undiscounted return of the learner's greedy policy over ``eval_episodes`` episodes."""
    actor = learner.actor()
    if actor is None:
        return float("nan")
    env = make_env(cfg.env, rng.LEARNER)
    encode = observation_encoder(spec)
    seeds = rng.generator(cfg.run.seed, trial, rng.Stream.EVAL, round).integers(0, 2**31 - 1, cfg.run.eval_episodes)
    returns = [rollout(env, actor, encode, cfg.env.gamma, int(s)).undiscounted for s in seeds]
    env.close()
    return float(np.mean(returns))


def round_values(res: RoundResult, spec: AlgorithmSpec, n: int) -> dict[str, np.ndarray]:
    """The per-agent metrics and diagnostics of a round, by their run-file names."""
    values = {name: res.stats[:, j] for j, name in enumerate(STAT_COLUMNS)}
    values["downlink_bytes"] = np.full(n, res.downlink_bytes)
    for j, name in enumerate(spec.diagnostics):
        values[name] = res.stats[:, len(STAT_COLUMNS) + j]
    return values


def message_rows(
    res: RoundResult, spec: AlgorithmSpec, trial: int, round: int, t: float, downlink_kind: str | None = None
) -> np.ndarray:
    """/messages rows of a round: each uplink message, then the broadcast as received by each agent."""
    n = res.stats.shape[0]
    rows = np.zeros(len(res.messages) + n, MESSAGE_DTYPE)
    rows["trial"], rows["round"], rows["time"] = trial, round, t
    up = rows[: len(res.messages)]
    up["agent"] = [a for a, _ in res.messages]
    up["direction"], up["kind"] = 0, spec.uplink_kind
    up["nbytes"] = [m.nbytes for _, m in res.messages]
    down = rows[len(res.messages) :]
    down["agent"], down["direction"], down["kind"], down["nbytes"] = (
        np.arange(n),
        1,
        downlink_kind or spec.downlink_kind,
        res.downlink_bytes,
    )
    return rows


def execute(cfg: Config, env_spec: EnvSpec, out: str | Path, rt: Runtime, progress: Progress | None = None) -> None:
    """Run every trial of ``cfg``; rank 0 writes ``out``. Raises on failure (the caller aborts the job)."""
    spec = lookup(cfg.algo.name)
    n, rounds = cfg.agents.n, cfg.run.rounds
    progress = progress or Progress(rt.rank, cfg.run.trials, rounds, cfg.run.log_every)
    writer = None
    if rt.is_root:
        writer = RunWriter(out, provenance(cfg, rt), cfg.run.trials, n, spec.diagnostics, cfg.run.record_messages)
        progress.info(
            f"mpidrl {__version__}: {cfg.algo.name} on {cfg.env.id}, {n} agents on {rt.size} "
            f"rank(s), {cfg.run.trials} trial(s) x {rounds} rounds -> {out}"
        )
    try:
        for trial in range(cfg.run.trials):
            run_trial(cfg, env_spec, spec, trial, rt, writer, progress)
    except BaseException as exc:
        if writer is not None:
            writer.close("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    if writer is not None:
        writer.close("complete")


def run_trial(
    cfg: Config,
    env_spec: EnvSpec,
    spec: AlgorithmSpec,
    trial: int,
    rt: Runtime,
    writer: RunWriter | None,
    progress: Progress,
) -> None:
    """All rounds of one trial."""
    n = cfg.agents.n
    ctx = Context(cfg, trial, env_spec)
    learner = spec.learner(ctx) if rt.is_root else None
    worker = spec.worker(ctx, rt.block(n))
    wall = timing.WallClock()
    sim = timing.SyncSimClock(cfg.time, n) if cfg.time.mode == "simulated" else None
    for r in range(cfg.run.rounds):
        res = sync_round(rt, spec, learner, worker, r, n)
        if not rt.is_root:
            continue
        learner.update(r, res.messages)
        values = round_values(res, spec, n)
        values["wall_time"] = wall.now()
        values["sim_time"] = sim.advance(values["episodes"]) if sim else np.nan
        if cfg.run.eval_every and (r + 1) % cfg.run.eval_every == 0:
            values["eval_return"] = evaluate(cfg, env_spec, learner, trial, r)
        writer.write_round(trial, r, values)
        if cfg.run.record_messages:
            t = values["sim_time"] if sim else values["wall_time"]
            writer.log_messages(message_rows(res, spec, trial, r, t, learner.downlink_kind))
        progress.update(
            trial,
            r,
            float(np.nanmean(values["reward"])),
            float(values["uplink_messages"].mean()),
            float(values["uplink_bytes"].mean()),
            float(res.downlink_bytes),
        )
    if writer is not None:
        writer.end_trial(trial)
