"""Running an experiment: trials of rounds, metrics to the run file, checkpoints, clean stops.

Every rank runs an :class:`Experiment` with the same validated config; rank 0 also owns the learner, the
run file and the progress report. At the start of every round rank 0 broadcasts control flags: save a
checkpoint (every ``run.checkpoint_every`` rounds, and before a stop) and stop cleanly (after SIGTERM or
SIGINT, which SLURM and mpiexec deliver to every rank). A checkpoint holds the learner's and every
agent's state; with the counter-based random streams that is all a resumed run needs to be
bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mpidrl import __version__, rng, timing
from mpidrl.algorithms import AlgorithmSpec, Context, Learner, dynamic_placement, lookup
from mpidrl.comm import AgentClaims, Control, Runtime, library_version, mpi4py_version
from mpidrl.comm.rounds import STAT_COLUMNS, RoundResult, sync_round
from mpidrl.config import Config
from mpidrl.envs import EnvSpec, make_env, observation_encoder, rollout
from mpidrl.log import Progress
from mpidrl.store import MESSAGE_DTYPE, Checkpoint, RunWriter, read_checkpoint

PROGRESS = ("uplink_messages", "uplink_bytes", "downlink_bytes")
"""Per-agent metrics whose round means (over the agents, and the trials of a batch) a progress line shows."""

FLUSH_EVERY = 1.0
"""Seconds between writes of queued rounds to the run file (and before every progress line)."""


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
        "slurm_array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID", ""),
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
    values["rank"] = res.ranks
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


class Interrupted(Exception):
    """The run stopped at a round boundary after a signal; its checkpoint is saved."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


class StopRequest:
    """Turns SIGTERM and SIGINT into a request to stop at the next round; a second signal stops at once."""

    def __init__(self) -> None:
        self.signum = 0

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum:
            raise KeyboardInterrupt
        self.signum = signum


class Experiment:
    """All trials of one config on one communicator."""

    def __init__(
        self,
        cfg: Config,
        env_spec: EnvSpec,
        out: str | Path,
        rt: Runtime,
        progress: Progress | None = None,
        stop: StopRequest | None = None,
    ):
        self.cfg, self.env_spec, self.out, self.rt = cfg, env_spec, Path(out), rt
        self.spec = lookup(cfg.algo.name)
        self.progress = progress or Progress(rt.rank, cfg.run.trials, cfg.run.rounds, cfg.run.log_every)
        self.stop = stop or StopRequest()
        self.writer: RunWriter | None = None
        self.learner_state: dict[str, np.ndarray] | None = None

    def run(self, resume: bool = False) -> None:
        """Run (or, with ``resume``, continue) every trial; raises on failure or :class:`Interrupted`."""
        cfg, rt = self.cfg, self.rt
        start = None
        if rt.is_root:
            start = self._open(resume)
        first_trial, ckpt_round, worker_state, clocks = rt.share(start)
        batch = cfg.run.trial_batch
        try:
            for first in range(first_trial, cfg.run.trials, batch):
                resumed = (ckpt_round, worker_state, clocks) if first == first_trial and ckpt_round else None
                self._trials(range(first, min(first + batch, cfg.run.trials)), resumed)
        except Interrupted:
            if self.writer is not None:
                self.writer.close("interrupted")
            rt.barrier()  # nobody exits (and gets the job killed) before rank 0 has closed the file
            raise
        except BaseException as exc:
            if self.writer is not None:
                self.writer.close("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
            raise
        if self.writer is not None:
            self.writer.close("complete")

    def _open(self, resume: bool) -> tuple[int, int, dict[str, np.ndarray], tuple[float, float]]:
        """Rank 0: create or reopen the run file; where to start and the agents' saved state."""
        cfg, n = self.cfg, self.cfg.agents.n
        if not resume:
            self.writer = RunWriter(
                self.out,
                provenance(self.cfg, self.rt),
                cfg.run.trials,
                n,
                self.spec.diagnostics,
                cfg.run.record_messages,
                FLUSH_EVERY,
            )
            self.progress.info(
                f"mpidrl {__version__}: {cfg.algo.name} on {cfg.env.id}, {n} agents on "
                f"{self.rt.size} rank(s), {cfg.run.trials} trial(s) x {cfg.run.rounds} rounds "
                f"-> {self.out}"
            )
            return 0, 0, {}, (0.0, np.nan)
        ckpt = read_checkpoint(self.out)
        self.writer = RunWriter.reopen(self.out, FLUSH_EVERY)
        trials_done = int(self.writer.file.attrs["trials_done"])
        if ckpt is None or ckpt.trial < trials_done:
            start = (trials_done, 0, {}, (0.0, np.nan))
        else:
            self.learner_state = ckpt.learner
            start = (ckpt.trial, ckpt.round, ckpt.workers, (ckpt.wall_time, ckpt.sim_time))
        self.writer.truncate_messages(start[0], start[1], cfg.run.trial_batch)
        self.progress.info(f"mpidrl {__version__}: resuming {self.out} at trial {start[0] + 1} round {start[1] + 1}")
        return start

    def _trials(self, trials: range, resumed: tuple | None) -> None:
        """All rounds of one trial, or of a batch of trials run together (``run.trial_batch`` > 1), from a
        checkpoint when ``resumed`` is (round, worker state, clocks)."""
        cfg, rt, spec, n = self.cfg, self.rt, self.spec, self.cfg.agents.n
        if cfg.run.trial_batch > 1:
            from mpidrl.run_batch import BatchRounds

            rounds = BatchRounds(cfg, trials, spec, rt, self.env_spec)
            learner, worker = rounds.learner, rounds.worker
            learners = rounds.learners() if rt.is_root else []
        else:
            ctx = Context(cfg, trials[0], self.env_spec)
            learner = spec.learner(ctx) if rt.is_root else None
            worker = spec.worker(ctx, rt.block(n))
            learners = [learner]
            if spec.protocol == "sync":
                rounds = SyncRounds(ctx, spec, rt, learner, worker)
            else:
                from mpidrl.run_async import AsyncRounds

                rounds = AsyncRounds(ctx, spec, rt, learner, worker)
        rt.barrier()  # the trial's clock starts when every rank is ready, not while one still sets up
        wall = timing.WallClock()
        first = 0
        if resumed:
            first, worker_state, (wall_time, sim_time) = resumed
            block = rt.block(n)
            worker.load_state_dict(
                {k: v if k.startswith("shared/") else v[block.start : block.stop] for k, v in worker_state.items()}
            )
            if learner is not None:
                learner.load_state_dict(self.learner_state)
            wall.t0 -= wall_time
            rounds.sim_time = sim_time
        for r in range(first, cfg.run.rounds):
            flags = rt.control(self._decide(r, first) if rt.is_root else Control.CONTINUE)
            if flags & Control.CHECKPOINT:
                self._checkpoint(trials[0], r, learner, worker, wall, rounds.sim_time)
            if flags & Control.STOP:
                which = f"trial {trials[0] + 1}" if len(trials) == 1 else f"trials {trials[0] + 1}-{trials[-1] + 1}"
                self.progress.info(
                    f"stopping before round {r + 1} of {which}: checkpoint saved; "
                    f"continue with: mpidrl run --resume {self.out}"
                )
                raise Interrupted(self.stop.signum or signal.SIGTERM)
            done = rounds.run(r)
            if done is not None:
                self._record(trials, r, learners, wall, done if isinstance(done, list) else [done])
        rounds.close()
        if self.writer is not None:
            self.writer.end_trial(trials[-1])

    def _decide(self, r: int, first: int) -> Control:
        """Rank 0: the control flags of round ``r``."""
        flags = Control.CONTINUE
        every = self.cfg.run.checkpoint_every
        if every and r > first and r % every == 0:
            flags |= Control.CHECKPOINT
        if self.stop.signum:
            flags |= Control.CHECKPOINT | Control.STOP
        return flags

    def _checkpoint(
        self, trial: int, r: int, learner: Learner | None, worker: Any, wall: timing.WallClock, sim_time: float
    ) -> None:
        """Gather every rank's worker state and save it with the learner's (before round ``r``).

        Worker state keys starting with ``shared/`` are identical on every rank (a replica of the
        learner's state) and are kept once; every other key holds one row per hosted agent.
        """
        states = self.rt.gather_objects(worker.state_dict())
        if not self.rt.is_root:
            return
        workers = {
            k: states[0][k] if k.startswith("shared/") else np.concatenate([s[k] for s in states]) for k in states[0]
        }
        self.writer.write_checkpoint(Checkpoint(trial, r, wall.now(), sim_time, learner.state_dict(), workers, {}))

    def _record(
        self,
        trials: range,
        r: int,
        learners: list[Learner],
        wall: timing.WallClock,
        results: list[tuple[dict[str, Any], Callable[[float], np.ndarray]]],
    ) -> None:
        """Rank 0: write the round's metrics (and messages) of each trial, report progress."""
        cfg = self.cfg
        now = wall.now()
        for trial, learner, (values, message_log) in zip(trials, learners, results):
            values["wall_time"] = now
            if cfg.run.eval_every and (r + 1) % cfg.run.eval_every == 0:
                values["eval_return"] = evaluate(cfg, self.env_spec, learner, trial, r)
            if cfg.run.record_messages:
                t = values["sim_time"] if cfg.time.mode == "simulated" else values["wall_time"]
                self.writer.log_messages(message_log(t))
        self.writer.write_rounds(trials, r, [values for values, _ in results])
        if self.progress.due(r):
            self.writer.flush()  # a round the log reports is on disk
        means = {k: np.stack([values[k] for values, _ in results]) for k in ("reward", *PROGRESS)}
        reward = means.pop("reward")
        self.progress.update(
            trials[-1],
            r,
            float(np.nanmean(reward)) if np.isfinite(reward).any() else float("nan"),
            *(float(means[k].mean()) for k in PROGRESS),
            first=trials[0],
        )


class SyncRounds:
    """Rounds of the learner-centric algorithms: broadcast, act, gather (:mod:`mpidrl.comm.rounds`)."""

    def __init__(self, ctx: Context, spec: AlgorithmSpec, rt: Runtime, learner: Learner | None, worker: Any):
        self.ctx, self.spec, self.rt, self.learner, self.worker = ctx, spec, rt, learner, worker
        cfg = ctx.cfg
        self.sim = None
        if cfg.time.mode == "simulated":
            self.sim = timing.SyncSimClock(cfg.time, ctx.n, spec.policy_size(cfg, ctx.spec))
        self.claims = AgentClaims(rt) if dynamic_placement(cfg, rt.size) else None

    def close(self) -> None:
        """Release what the rounds hold over MPI (collective; after the trial's last round)."""
        if self.claims is not None:
            self.claims.free()

    @property
    def sim_time(self) -> float:
        return self.sim.now if self.sim else np.nan

    @sim_time.setter
    def sim_time(self, value: float) -> None:
        if self.sim:
            self.sim.now = value

    def run(self, r: int) -> tuple[dict[str, Any], Callable[[float], np.ndarray]] | None:
        """One round; on rank 0 the learner's update, the round's metrics and its message log."""
        n, spec = self.ctx.n, self.spec
        res = sync_round(self.rt, spec, self.learner, self.worker, r, n, self.claims)
        if res is None:
            return None
        self.learner.update(r, res.messages)
        values = round_values(res, spec, n)
        values["sim_time"] = self.sim.advance(values["episodes"]) if self.sim else np.nan
        return values, lambda t: message_rows(res, spec, self.ctx.trial, r, t, self.learner.downlink_kind)
