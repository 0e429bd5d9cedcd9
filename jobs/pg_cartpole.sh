#!/bin/sh
# The policy-gradient time experiments on CartPole-v1 (simulated clock, one process each), see
# docs/policy_gradient.md. About 15 CPU-minutes on a shared 2-core laptop.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-results/pg}
mkdir -p "$OUT"
run() {  # run NAME CONFIG ARGS...
  name=$1; cfg=$2; shift 2
  nice -n 10 "$BIN/mpidrl" run "$cfg" --out "$OUT/$name.h5" --overwrite "$@" > "$OUT/$name.log" 2>&1
}
AF="--set algo.alpha=0.015625"
for setting in straggler sqrt equal; do
  run "${setting}_sync" configs/pg/cartpole_$setting.toml --set algo.name='"nigt-sync"'
  run "${setting}_rennala" configs/pg/cartpole_$setting.toml --set algo.name='"rennala-nigt"'
  run "${setting}_afedpg" configs/pg/cartpole_$setting.toml --set algo.name='"afedpg"' $AF
done
for kappa in 0 0.1 1 10; do
  run "kappa${kappa}_rennala" configs/pg/cartpole_kappa.toml --set algo.name='"rennala-nigt"' --set time.kappa=$kappa
  run "kappa${kappa}_afedpg" configs/pg/cartpole_kappa.toml --set algo.name='"afedpg"' --set time.kappa=$kappa $AF
done
run hetero_malenia configs/pg/cartpole_hetero.toml --set algo.name='"malenia-nigt"'
run hetero_afedpg configs/pg/cartpole_hetero.toml --set algo.name='"afedpg"' $AF
run hetero_rennala configs/pg/cartpole_hetero.toml --set algo.name='"rennala-nigt"'
