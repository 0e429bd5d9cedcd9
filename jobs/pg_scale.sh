#!/bin/sh
# The larger MuJoCo runs of docs/policy_gradient.md ("Larger runs"), simulated clock, one process per
# run, in three lanes run side by side (about 40 CPU-minutes in all on this machine; the lanes only spread
# the runs, results do not depend on them):
#   Hopper-v5, horizon 1000, 80 rounds, 5 trials: straggler (sync, Rennala, AFedPG), kappa in {0, 1, 10}
#   (Rennala, AFedPG), expensive communication kappa_i = sqrt(i) d^(1/4) (sync, Rennala, AFedPG), and the
#   latter at M = 20 with 3 trials (Rennala, AFedPG);
#   Hopper-v5, same scale, two agents, the second with the negated observation (Malenia, AFedPG);
#   HalfCheetah-v5, horizon 1000, 50 rounds, 3 trials: straggler (sync, Rennala, AFedPG).
# AFedPG uses alpha = 2^-6, the NIGT methods 2^-5 (the CartPole tuning of jobs/pg_tune.sh).
set -e
cd "$(dirname "$0")/.."
B=${BIN:-.venv/bin}/mpidrl
O=${OUT:-results/pg}
A="--set algo.alpha=0.015625"
S="--set algo.H=1000 --set run.rounds=80 --set run.trials=5"
mkdir -p "$O"
# run NAME CONFIG ALGO [--set ...]: results in $O/scale_NAME_ALGO.h5 and .log
run() {
  name=$1 config=$2 algo=$3
  shift 3
  extra=""
  [ "$algo" = afedpg ] && extra=$A
  nice -n 19 $B run "$config" --set algo.name="\"$algo\"" $extra "$@" --set run.log_every=60 --overwrite \
    --out "$O/scale_${name}_$algo.h5" > "$O/scale_${name}_$algo.log" 2>&1
}
lane1() {
  for a in rennala-nigt afedpg nigt-sync; do run hopper_costly configs/pg/hopper_costly.toml $a; done
  for a in rennala-nigt nigt-sync afedpg; do run hopper_straggler configs/pg/hopper_straggler.toml $a $S; done
  for a in rennala-nigt afedpg; do
    run hopper_costly_M20 configs/pg/hopper_costly.toml $a --set algo.M=20 --set algo.M_init=20 --set run.trials=3
  done
}
lane2() {
  for k in 0 1 10; do
    for a in rennala-nigt afedpg; do run hopper_kappa$k configs/pg/hopper_kappa.toml $a $S --set time.kappa=$k; done
  done
  for a in rennala-nigt nigt-sync afedpg; do run halfcheetah_straggler configs/pg/halfcheetah_straggler.toml $a; done
}
lane3() {
  for a in malenia-nigt afedpg; do run hopper_hetero configs/pg/hopper_hetero.toml $a $S; done
}
lane1 &
lane2 &
lane3 &
wait
