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
from pathlib import Path
from typing import Any

import numpy as np

from mpidrl import __version__, registry, rng, timing
from mpidrl.comm import Control
from mpidrl.comm.runtime import Runtime, library_version, mpi4py_version
from mpidrl.config import Config
from mpidrl.envs import EnvSpec, make_env, observation_encoder, rollout
from mpidrl.log import Progress
from mpidrl.protocols import Context, LearnerBase, Protocol, RoundRecord
from mpidrl.store import Checkpoint, RunWriter, read_checkpoint

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


def evaluate(cfg: Config, env_spec: EnvSpec, learner: LearnerBase, trial: int, round: int) -> float:
    """Mean undiscounted return of the learner's greedy policy over ``eval_episodes`` episodes."""
    actor = learner.actor()
    if actor is None:
        return float("nan")
    env = make_env(cfg.env, rng.LEARNER)
    encode = observation_encoder(env_spec)
    seeds = rng.generator(cfg.run.seed, trial, rng.Stream.EVAL, round).integers(0, 2**31 - 1, cfg.run.eval_episodes)
    returns = [rollout(env, actor, encode, cfg.env.gamma, int(s)).undiscounted for s in seeds]
    env.close()
    return float(np.mean(returns))


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
        self.spec = registry.lookup(cfg.algo.name)
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
                (*self.spec.protocol.diagnostics, *self.spec.diagnostics),
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
        cfg, rt, n = self.cfg, self.rt, self.cfg.agents.n
        contexts = [Context(cfg, trial, self.env_spec) for trial in trials]
        protocol = self.spec.protocol.start(self.spec, contexts, rt)
        rt.barrier()  # the trial's clock starts when every rank is ready, not while one still sets up
        wall = timing.WallClock()
        first = 0
        if resumed:
            first, worker_state, (wall_time, sim_time) = resumed
            block = rt.block(n)
            protocol.worker.load_state_dict(
                {k: v if k.startswith("shared/") else v[block.start : block.stop] for k, v in worker_state.items()}
            )
            if protocol.learner is not None:
                protocol.learner.load_state_dict(self.learner_state)
            wall.t0 -= wall_time
            protocol.sim_time = sim_time
        for r in range(first, cfg.run.rounds):
            flags = rt.control(self._decide(r, first) if rt.is_root else Control.CONTINUE)
            if flags & Control.CHECKPOINT:
                self._checkpoint(trials[0], r, protocol, wall)
            if flags & Control.STOP:
                which = f"trial {trials[0] + 1}" if len(trials) == 1 else f"trials {trials[0] + 1}-{trials[-1] + 1}"
                self.progress.info(
                    f"stopping before round {r + 1} of {which}: checkpoint saved; "
                    f"continue with: mpidrl run --resume {self.out}"
                )
                raise Interrupted(self.stop.signum or signal.SIGTERM)
            records = protocol.run(r)
            if records is not None:
                self._record(trials, r, protocol, wall, records)
        protocol.close()
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

    def _checkpoint(self, trial: int, r: int, protocol: Protocol, wall: timing.WallClock) -> None:
        """Gather every rank's worker state and save it with the learner's (before round ``r``).

        Worker state keys starting with ``shared/`` are identical on every rank (a replica of the
        learner's state) and are kept once; every other key holds one row per hosted agent.
        """
        states = self.rt.gather_objects(protocol.worker.state_dict())
        if not self.rt.is_root:
            return
        workers = {
            k: states[0][k] if k.startswith("shared/") else np.concatenate([s[k] for s in states]) for k in states[0]
        }
        state = protocol.learner.state_dict()
        self.writer.write_checkpoint(Checkpoint(trial, r, wall.now(), protocol.sim_time, state, workers))

    def _record(
        self, trials: range, r: int, protocol: Protocol, wall: timing.WallClock, records: list[RoundRecord]
    ) -> None:
        """Rank 0: write the round's metrics (and messages) of each trial, report progress."""
        cfg = self.cfg
        now = wall.now()
        values = [record.values for record in records]
        for trial, learner, record in zip(trials, protocol.learners, records):
            record.values["wall_time"] = now
            if cfg.run.eval_every and (r + 1) % cfg.run.eval_every == 0:
                record.values["eval_return"] = evaluate(cfg, self.env_spec, learner, trial, r)
            if cfg.run.record_messages:
                t = record.values["sim_time"] if cfg.time.mode == "simulated" else now
                self.writer.log_messages(record.traffic.rows(trial, r, t))
        self.writer.write_rounds(trials, r, values)
        if self.progress.due(r):
            self.writer.flush()  # a round the log reports is on disk
        means = {k: np.stack([v[k] for v in values]) for k in ("reward", *PROGRESS)}
        reward = means.pop("reward")
        self.progress.update(
            trials[-1],
            r,
            float(np.nanmean(reward)) if np.isfinite(reward).any() else float("nan"),
            *(float(means[k].mean()) for k in PROGRESS),
            first=trials[0],
        )
