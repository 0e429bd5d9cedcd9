#!/usr/bin/env bash
# Run report experiments of ESPC (configs/report/s4_7, s4_8, s4_9) on a laptop, one run after another.
# Usage: jobs/espc_report_laptop.sh SECTION ENV [TRIALS]
#   SECTION: s4_7 | s4_8 | s4_9;  ENV: cartpole | ant;  TRIALS: override of run.trials (default: the report's)
# Environment: NP (ranks, default 2), OUT (directory of run files, default results/report/SECTION),
# NICE (niceness, default 10). Each run file is results/.../ENV_NAME.h5; an existing complete file is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
section=$1 env=$2 trials=${3:-}
np=${NP:-2} out=${OUT:-results/report/$section} niceness=${NICE:-10}
mkdir -p "$out"
for cfg in configs/report/"$section"/"$env"_*.toml; do
    name=$(basename "$cfg" .toml)
    file="$out/$name.h5"
    if [[ -f $file ]] && .venv/bin/python -c "import h5py,sys; sys.exit(h5py.File('$file','r').attrs['status']!='complete')" 2>/dev/null; then
        echo "keep $file (complete)"; continue
    fi
    extra=()
    [[ -n $trials ]] && extra=(--set "run.trials=$trials")
    echo "$(date -u +%H:%M:%S) run $cfg -> $file ${extra[*]}"
    nice -n "$niceness" .venv/bin/mpiexec -n "$np" .venv/bin/mpidrl run "$cfg" "${extra[@]}" --out "$file" --overwrite
done
echo "$(date -u +%H:%M:%S) done $section $env"
