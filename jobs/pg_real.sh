#!/bin/sh
# Real mode (wall clock, asynchronous MPI with injected delays): the straggler setting at small scale,
# 4 agents on 2 ranks, h_1..3 = 1, h_4 = 10 scaled by delay_scale = 0.02 s (20 ms and 200 ms per gradient
# on top of the real computation). See docs/policy_gradient.md.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-results/pg}
NP=${NP:-2}
mkdir -p "$OUT"
SET="--set agents.n=4 --set algo.M=8 --set algo.M_init=8 --set run.rounds=40 --set run.trials=2"
SET="$SET --set time.mode=\"real\" --set time.h=\"10 if i == 4 else 1\" --set time.delay_scale=0.02"
for algo in nigt-sync rennala-nigt afedpg; do
  extra=""
  [ "$algo" = afedpg ] && extra="--set algo.alpha=0.015625"
  nice -n 10 "$BIN/mpiexec" -n "$NP" "$BIN/mpidrl" run configs/pg/cartpole_straggler.toml $SET $extra \
    --set algo.name="\"$algo\"" --out "$OUT/real_$algo.h5" --overwrite > "$OUT/real_$algo.log" 2>&1
done
