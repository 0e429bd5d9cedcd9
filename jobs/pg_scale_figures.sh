#!/bin/sh
# Figures and tables of the larger runs (jobs/pg_scale.sh) for docs/policy_gradient.md.
set -e
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
R=${OUT:-results/pg}/scale_
F=docs/figures
T=${TARGET:-100}
HC=${TARGET_HC:--200}
TH=${TARGET_HETERO:-50}
fig() { $PY analysis/pg_time.py "$@" | grep -v "first reaches"; }
tab() { echo; echo "$1"; shift; $PY analysis/pg_table.py --at end "$@"; }
fig ${R}hopper_straggler_nigt-sync.h5 ${R}hopper_straggler_rennala-nigt.h5 ${R}hopper_straggler_afedpg.h5 \
  --labels nigt-sync rennala-nigt afedpg --logx -o $F/pg_hopper_straggler_h1000.png \
  --title "Hopper-v5, H = 1000, n = 10, straggler h_10 = 100, 5 trials"
tab "straggler" --target $T ${R}hopper_straggler_nigt-sync.h5=nigt-sync \
  ${R}hopper_straggler_rennala-nigt.h5=rennala-nigt ${R}hopper_straggler_afedpg.h5=afedpg
fig ${R}hopper_costly_nigt-sync.h5 ${R}hopper_costly_rennala-nigt.h5 ${R}hopper_costly_afedpg.h5 \
  --labels nigt-sync rennala-nigt afedpg -o $F/pg_hopper_costly.png \
  --title "Hopper-v5, H = 1000, n = 5, h_i = sqrt(i), kappa_i = sqrt(i) d^(1/4), M = 10"
tab "kappa_i = sqrt(i) d^(1/4), M = 10" --target $T ${R}hopper_costly_nigt-sync.h5=nigt-sync \
  ${R}hopper_costly_rennala-nigt.h5=rennala-nigt ${R}hopper_costly_afedpg.h5=afedpg
fig ${R}hopper_costly_M20_rennala-nigt.h5 ${R}hopper_costly_M20_afedpg.h5 \
  --labels rennala-nigt afedpg -o $F/pg_hopper_costly_M20.png \
  --title "Hopper-v5, H = 1000, n = 5, h_i = sqrt(i), kappa_i = sqrt(i) d^(1/4), M = 20"
tab "kappa_i = sqrt(i) d^(1/4), M = 20" --target $T ${R}hopper_costly_M20_rennala-nigt.h5=rennala-nigt \
  ${R}hopper_costly_M20_afedpg.h5=afedpg
for k in 0 1 10; do
  fig ${R}hopper_kappa${k}_rennala-nigt.h5 ${R}hopper_kappa${k}_afedpg.h5 --labels rennala-nigt afedpg \
    -o $F/pg_hopper_kappa${k}_h1000.png --title "Hopper-v5, H = 1000, n = 5, h_i = sqrt(i), kappa = $k (simulated)"
  tab "kappa = $k" --target $T ${R}hopper_kappa${k}_rennala-nigt.h5=rennala-nigt ${R}hopper_kappa${k}_afedpg.h5=afedpg
done
$PY analysis/pg_kappa.py --target $T -o $F/pg_hopper_kappa_h1000.png \
  0=${R}hopper_kappa0_rennala-nigt.h5,${R}hopper_kappa0_afedpg.h5 \
  1=${R}hopper_kappa1_rennala-nigt.h5,${R}hopper_kappa1_afedpg.h5 \
  10=${R}hopper_kappa10_rennala-nigt.h5,${R}hopper_kappa10_afedpg.h5 > /dev/null
fig ${R}hopper_hetero_malenia-nigt.h5 ${R}hopper_hetero_afedpg.h5 --labels malenia-nigt afedpg \
  -o $F/pg_hopper_hetero_h1000.png --title "Hopper-v5, H = 1000, 2 agents, agent 2 negated obs, h_i = sqrt(i)"
tab "heterogeneous environments" --target $TH ${R}hopper_hetero_malenia-nigt.h5=malenia-nigt \
  ${R}hopper_hetero_afedpg.h5=afedpg
fig ${R}halfcheetah_straggler_nigt-sync.h5 ${R}halfcheetah_straggler_rennala-nigt.h5 \
  ${R}halfcheetah_straggler_afedpg.h5 --labels nigt-sync rennala-nigt afedpg --logx \
  -o $F/pg_halfcheetah_straggler.png --title "HalfCheetah-v5, H = 1000, n = 10, straggler h_10 = 100, 3 trials"
tab "HalfCheetah straggler" --target $HC ${R}halfcheetah_straggler_nigt-sync.h5=nigt-sync \
  ${R}halfcheetah_straggler_rennala-nigt.h5=rennala-nigt ${R}halfcheetah_straggler_afedpg.h5=afedpg
