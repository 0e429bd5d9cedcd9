#!/bin/sh
# Reduced Hopper-v5 runs of the paper's settings (configs/pg/hopper_*.toml), simulated clock, one process
# each: straggler and equal times (nigt-sync, rennala-nigt, afedpg), the kappa sweep (rennala-nigt,
# afedpg) and heterogeneous environments (malenia-nigt, afedpg). AFedPG uses alpha = 2^-6.
set -e
cd "$(dirname "$0")/.."
B=${BIN:-.venv/bin}/mpidrl
O=${OUT:-results/pg}
A="--set algo.alpha=0.015625"
mkdir -p "$O"
run() { nice -n 10 $B run "$@" --overwrite --set run.log_every=60 > /dev/null; }
for s in straggler equal; do
  run configs/pg/hopper_$s.toml --set algo.name='"nigt-sync"' --out "$O/hopper_${s}_nigt-sync.h5"
  run configs/pg/hopper_$s.toml --set algo.name='"rennala-nigt"' --out "$O/hopper_${s}_rennala-nigt.h5"
  run configs/pg/hopper_$s.toml --set algo.name='"afedpg"' $A --out "$O/hopper_${s}_afedpg.h5"
done
for k in 0 0.1 1 10; do
  run configs/pg/hopper_kappa.toml --set time.kappa=$k --out "$O/hopper_kappa${k}_rennala.h5"
  run configs/pg/hopper_kappa.toml --set time.kappa=$k --set algo.name='"afedpg"' $A --out "$O/hopper_kappa${k}_afedpg.h5"
done
run configs/pg/hopper_hetero.toml --out "$O/hopper_hetero_malenia.h5"
run configs/pg/hopper_hetero.toml --set algo.name='"afedpg"' $A --out "$O/hopper_hetero_afedpg.h5"
