#!/bin/sh
# Step-size selection for the policy-gradient experiments (docs/policy_gradient.md): alpha over
# {2^-8 .. 2^-3} for rennala-nigt and afedpg on CartPole-v1 with equal times, 1 trial of 50 rounds.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-results/pg/tune}
mkdir -p "$OUT"
for algo in rennala-nigt afedpg; do
  for alpha in 0.00390625 0.0078125 0.015625 0.03125 0.0625 0.125; do
    nice -n 10 "$BIN/mpidrl" run configs/pg/cartpole_equal.toml --set run.trials=1 --set algo.name="\"$algo\"" \
      --set algo.alpha=$alpha --out "$OUT/${algo}_$alpha.h5" --overwrite > /dev/null
  done
done
"$BIN/python" analysis/pg_final.py "$OUT"/*.h5
