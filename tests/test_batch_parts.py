"""``[agents] batch``: a rank runs a block larger than the limit in consecutive parts, with the same results."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import mpirun, write_config

from mpidrl import api
from mpidrl.algorithms.es import ESWorker
from mpidrl.config import ConfigError, from_dict
from mpidrl.protocols.workers import BATCH_BYTES, batch_limit, parts
from mpidrl.store import read_run

COMPARED = ("reward", "return", "steps", "episodes", "uplink_messages", "uplink_bytes", "downlink_bytes")


def test_parts_are_consecutive_nearly_equal_and_within_the_limit():
    agents = list(range(3, 13))  # a rank's block: agents 3..12
    assert parts(agents, 1, 10) == [agents]
    assert parts(agents, 1, 4) == [agents[0:4], agents[4:7], agents[7:10]]
    assert parts(agents, 3, 7) == [agents[i : i + 2] for i in range(0, 10, 2)]  # 2 agents x 3 trials = 6 <= 7
    assert parts(agents, 5, 3) == [[a] for a in agents]  # one agent's 5 copies exceed 3: one agent a part
    assert parts([], 1, 4) == [[]]


def test_the_automatic_limit_holds_about_two_mib_of_parameters():
    cfg = from_dict({"agents": {"n": 10}})
    assert batch_limit(cfg, 130) == BATCH_BYTES // (8 * 130) == 2016  # CartPole's 8-8 MLP
    assert batch_limit(cfg, 10**7) == 1
    assert batch_limit(from_dict({"agents": {"n": 10, "batch": 5}}), 130) == 5
    with pytest.raises(ConfigError, match="agents.batch"):
        from_dict({"agents": {"n": 10, "batch": -1}})


@pytest.mark.parametrize(
    "algo",
    [
        {"name": "es", "sigma": 0.1, "antithetic": True, "fitness_shaping": "centered_rank"},
        {"name": "espc", "sigma": 0.1, "m": 4, "k": 3},
        {"name": "es-fixed", "sigma": 0.1, "m": 4},
    ],
    ids=lambda a: a["name"],
)
def test_parts_give_the_same_results_as_one_batch(tmp_path, monkeypatch, algo):
    sizes = []
    act = ESWorker.act

    def counted(self, round, agents):
        sizes.append(len(agents))
        return act(self, round, agents)

    monkeypatch.setattr(ESWorker, "act", counted)
    config = {
        "run": {"seed": 5, "rounds": 4, "trials": 3, "trial_batch": 3, "checkpoint_every": 0},
        "env": {"id": "CartPole-v1"},
        "agents": {"n": 10},
        "algo": algo,
        "policy": {"hidden": [4]},
    }
    whole = api.run(config, out=tmp_path / "whole.h5").metrics
    assert sizes == [10] * 4
    sizes.clear()
    # 7 sub-environments a batch with 3 trials together: parts of 2 agents, the block of 10 in 5
    split = api.run({**config, "agents": {"n": 10, "batch": 7}}, out=tmp_path / "parts.h5").metrics
    assert sizes == [2] * 5 * 4
    assert whole["steps"].sum() > 0
    for name in COMPARED:
        np.testing.assert_array_equal(split[name], whole[name], err_msg=name)


@pytest.mark.mpi
def test_parts_on_two_ranks_match_one_batch_on_one(tmp_path):
    text = """
[run]
seed = 2
rounds = 3
checkpoint_every = 0
[env]
id = "CartPole-v1"
[agents]
n = 9
BATCH
[algo]
name = "espc"
sigma = 0.1
m = 3
[policy]
hidden = [4]
"""
    one = write_config(tmp_path / "one.toml", text.replace("BATCH", ""))
    split = write_config(tmp_path / "split.toml", text.replace("BATCH", "batch = 2"))
    mpirun(1, ["run", str(one), "--out", str(tmp_path / "one.h5")], timeout=120)
    mpirun(2, ["run", str(split), "--out", str(tmp_path / "split.h5")], timeout=120)
    a, b = read_run(tmp_path / "one.h5").metrics, read_run(tmp_path / "split.h5").metrics
    assert (b["rank"][0] == [0] * 5 + [1] * 4).all()
    for name in COMPARED:
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)


def test_a_batch_limit_for_agents_that_cannot_run_in_parts_is_refused(tmp_path):
    config = {"run": {"rounds": 1}, "env": {"id": "mpidrl/SimpleGrid-v0"}, "agents": {"n": 4, "batch": 2}}
    with pytest.raises(api.RunError, match="agents.batch: dql's agents act on their whole block"):
        api.run({**config, "algo": {"name": "dql"}}, out=tmp_path / "dql.h5")
    assert not (tmp_path / "dql.h5").exists()
