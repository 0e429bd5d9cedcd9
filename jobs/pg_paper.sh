#!/bin/sh
# The paper's first experiments at the tuned step sizes (docs/policy_gradient.md, "The paper's
# experiments at tuned step sizes"): simulated clock, one process per run, 5 trials each, horizon 1000.
#   jobs/pg_paper.sh kappa       Hopper-v5, h_i = sqrt(i), kappa in {0, 0.1, 1, 10}: Rennala NIGT with one
#                                Allreduce, Rennala NIGT sending every gradient, AFedPG; 100 rounds
#   jobs/pg_paper.sh straggler   Hopper-v5, n = 10, h = 1 (x 9), 100: sync, Rennala, AFedPG; 100 rounds
#   jobs/pg_paper.sh parity      HalfCheetah-v5, n = 10, h_i = 1, kappa = 0: sync and AFedPG (5 trials),
#                                Rennala (1 trial: the same steps as sync, checked); 60 rounds
#   jobs/pg_paper.sh costly      Hopper-v5, h_i = sqrt(i), kappa_i = sqrt(i) d^(1/4), M = 20: Rennala NIGT
#                                (Allreduce and per gradient), AFedPG; 100 rounds
#   jobs/pg_paper.sh long        Hopper-v5, equal times, 1000 rounds (configs/pg/hopper_long.toml)
#   jobs/pg_paper.sh hetero      Hopper-v5, two agents, the second sees -s with a flag, h_i = sqrt(i):
#                                Malenia NIGT and AFedPG; 100 rounds
#   jobs/pg_paper.sh figures     the figures and tables quoted in the docs
# Step sizes from jobs/sweeps/pg-hopper-tune*.toml: NIGT alpha 2^-5, eta 0.3; AFedPG alpha 2^-8,
# eta 0.6. Several parts may run side by side (PARTS in parallel = cores).
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
O=${OUT:-results/pg_paper}
NIGT="--set algo.alpha=0.03125 --set algo.eta=0.3"
AFEDPG="--set algo.alpha=0.00390625 --set algo.eta=0.6"
S="--set algo.H=1000 --set run.rounds=100 --set run.trials=5 --set run.log_every=50"
mkdir -p "$O" docs/figures
# run NAME CONFIG ALGO [--set ...]: $O/NAME_ALGO.h5 and .log, at the ALGO's step sizes
run() {
  name=$1 config=$2 algo=$3
  shift 3
  steps=$NIGT
  [ "$algo" = afedpg ] && steps=$AFEDPG
  nice -n 10 "$BIN/mpidrl" run "$config" --set algo.name="\"$algo\"" $steps "$@" --overwrite \
    --out "$O/${name}_$algo.h5" > "$O/${name}_$algo.log" 2>&1
}
each='--set algo.communication="per-gradient"'
case ${1:-} in
kappa)
  for k in 0 0.1 1 10; do
    run kappa$k configs/pg/hopper_kappa.toml rennala-nigt $S --set time.kappa=$k
    run kappa${k}_each configs/pg/hopper_kappa.toml rennala-nigt $S --set time.kappa=$k $each
    run kappa$k configs/pg/hopper_kappa.toml afedpg $S --set time.kappa=$k
  done ;;
costly)
  C="--set algo.M=20 --set algo.M_init=20"
  run costly configs/pg/hopper_costly.toml rennala-nigt $S $C
  run costly_each configs/pg/hopper_costly.toml rennala-nigt $S $C $each
  run costly configs/pg/hopper_costly.toml afedpg $S $C ;;
straggler)
  for a in nigt-sync rennala-nigt afedpg; do run straggler configs/pg/hopper_straggler.toml $a $S; done ;;
parity)
  P="--set run.rounds=60 --set run.trials=5 --set time.h=1.0 --set run.log_every=20"
  for a in nigt-sync afedpg; do run parity configs/pg/halfcheetah_straggler.toml $a $P; done
  run parity configs/pg/halfcheetah_straggler.toml rennala-nigt $P --set run.trials=1 ;;
hetero)
  for a in malenia-nigt afedpg; do run hetero configs/pg/hopper_hetero.toml $a $S; done ;;
long)
  nice -n 10 "$BIN/mpidrl" run configs/pg/hopper_long.toml --overwrite --out "$O/long_rennala-nigt.h5" \
    > "$O/long_rennala-nigt.log" 2>&1 ;;
figures)
  P="$BIN/python analysis"
  set --
  for k in 0 0.1 1 10; do set -- "$@" "$k=$O/kappa${k}_rennala-nigt.h5,$O/kappa${k}_each_rennala-nigt.h5,$O/kappa${k}_afedpg.h5"; done
  $P/pg_kappa.py --target 150 -o docs/figures/pg_paper_kappa.png "$@" --labels "Rennala (Allreduce)" "Rennala (per gradient)" AFedPG
  for k in 10; do
    $P/pg_time.py --band ci -o docs/figures/pg_paper_kappa$k.png --title "Hopper-v5, h_i = sqrt(i), kappa = $k, 5 trials" \
      "$O/kappa${k}_rennala-nigt.h5" "$O/kappa${k}_each_rennala-nigt.h5" "$O/kappa${k}_afedpg.h5" \
      --labels "Rennala (Allreduce)" "Rennala (per gradient)" AFedPG
  done
  $P/pg_time.py --band ci -o docs/figures/pg_paper_costly.png --target 150 \
    --title "Hopper-v5, h_i = sqrt(i), kappa_i = sqrt(i) d^(1/4), M = 20, 5 trials" \
    "$O/costly_rennala-nigt.h5" "$O/costly_each_rennala-nigt.h5" "$O/costly_afedpg.h5" \
    --labels "Rennala (Allreduce)" "Rennala (per gradient)" AFedPG
  $P/pg_time.py --band ci --logx -o docs/figures/pg_paper_straggler.png --title "Hopper-v5, n = 10, h = 1 (x 9), 100, 5 trials" \
    "$O"/straggler_nigt-sync.h5 "$O"/straggler_rennala-nigt.h5 "$O"/straggler_afedpg.h5 --labels "sync NIGT" "Rennala NIGT" AFedPG
  $P/pg_time.py --band ci -o docs/figures/pg_paper_parity.png --title "HalfCheetah-v5, n = 10, h_i = 1, kappa = 0, 5 trials" \
    "$O"/parity_nigt-sync.h5 "$O"/parity_afedpg.h5 --labels "sync NIGT" AFedPG
  $P/pg_time.py --band ci --smooth 20 -o docs/figures/pg_paper_long.png --title "Hopper-v5, equal times, M = 10, 5 trials" \
    "$O"/long_rennala-nigt.h5 --labels "NIGT (sync = Rennala = Malenia here)"
  $P/pg_time.py --band ci -o docs/figures/pg_paper_hetero.png --title "Hopper-v5, 2 agents, the second negated, h_i = sqrt(i), 5 trials" \
    "$O"/hetero_malenia-nigt.h5 "$O"/hetero_afedpg.h5 --labels "Malenia NIGT" AFedPG ;;
*)
  sed -n '2,17p' "$0"
  exit 2 ;;
esac
