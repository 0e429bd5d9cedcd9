#!/bin/bash
# One mpidrl run on a laptop or workstation with mpiexec:
#   NP=4 jobs/local/run.sh CONFIG.toml [--set section.key=value ...] [--out RUN.h5]
# NP ranks (default 2); MPIEXEC and MPIDRL name the launcher and the mpidrl command (defaults: mpiexec,
# mpidrl from PATH). Threads are pinned to one per rank, as in the SLURM jobs.
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1
[ $# -ge 1 ] || { echo "usage: NP=4 $0 CONFIG.toml [--set k=v ...] [--out RUN.h5]" >&2; exit 2; }
# shellcheck disable=SC2086  # MPIDRL may be several words ("python -m mpidrl")
exec ${MPIEXEC:-mpiexec} -n "${NP:-2}" ${MPIDRL:-mpidrl} run "$@"
