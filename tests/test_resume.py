"""Resume is exact for batched trials and the scalar downlink too: a run stopped by a signal and resumed
(at another world size) ends bit-identical to an uninterrupted run with the same seed."""

import io
import signal

import h5py
import numpy as np
import pytest
from helpers import mpirun

from mpidrl import validate
from mpidrl.comm import Runtime
from mpidrl.config import load
from mpidrl.log import Progress
from mpidrl.run import Experiment, Interrupted, StopRequest

pytestmark = pytest.mark.mpi

COMPARED = [
    "reward",
    "return",
    "episodes",
    "steps",
    "uplink_messages",
    "uplink_bytes",
    "downlink_bytes",
    "control_messages",
    "control_bytes",
    "sim_time",
    "eval_return",
]

CASES = {
    "dql-batch": ['env.id="mpidrl/WindyGrid-v0"', 'algo.name="dql"', "run.rounds=30", "run.trial_batch=2"],
    "ebcdql-batch": [
        'env.id="mpidrl/SimpleGrid-v0"',
        "env.gamma=0.9",
        'algo.name="ebcdql"',
        "run.rounds=30",
        "run.trial_batch=2",
        "run.record_messages=true",
    ],
    "davia-batch": ['env.id="mpidrl/FrozenLake5x5-v0"', 'algo.name="davia"', "run.rounds=30", "run.trial_batch=2"],
    "es-batch": [
        'env.id="mpidrl/SimpleGrid-v0"',
        "run.rounds=12",
        "algo.sigma=0.1",
        "policy.hidden=[4]",
        "run.trial_batch=2",
        "run.eval_every=3",
        "run.eval_episodes=1",
    ],
    "espc-returns": [
        'algo.name="espc"',
        "algo.m=2",
        "algo.k=3",
        'algo.downlink="returns"',
        "run.rounds=12",
        "policy.hidden=[4]",
    ],
    # the simulated clocks, kappa and a network of links, continue where they were
    "lapg-simulated": ['algo.name="lapg"', "algo.H=30", "run.rounds=12", "policy.hidden=[6]", 'time.mode="simulated"'],
    "es-lte": [
        "run.rounds=12",
        "policy.hidden=[4]",
        'time.mode="simulated"',
        'time.network="lte"',
        "run.record_messages=true",
    ],
    "rennala-random-links": [
        'algo.name="rennala-nigt"',
        "algo.M=4",
        "algo.M_init=4",
        "algo.H=30",
        "run.rounds=12",
        "policy.hidden=[6]",
        'time.mode="simulated"',
        'time.network="wifi"',
        'time.uplink_latency={dist = "exponential", mean = 0.01}',
        "run.record_messages=true",
    ],
    "afedpg-lte": [
        'algo.name="afedpg"',
        "algo.M=4",
        "algo.M_init=4",
        "algo.H=30",
        "run.rounds=12",
        "policy.hidden=[6]",
        'time.mode="simulated"',
        'time.network="lte"',
    ],
}
"""Variants beyond each algorithm's example (tests/test_contract.py resumes every registered algorithm)."""


class StopAt(Progress):
    """A silent progress report that asks the experiment to stop after round ``stop_after`` of trial 1."""

    def __init__(self, cfg, stop, stop_after):
        super().__init__(0, cfg.run.trials, cfg.run.rounds, stream=io.StringIO(), bar=False)
        self.stop, self.stop_after = stop, stop_after

    def update(self, trial, round, *args, **kwargs):
        if (trial, round) == (1, self.stop_after):
            self.stop.signum = signal.SIGTERM


def metrics(path):
    with h5py.File(path, "r") as f:
        return {k: f["metrics"][k][()] for k in COMPARED if k in f["metrics"]}, dict(f.attrs)


@pytest.mark.parametrize("name", list(CASES))
def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path, name):
    overrides = ["agents.n=3", "run.trials=2", "run.checkpoint_every=4", "run.seed=7", *CASES[name]]  # later wins
    cfg = load(None, overrides)
    env_spec = validate.check(cfg).env_spec
    ref, out = tmp_path / "ref.h5", tmp_path / "stopped.h5"
    Experiment(cfg, env_spec, ref, Runtime(), progress=StopAt(cfg, StopRequest(), -1)).run()
    stop = StopRequest()
    with pytest.raises(Interrupted):
        Experiment(cfg, env_spec, out, Runtime(), progress=StopAt(cfg, stop, 5), stop=stop).run()
    _, attrs = metrics(out)
    # stopped in trial 2 (index 1): after trial 1 alone, or inside the batch of trials 1 and 2
    assert attrs["status"] == "interrupted" and attrs["trials_done"] == (0 if cfg.run.trial_batch > 1 else 1)
    mpirun(2, ["run", "--resume", str(out)], timeout=180)
    got, attrs = metrics(out)
    want, _ = metrics(ref)
    assert attrs["status"] == "complete"
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
