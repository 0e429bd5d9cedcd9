#!/usr/bin/env bash
# Run one figure of the report with the report authors' settings (configs/report_code), one run after another.
#   jobs/report_code_laptop.sh FIGURE [NP] [extra mpidrl run options, e.g. --set run.trials=2]
# FIGURE is the prefix of the configs, e.g. fig3_4_simplegrid, fig4_5_cartpole, fig4_9_ant. Writes
# results/report_code/<config>.h5 (OUT changes the folder) and prints each run's wall time.
set -euo pipefail
fig=${1:?usage: $0 FIGURE [NP] [mpidrl run options]}
np=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
cd "$(dirname "$0")/.."
out=${OUT:-results/report_code}
mkdir -p "$out"
shopt -s nullglob
configs=(configs/report_code/"$fig"_*.toml)
(( ${#configs[@]} )) || { echo "no configs/report_code/${fig}_*.toml" >&2; exit 2; }
for cfg in "${configs[@]}"; do
    name=$(basename "$cfg" .toml)
    start=$(date +%s.%N)
    nice -n 10 .venv/bin/mpiexec -n "$np" .venv/bin/mpidrl run "$cfg" --out "$out/$name.h5" --overwrite "$@"
    echo "$name: $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s wall on $np ranks"
done
