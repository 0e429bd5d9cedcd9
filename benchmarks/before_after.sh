#!/bin/sh
# Side-by-side before/after of the learner and overhead speed-ups: alternate processes running the
# code of commit BEFORE (exported to /tmp/mpidrl-before) and the working tree, REPEATS times.
# Run:  sh benchmarks/before_after.sh BEFORE_COMMIT [REPEATS]   (from the repository root)
set -e
BEFORE=${1:?commit of the code before the change}
REPEATS=${2:-3}
rm -rf /tmp/mpidrl-before && mkdir -p /tmp/mpidrl-before
git archive "$BEFORE" mpidrl | tar -x -C /tmp/mpidrl-before
CELLS="10:1000 100:10000 100:100000 1000:10000 10:1000000"
for rep in $(seq "$REPEATS"); do
  for v in before after; do
    if [ $v = before ]; then P=/tmp/mpidrl-before; else P=; fi
    for anti in "" --antithetic; do
      echo "=== repeat $rep $v learner $anti"
      PYTHONPATH=$P nice -n 10 .venv/bin/python benchmarks/learner.py --repeats 1 --min-time 0.5 $anti \
        --cells $CELLS | grep -v -e "^lscpu" -e "^date" -e "^nproc" -e "^python"
    done
    echo "=== repeat $rep $v overhead"
    PYTHONPATH=$P nice -n 10 .venv/bin/python benchmarks/overhead.py --repeats 1 --env CartPole-v1 | tail -n 2
  done
done
