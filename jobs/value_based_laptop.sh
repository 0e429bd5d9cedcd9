#!/usr/bin/env bash
# Run the value-based comparison of one report figure on this machine, one run file per algorithm.
#   jobs/value_based_laptop.sh fig3_4_simplegrid [NP] [extra mpidrl run options, e.g. --set run.trials=20]
# writes results/value_based/<figure>_<algo>.h5 and prints the wall time of each run.
set -euo pipefail
fig=${1:?usage: $0 FIGURE_STEM [NP] [mpidrl run options]}
np=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
cd "$(dirname "$0")/.."
mkdir -p results/value_based
for algo in dql ebcdql davia es; do
    cfg=configs/report/${fig}_${algo}.toml
    out=results/value_based/${fig}_${algo}.h5
    start=$(date +%s.%N)
    nice -n 10 .venv/bin/mpiexec -n "$np" .venv/bin/mpidrl run "$cfg" --out "$out" --overwrite "$@"
    echo "$fig $algo: $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s wall on $np ranks"
done
