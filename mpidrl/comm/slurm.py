"""The SLURM world-size check: refuse to run N separate copies when srun and MPI do not agree.

When ``srun`` starts the tasks of a job step with a PMI the MPI library does not speak (``--mpi=none``
with MPICH, a PMIx-only MPI under pmi2, ...), every task initialises MPI as a singleton: N copies of the
same run, each with a world of one, all writing the same file. SLURM tells each task how many tasks the
step has (``SLURM_STEP_NUM_TASKS``, ``SLURM_NTASKS``, ``SLURM_NPROCS``) and that it is inside a step
(``SLURM_STEP_ID``; unset in the batch script itself, where ``mpiexec`` may legitimately start fewer
ranks). mpiexec's own helper steps (Hydra starts one proxy per node with srun) have one task per node,
so a correct mpiexec launch never trips the check.
"""

from __future__ import annotations

from collections.abc import Mapping

SKIP_VARIABLE = "MPIDRL_SKIP_WORLD_CHECK"
"""Set to 1 to run anyway (e.g. deliberately one process in a multi-task step)."""

_COUNT_VARIABLES = ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS")


def step_tasks(environ: Mapping[str, str]) -> int | None:
    """Number of tasks SLURM started in this job step, or None outside a step."""
    if "SLURM_STEP_ID" not in environ:
        return None
    for name in _COUNT_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def world_size_mismatch(world_size: int, environ: Mapping[str, str]) -> str | None:
    """One-line explanation if SLURM started N > 1 tasks but MPI sees a world of 1, else None."""
    if environ.get(SKIP_VARIABLE, "") not in ("", "0"):
        return None
    tasks = step_tasks(environ)
    if tasks is None or tasks <= 1 or world_size != 1:
        return None
    job = environ.get("SLURM_JOB_ID", "?")
    return (
        f"SLURM started {tasks} tasks in job step {job}.{environ['SLURM_STEP_ID']} but MPI sees a world of "
        f"1 process, so each task would run a separate copy of the experiment: srun's PMI does not match "
        f"the MPI library mpi4py uses. Launch with `srun --mpi=pmi2` (or pmix; see `srun --mpi=list`), or "
        f"with mpiexec inside the allocation (MPIDRL_LAUNCHER=mpiexec in jobs/slurm/*.sbatch); "
        f"set {SKIP_VARIABLE}=1 to run anyway"
    )
