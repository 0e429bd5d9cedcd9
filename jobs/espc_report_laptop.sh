#!/usr/bin/env bash
# Run report experiments of ESPC (configs/report/s4_7, s4_8, s4_9) on a laptop, one run after another.
# Usage: jobs/espc_report_laptop.sh SECTION ENV [TRIALS] [extra mpidrl run options]
#   SECTION: s4_7 | s4_8 | s4_9;  ENV: cartpole | ant;  TRIALS: override of run.trials (default: the report's)
# All trials of a run go together (run.trial_batch = the trial count: the same results as one at a time).
# Environment: NP (ranks, default 2), OUT (directory of run files, default results/report/SECTION),
# NICE (niceness, default 10). Each run file is results/.../ENV_NAME.h5; an existing complete file is kept.
# Prints each run's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
section=$1 env=$2 trials=${3:-}
shift $(($# >= 3 ? 3 : 2))
np=${NP:-2} out=${OUT:-results/report/$section} niceness=${NICE:-10}
mkdir -p "$out"
for cfg in configs/report/"$section"/"$env"_*.toml; do
    name=$(basename "$cfg" .toml)
    file="$out/$name.h5"
    if [[ -f $file ]] && .venv/bin/python -c "import h5py,sys; sys.exit(h5py.File('$file','r').attrs['status']!='complete')" 2>/dev/null; then
        echo "keep $file (complete)"; continue
    fi
    n=${trials:-$(.venv/bin/python -c "import tomllib; print(tomllib.load(open('$cfg', 'rb'))['run']['trials'])")}
    extra=(--set "run.trials=$n" --set "run.trial_batch=$n" "$@")
    echo "$(date -u +%H:%M:%S) run $cfg -> $file ${extra[*]}"
    start=$(date +%s.%N)
    nice -n "$niceness" .venv/bin/mpiexec -n "$np" .venv/bin/mpidrl run "$cfg" "${extra[@]}" --out "$file" --overwrite
    echo "$name: $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s wall on $np ranks"
done
echo "$(date -u +%H:%M:%S) done $section $env"
