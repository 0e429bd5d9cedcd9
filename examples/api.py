"""mpidrl from Python: one config run in this process, then on two ranks under mpiexec, compared.

    .venv/bin/python examples/api.py [OUT_DIR] [--rounds N]

``mpidrl.run`` runs in the calling process (here one process: the learner and every agent);
``mpidrl.launch`` starts ``mpiexec -n 2 python -m mpidrl run ...``, shows its progress lines as they
come and returns the run file when it ends. Both return the run file read (``mpidrl.store.Run``), and
both refuse bad input with ``mpidrl.RunError`` (one line, the exit status of ``mpidrl run``). The two
runs have the same seed, so their rewards and traffic are the same bits: results do not depend on the
number of ranks.
"""

import argparse
from pathlib import Path

import numpy as np

import mpidrl

ROOT = Path(__file__).resolve().parents[1]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", nargs="?", default="results/api", help="directory of the two run files")
parser.add_argument("--rounds", type=int, default=20)
args = parser.parse_args()
out = Path(args.out)

config = ROOT / "configs" / "default.toml"  # ES on CartPole-v1, 50 agents; a dict of sections works too
changes = {"run.trials": 1, "run.rounds": args.rounds, "run.eval_every": args.rounds}

one = mpidrl.run(config, out=out / "one_rank.h5", set=changes, overwrite=True)
two = mpidrl.launch(config, np=2, out=out / "two_ranks.h5", set=changes, overwrite=True)

for run in (one, two):
    reward = np.nanmean(run.metrics["reward"], axis=(0, 2))  # mean over trials and agents, per round
    print(
        f"{run.path}: {run.status} on {run.attrs['world_size']} rank(s), mean reward {reward[0]:.1f} in round 1, "
        f"{reward[-1]:.1f} in round {len(reward)}; learner's policy returns {run.metrics['eval_return'][0, -1]:.1f}"
    )
same = all(np.array_equal(one.metrics[k], two.metrics[k], equal_nan=True) for k in ("reward", "uplink_bytes"))
print(f"1 rank and 2 ranks give the same rewards and bytes: {same}")

try:
    mpidrl.run(config, set={"agents.n": 0})
except mpidrl.RunError as exc:
    print(f"refused: {exc} (exit status {exc.status})")

print(f"reloaded: {mpidrl.load(out / 'one_rank.h5').metrics['reward'].shape} (trials, rounds, agents)")
