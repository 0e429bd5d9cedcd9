#!/bin/bash
# The tasks of a sweep on a laptop, without SLURM: each line of SWEEP.txt (written by `mpidrl sweep`)
# is one `mpiexec -n RANKS mpidrl run LINE`, PARALLEL of them at a time.
#   jobs/local/sweep.sh DIR/sweep.txt [-j PARALLEL] [-n RANKS] [-t FIRST-LAST]
# PARALLEL x RANKS should not exceed the cores. Each task's output goes to DIR/logs/local_<task>.out.
# -t runs only tasks FIRST..LAST (0-based, as SLURM array ids). Exit status 1 if any task failed.
# Run again, it skips the tasks whose run file is complete and continues the interrupted ones.
set -uo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1
usage() { echo "usage: $0 SWEEP.txt [-j PARALLEL] [-n RANKS] [-t FIRST-LAST]" >&2; exit 2; }
[ $# -ge 1 ] && [ -f "$1" ] || usage
sweep=$1
shift
parallel=1 ranks=1 first=0 last=-1
while getopts "j:n:t:" opt; do
    case $opt in
    j) parallel=$OPTARG ;;
    n) ranks=$OPTARG ;;
    t) first=${OPTARG%-*} last=${OPTARG#*-} ;;
    *) usage ;;
    esac
done
logs=$(dirname "$sweep")/logs
mkdir -p "$logs"
mapfile -t lines <"$sweep"
[ "$last" -ge 0 ] || last=$((${#lines[@]} - 1))

run_task() { # task index, then the line's words
    local task=$1
    shift
    # As sweep.sbatch: a task whose run file is complete is skipped; one interrupted or stopped without
    # closing continues from its checkpoint (--resume); MPIDRL_OVERWRITE=1 starts every task afresh.
    local out="" previous="" word state
    for word in "$@"; do
        [ "$previous" != --out ] || out=$word
        previous=$word
    done
    if [ "${MPIDRL_OVERWRITE:-0}" != 0 ]; then
        set -- "$@" --overwrite
    elif [ -n "$out" ] && [ -e "$out" ]; then
        # shellcheck disable=SC2086
        state=$(${MPIDRL:-mpidrl} status "$out")
        case ${state%% *} in
        complete)
            echo "task $task: $out is complete; nothing to do"
            return 0
            ;;
        interrupted | stopped) set -- "$@" --resume "$out" ;;
        esac
    fi
    # shellcheck disable=SC2086  # MPIDRL may be several words ("python -m mpidrl")
    if ${MPIEXEC:-mpiexec} -n "$ranks" ${MPIDRL:-mpidrl} run "$@" >"$logs/local_$task.out" 2>&1; then
        echo "task $task: done"
    else
        echo "task $task: FAILED (exit $?), see $logs/local_$task.out"
        return 1
    fi
}

failed=0 running=0
for ((task = first; task <= last; task++)); do
    if [ "$running" -ge "$parallel" ]; then
        wait -n || failed=$((failed + 1))
        running=$((running - 1))
    fi
    eval "set -- ${lines[$task]}" # the line was written with shell quoting by `mpidrl sweep`
    run_task "$task" "$@" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=$((failed + 1))
    running=$((running - 1))
done
echo "$((last - first + 1 - failed)) of $((last - first + 1)) task(s) done"
[ "$failed" -eq 0 ]
