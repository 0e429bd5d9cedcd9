"""The HDF5 run file, schema "mpidrl/1", written by rank 0 as rounds finish.

Layout (T trials, R rounds, N agents)::

    /                         attributes: schema, config (JSON), versions, world_size, n_agents, seed,
                              git_sha, created, slurm_job_id, slurm_array_job_id, slurm_array_task_id,
                              status, rounds_done, trials_done; the writer's writer_host, writer_pid and
                              heartbeat (unix time of its last write); resumes (JSON list of the jobs that
                              continued the run)
    /metrics/<name>           [T, R, N] per agent, or [T, R]; chunked, growing along R
                              (control_messages / control_bytes: the asynchronous protocols' control
                              traffic per agent, both directions, apart from the payload; 0 otherwise;
                              rank: the MPI rank that ran the agent's round)
    /diagnostics/<name>       [T, R, N] algorithm diagnostics (ESPC utility, p_comm, ...), if record_messages
    /messages                 compound [M] one row per message, if record_messages (chunked, gzip)
    /checkpoint               slots a and b, each with attributes trial, round, wall_time, sim_time and
                              datasets learner/<key>, workers/<key> (rows = agents): the state to resume
                              exactly before ``round``; attribute ``current`` names the complete slot
    /final/<t>                the state at the end of the trials run together from trial t (same layout)

Rows not yet written read as NaN (floats) or 0 (integers). A new file is built under a temporary name
and moved into place whole. Rounds are queued in memory and written as one block per dataset at least
every ``flush_every`` seconds (by a monitor thread, whatever the ranks are doing), at the end of each
trial and on :meth:`RunWriter.flush`; a job that dies keeps every round written before. The writer holds
no HDF5 file lock, so ``summary``, ``plot`` and h5py can open a live run; ``status`` says whether the
run is ``running`` (and :func:`describe_status` whether its writer is still alive), or ended
``complete``, ``failed`` or ``interrupted``. Saved state carries checksums (:mod:`mpidrl.store.state`).
"""

from mpidrl.records import MESSAGE_DTYPE, PER_AGENT, PER_ROUND
from mpidrl.store.reader import (
    SCHEMA,
    STATUSES,
    Run,
    RunFileError,
    describe_status,
    open_file,
    read_checkpoint,
    read_messages,
    read_run,
    writer_alive,
)
from mpidrl.store.state import Checkpoint, DamagedState, load_checkpoint, read_final
from mpidrl.store.writer import RunWriter, WriteError, refuse_live

__all__ = [
    "MESSAGE_DTYPE",
    "PER_AGENT",
    "PER_ROUND",
    "SCHEMA",
    "STATUSES",
    "Checkpoint",
    "DamagedState",
    "Run",
    "RunFileError",
    "RunWriter",
    "WriteError",
    "describe_status",
    "load_checkpoint",
    "open_file",
    "read_checkpoint",
    "read_final",
    "read_messages",
    "read_run",
    "refuse_live",
    "writer_alive",
]
