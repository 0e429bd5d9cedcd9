#!/bin/sh
# Real mode (wall clock, asynchronous MPI with injected delays): configs/pg/cartpole_real_straggler.toml,
# 4 agents on 2 ranks, 20 ms (agents 1-3) and 200 ms (agent 4) per gradient on top of the real computation.
# See docs/policy_gradient.md.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-results/pg}
NP=${NP:-2}
mkdir -p "$OUT"
for algo in nigt-sync rennala-nigt malenia-nigt afedpg; do
  extra=""
  [ "$algo" = afedpg ] && extra="--set algo.alpha=0.015625"
  nice -n 10 "$BIN/mpiexec" -n "$NP" "$BIN/mpidrl" run configs/pg/cartpole_real_straggler.toml $extra \
    --set algo.name="\"$algo\"" --out "$OUT/real_$algo.h5" --overwrite > "$OUT/real_$algo.log" 2>&1
done
