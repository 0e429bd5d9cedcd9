#!/bin/sh
# Reduced Hopper-v5 run of the heterogeneous-times setting (configs/pg/hopper_sqrt.toml), simulated clock.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-results/pg}
mkdir -p "$OUT"
for algo in nigt-sync rennala-nigt afedpg; do
  extra=""
  [ "$algo" = afedpg ] && extra="--set algo.alpha=0.015625"
  nice -n 10 "$BIN/mpidrl" run configs/pg/hopper_sqrt.toml --set algo.name="\"$algo\"" $extra \
    --out "$OUT/hopper_$algo.h5" --overwrite > "$OUT/hopper_$algo.log" 2>&1
done
