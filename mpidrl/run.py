"""Running an experiment: trials of rounds, metrics to the run file, checkpoints, clean stops.

Every rank runs an :class:`Experiment` with the same validated config; rank 0 also owns the learner, the
run file and the progress report. At the start of every round the ranks agree on control flags (an
Allreduce of each rank's own): save a checkpoint (every ``run.checkpoint_every`` rounds, and before a
stop) and stop cleanly (after SIGTERM or SIGINT reached any rank). A checkpoint holds the learner's and
every agent's state; with the counter-based random streams that is all a resumed run needs to be
bit-identical to an uninterrupted one. At the end of each trial its final state is saved too: the learned
policy, and what a run extended to more rounds (``--resume --set run.rounds=N``) continues from.

On rank 0 a :class:`Monitor` thread flushes queued rounds at least once a second and beats the run
file's heartbeat whatever the main thread is doing, and, when another rank reports a failure, marks
the file ``failed`` and ends the job.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mpidrl import registry, rng, timing
from mpidrl.comm import Control, PeerFailed
from mpidrl.comm.runtime import Runtime, library_version, mpi4py_version
from mpidrl.config import Config
from mpidrl.envs import EnvSpec, make_env, observation_encoder, rollout
from mpidrl.log import Progress
from mpidrl.protocols import Context, LearnerBase, Protocol, RoundRecord
from mpidrl.signals import REQUEST, StopNow, StopRequest
from mpidrl.store import (
    Checkpoint,
    DamagedState,
    RunFileError,
    RunWriter,
    WriteError,
    load_checkpoint,
    open_file,
    read_final,
)
from mpidrl.version import __version__

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


def job() -> dict[str, Any]:
    """The SLURM job (if any), host and time of this process: who wrote or continued a run file."""
    return {
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
        "slurm_array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID", ""),
        "slurm_array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID", ""),
        "host": socket.gethostname(),
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


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


class StartError(Exception):
    """The run file cannot be written or continued; the message is one line (exit status 2)."""


class Monitor(threading.Thread):
    """Rank 0's watch while the experiment runs: flushes queued rounds and beats the run file's heartbeat,
    and takes failure notices of other ranks (where MPI allows a second thread to), so that a failure is
    recorded and the job ended within a fraction of a second whatever the main thread is doing."""

    def __init__(self, rt: Runtime, writer: RunWriter, every: float = 0.05):
        super().__init__(name="mpidrl-monitor", daemon=True)
        self.rt, self.writer, self.every = rt, writer, every
        self.done = threading.Event()
        self.watching = rt.size > 1 and rt.thread_multiple
        rt.watched = self.watching  # the main thread no longer takes failure notices itself

    def run(self) -> None:
        while not self.done.wait(self.every):
            try:
                self.writer.tick()
                if self.watching:
                    self.rt.check_peers()
            except PeerFailed as exc:
                sys.stderr.write(f"mpidrl: {exc}; ending the job\n")
                self.writer.set_status("failed")
                self.rt.acknowledge_failure(exc.rank)
                self.rt.abort(1)
            except Exception as exc:  # the run goes on; its file is flushed again at the next round
                sys.stderr.write(f"mpidrl: monitor: {type(exc).__name__}: {exc}\n")

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.rt.watched = False


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
        overwrite: bool = False,
    ):
        self.cfg, self.env_spec, self.out, self.rt = cfg, env_spec, Path(out), rt
        self.spec = registry.lookup(cfg.algo.name)
        self.progress = progress or Progress(rt.rank, cfg.run.trials, cfg.run.rounds, cfg.run.log_every)
        self.stop = stop or REQUEST
        self.overwrite = overwrite
        self.writer: RunWriter | None = None
        self.starts: dict[int, Checkpoint] = {}
        """rank 0: the saved state each batch of trials continues from, by its first trial"""

    def run(self, resume: bool = False) -> None:
        """Run (or, with ``resume``, continue) every trial; raises on failure, :class:`Interrupted` or
        :class:`StartError` (on every rank, when the run file cannot be written)."""
        cfg, rt = self.cfg, self.rt
        plan = None
        if rt.is_root:
            try:
                plan = ("ok", self._open(resume))
            except (OSError, RunFileError, DamagedState, FileExistsError) as exc:
                plan = ("error", f"{self.out}: {exc}" if str(self.out) not in str(exc) else str(exc))
        status, plan = rt.share(plan)
        if status == "error":
            raise StartError(plan)
        first_trial, starts = plan
        monitor = Monitor(rt, self.writer) if self.writer is not None else None
        if monitor is not None:
            monitor.start()
        try:
            for first in range(first_trial, cfg.run.trials, cfg.run.trial_batch):
                trials = range(first, min(first + cfg.run.trial_batch, cfg.run.trials))
                self._trials(trials, starts.get(first))
        except Interrupted:
            self._close(monitor, "interrupted")
            rt.barrier()  # nobody exits (and gets the job killed) before rank 0 has closed the file
            raise
        except BaseException as exc:
            self._close(monitor, "interrupted" if isinstance(exc, (StopNow, KeyboardInterrupt)) else "failed")
            raise
        self._close(monitor, "complete")

    def _close(self, monitor: Monitor | None, status: str) -> None:
        if monitor is not None:
            monitor.stop()
        if self.writer is None:
            return
        if status == "failed" and self.writer.created and not self.writer.data_written:
            self.writer.discard()  # a start that failed leaves no file behind
        elif self.writer.broken is not None or status != "complete":
            try:
                self.writer.close(status)
            except WriteError:  # the failure being raised says more
                self.writer.discard()
        else:
            self.writer.close(status)

    def _open(self, resume: bool) -> tuple[int, dict[int, tuple[int, float, float]]]:
        """Rank 0: create or reopen the run file; the first trial to run and, for each batch of trials that
        continues from saved state, (round, wall time, sim time) of that state (kept in ``self.starts``)."""
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
                overwrite=self.overwrite,
            )
            self.progress.info(
                f"mpidrl {__version__}: {cfg.algo.name} on {cfg.env.id}, {n} agents on "
                f"{self.rt.size} rank(s), {cfg.run.trials} trial(s) x {cfg.run.rounds} rounds "
                f"-> {self.out}"
            )
            return 0, {}
        first_trial, starts = self._resume_plan()  # read and checked before the file is touched
        self.writer = RunWriter.reopen(self.out, FLUSH_EVERY, resumed_by={**job(), "world_size": self.rt.size})
        self.writer.set_attrs({"config": cfg.to_json()})  # an extended run's rounds
        begins = {t: s.round for first, s in starts.items() for t in range(first, first + cfg.run.trial_batch)}
        self.writer.truncate_messages({t: begins.get(t, 0) for t in range(first_trial, cfg.run.trials)}, cfg.run.trials)
        self.starts = starts
        at = min(((t, s.round) for t, s in starts.items()), default=(first_trial, 0))
        self.progress.info(f"mpidrl {__version__}: resuming {self.out} at trial {at[0] + 1} round {at[1] + 1}")
        return first_trial, {first: (s.round, s.wall_time, s.sim_time) for first, s in starts.items()}

    def _resume_plan(self) -> tuple[int, dict[int, Checkpoint]]:
        """Where each batch of trials continues: the newest of its checkpoint and its final state."""
        cfg = self.cfg
        with open_file(self.out) as f:
            trials_done = int(f.attrs.get("trials_done", 0))
            stored = int(json_config(f)["run"]["rounds"])
            if stored < cfg.run.rounds:  # extended: every trial continues from its final state
                trials_done = 0
            ckpt, notes = load_checkpoint(f, cfg.run.trials, cfg.run.rounds, cfg.agents.n)
            finals = read_final(f)
        for note in notes:
            self.progress.info(f"mpidrl: warning: {note}")
        starts: dict[int, Checkpoint] = {}
        for first, state in finals.items():
            if first >= trials_done and state.round < cfg.run.rounds:
                starts[first] = state
        if ckpt is not None and ckpt.trial >= trials_done:
            batch_first = ckpt.trial - (ckpt.trial % cfg.run.trial_batch)
            if batch_first not in starts or starts[batch_first].round < ckpt.round:
                starts[batch_first] = ckpt
        first_trial = trials_done - trials_done % cfg.run.trial_batch
        return first_trial, starts

    def _trials(self, trials: range, resumed: tuple[int, float, float] | None) -> None:
        """All rounds of one trial, or of a batch of trials run together (``run.trial_batch`` > 1), from
        saved state when ``resumed`` is (round, wall time, sim time)."""
        cfg, rt, n = self.cfg, self.rt, self.cfg.agents.n
        contexts = [Context(cfg, trial, self.env_spec) for trial in trials]
        protocol = self.spec.protocol.start(self.spec, contexts, rt)
        rt.barrier()  # the trial's clock starts when every rank is ready, not while one still sets up
        wall = timing.WallClock()
        first = 0
        if resumed:
            first, wall_time, sim_time = resumed
            saved = self.starts.get(trials[0])
            worker_state = rt.share(saved.workers if rt.is_root else None)
            block = rt.block(n)
            protocol.worker.load_state_dict(
                {k: v if k.startswith("shared/") else v[block.start : block.stop] for k, v in worker_state.items()}
            )
            if protocol.learner is not None:
                protocol.learner.load_state_dict(saved.learner)
            wall.t0 -= wall_time
            protocol.sim_time = sim_time
        for r in range(first, cfg.run.rounds):
            flags = rt.control(self._decide(r, first))
            if flags & Control.CHECKPOINT:
                self._save(protocol, Checkpoint(trials[0], r, wall.now(), protocol.sim_time, {}, {}))
            if flags & Control.STOP:
                which = f"trial {trials[0] + 1}" if len(trials) == 1 else f"trials {trials[0] + 1}-{trials[-1] + 1}"
                self.progress.info(
                    f"stopping before round {r + 1} of {which}: checkpoint saved; "
                    f"continue with: mpidrl run --resume {self.out}"
                )
                protocol.close()  # every rank stops here together: what the rounds hold over MPI is released
                raise Interrupted(self.stop.signum or 15)
            records = protocol.run(r)
            if records is not None:
                self._record(trials, r, protocol, wall, records)
        self._save(protocol, Checkpoint(trials[0], cfg.run.rounds, wall.now(), protocol.sim_time, {}, {}), trials)
        protocol.close()
        if self.writer is not None:
            self.writer.end_trial(trials[-1])

    def _decide(self, r: int, first: int) -> Control:
        """This rank's control flags for round ``r`` (every rank's are combined): a checkpoint on rank 0's
        schedule, a stop on any rank that received a signal."""
        flags = Control.CONTINUE
        every = self.cfg.run.checkpoint_every
        if self.rt.is_root and every and r > first and r % every == 0:
            flags |= Control.CHECKPOINT
        if self.stop.signum:
            flags |= Control.CHECKPOINT | Control.STOP
        return flags

    def _save(self, protocol: Protocol, at: Checkpoint, final: range | None = None) -> None:
        """Gather every rank's worker state and save it with the learner's: as the checkpoint before round
        ``at.round``, or (``final``: the trials run) as the state those trials ended in.

        Worker state keys starting with ``shared/`` are identical on every rank (a replica of the
        learner's state) and are kept once; every other key holds one row per hosted agent.
        """
        states = self.rt.gather_objects(protocol.worker.state_dict())
        if not self.rt.is_root:
            return
        at.workers = {
            k: states[0][k] if k.startswith("shared/") else np.concatenate([s[k] for s in states]) for k in states[0]
        }
        at.learner = protocol.learner.state_dict()
        if final is None:
            self.writer.write_checkpoint(at)
        else:
            self.writer.write_final(final[0], final[-1], at)

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
            sim_time=float(values[-1]["sim_time"]) if cfg.time.mode == "simulated" else None,
        )


def json_config(file: Any) -> dict[str, Any]:
    """The config stored in an open run file."""
    return json.loads(file.attrs["config"])
