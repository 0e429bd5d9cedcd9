#!/bin/sh
# Figures of docs/policy_gradient.md from the run files of jobs/pg_cartpole.sh, pg_real.sh, pg_mujoco.sh.
set -e
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
R=${OUT:-results/pg}
F=docs/figures
T=${TARGET:-100}
for s in straggler sqrt equal; do
  $PY analysis/pg_time.py $R/${s}_sync.h5 $R/${s}_rennala.h5 $R/${s}_afedpg.h5 --labels nigt-sync rennala-nigt afedpg \
    --logx --target $T -o $F/pg_cartpole_$s.png --title "CartPole-v1, n = 10, M = 10, $s times (simulated)"
done
for k in 0 0.1 1 10; do
  $PY analysis/pg_time.py $R/kappa${k}_rennala.h5 $R/kappa${k}_afedpg.h5 --labels rennala-nigt afedpg \
    --logx --target $T -o $F/pg_cartpole_kappa$k.png --title "CartPole-v1, h_i = sqrt(i), kappa = $k (simulated)"
done
$PY analysis/pg_kappa.py --target $T -o $F/pg_cartpole_kappa.png \
  0=$R/kappa0_rennala.h5,$R/kappa0_afedpg.h5 0.1=$R/kappa0.1_rennala.h5,$R/kappa0.1_afedpg.h5 \
  1=$R/kappa1_rennala.h5,$R/kappa1_afedpg.h5 10=$R/kappa10_rennala.h5,$R/kappa10_afedpg.h5
$PY analysis/pg_time.py $R/hetero_malenia.h5 $R/hetero_afedpg.h5 $R/hetero_rennala.h5 \
  --labels malenia-nigt afedpg rennala-nigt --target $T -o $F/pg_cartpole_hetero.png \
  --title "CartPole-v1, 2 agents, agent 2 negated obs, h_i = sqrt(i) (simulated)"
if [ -f $R/real_afedpg.h5 ]; then
  $PY analysis/pg_time.py $R/real_nigt-sync.h5 $R/real_rennala-nigt.h5 $R/real_malenia-nigt.h5 $R/real_afedpg.h5 \
    --x wall_time --labels nigt-sync rennala-nigt malenia-nigt afedpg --target 60 -o $F/pg_cartpole_real_straggler.png \
    --title "CartPole-v1, 4 agents on 2 ranks, real mode, straggler delays"
fi
if [ -f $R/hopper_afedpg.h5 ]; then
  $PY analysis/pg_time.py $R/hopper_nigt-sync.h5 $R/hopper_rennala-nigt.h5 $R/hopper_afedpg.h5 \
    --labels nigt-sync rennala-nigt afedpg -o $F/pg_hopper_sqrt.png \
    --title "Hopper-v5 (reduced), n = 5, h_i = kappa_i = sqrt(i) (simulated)"
fi
