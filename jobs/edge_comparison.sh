#!/bin/sh
# Reward against simulated time for every applicable algorithm on a fast interconnect and on LTE links
# (docs/networks.md, "Which algorithm is fastest depends on the network"). Simulated clock, one run file per
# (environment, profile, algorithm) under $OUT/ENV/PROFILE/ALGO.h5, trials one after another in it.
#   jobs/edge_comparison.sh [grid] [cartpole] [invpend]        (default: all three)
# Presets: configs/report/fig3_4_simplegrid_* and configs/edge/simplegrid_pg.toml (Simple Grid),
# configs/report/s4_7/cartpole_* and configs/pg/cartpole_equal.toml (CartPole-v1), configs/edge/invpend_*.toml
# (InvertedPendulum-v5). Compute model: h = (steps an episode or gradient may take) x (seconds per step of the
# environment and the family's policy, measured by analysis/step_cost.py on one core), rounded to one
# significant figure (docs/networks.md, "Compute model").
# ES-family runs with 50 agents use $NP ranks (default 2); the others one process. Simulated results do not
# depend on the number of ranks. SKIP_DONE=1 leaves out run files that are complete.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-results/edge}
NP=${NP:-2}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

run() { # run ENV PROFILE NAME RANKS H CONFIG ARGS...
    env=$1 profile=$2 name=$3 ranks=$4 h=$5 cfg=$6
    shift 6
    out=$OUT/$env/$profile/$name.h5
    if [ -n "$SKIP_DONE" ] && [ "$("$BIN/mpidrl" status "$out" 2>/dev/null | awk '{print $1}')" = complete ]; then
        echo "$out: complete, skipped"
        return
    fi
    mkdir -p "$OUT/$env/$profile"
    launch="$BIN/mpidrl"
    [ "$ranks" -gt 1 ] && launch="$BIN/mpiexec -n $ranks $BIN/mpidrl"
    start=$(date +%s)
    # shellcheck disable=SC2086  # $launch is several words
    nice -n 10 $launch run "$cfg" "$@" --set time.mode='"simulated"' --set time.network="\"$profile\"" \
        --set time.h="$h" --set time.kappa=0 --set run.trial_batch=1 --set run.record_messages=false \
        --out "$out" --overwrite >"$OUT/$env/$profile/$name.log" 2>&1
    echo "$out: $(($(date +%s) - start)) s"
}

AF="--set algo.alpha=0.015625" # AFedPG's step, tuned in jobs/pg_tune.sh (docs/policy_gradient.md)

policy_gradients() { # policy_gradients ENV PROFILE H CONFIG LAPG_ALPHA ARGS...: the five methods, one process
    env=$1 profile=$2 h=$3 cfg=$4 lapg=$5
    shift 5
    for algo in nigt-sync rennala-nigt malenia-nigt; do
        run "$env" "$profile" $algo 1 "$h" "$cfg" "$@" --set algo.name="\"$algo\""
    done
    # shellcheck disable=SC2086  # $AF is two words
    run "$env" "$profile" afedpg 1 "$h" "$cfg" "$@" --set algo.name='"afedpg"' $AF
    run "$env" "$profile" lapg 1 "$h" "$cfg" "$@" --set algo.name='"lapg"' --set algo.alpha="$lapg"
}

grid() { # n = 5 agents: "lte-stragglers" has no weak agent (i = 10, 20, ...), so it is "lte" here
    # h: 100 steps x 3.4 us (Q table), x 1.3 us (ES's 4-4 MLP), x 27 us (the 32-32 stochastic MLP)
    for profile in infiniband lte; do
        for algo in dql ebcdql davia; do
            run grid "$profile" $algo 1 0.0003 configs/report/fig3_4_simplegrid_$algo.toml --set run.trials=5
        done
        es=configs/report/fig3_4_simplegrid_es.toml
        run grid "$profile" es 1 0.0001 $es --set run.trials=5
        run grid "$profile" espc 1 0.0001 $es --set run.trials=5 --set algo.name='"espc"' --set algo.m=2 --set algo.k=5
        run grid "$profile" es-fixed 1 0.0001 $es --set run.trials=5 --set algo.name='"es-fixed"' --set algo.m=2
        policy_gradients grid "$profile" 0.003 configs/edge/simplegrid_pg.toml 0.01
    done
}

cartpole() { # h: ES episodes up to 500 steps x 22 us (8-8 MLP), policy gradients H = 200 x 51 us (32-32)
    for profile in infiniband lte lte-stragglers; do
        policy_gradients cartpole "$profile" 0.01 configs/pg/cartpole_equal.toml 0.0001 --set run.trials=5
        s47=configs/report/s4_7
        run cartpole "$profile" es "$NP" 0.01 $s47/cartpole_es_n50.toml --set run.trials=5
        run cartpole "$profile" espc "$NP" 0.01 $s47/cartpole_espc_n50_m25_k5.toml --set run.trials=5
        run cartpole "$profile" es-fixed "$NP" 0.01 $s47/cartpole_es_fixed_n50_m25.toml --set run.trials=5
    done
}

invpend() { # h: episodes and gradients up to 1000 steps x 85 us (ES) or 81 us (policy gradients)
    for profile in infiniband lte lte-stragglers; do
        policy_gradients invpend "$profile" 0.08 configs/edge/invpend_pg.toml 0.0001
        es=configs/edge/invpend_es.toml
        run invpend "$profile" es "$NP" 0.08 $es
        run invpend "$profile" espc "$NP" 0.08 $es --set algo.name='"espc"' --set algo.m=25 --set algo.k=5
        run invpend "$profile" es-fixed "$NP" 0.08 $es --set algo.name='"es-fixed"' --set algo.m=25
    done
}

[ $# -gt 0 ] || set -- grid cartpole invpend
for part in "$@"; do
    "$part"
done
