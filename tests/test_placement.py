"""Dynamic placement: a rank that finishes its block takes over agents a slow rank has not started,
and nothing in the results changes but /metrics/rank."""

import os

import numpy as np
import pytest
from helpers import ROOT, mpirun, write_config

from mpidrl.store import read_run

pytestmark = pytest.mark.mpi

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}

CONFIG = """
[run]
seed = 3
rounds = 4
checkpoint_every = 0
[env]
id = "slow_env:SlowOnRank-v0"
kwargs = {slow_rank = 1, delay = 0.002}
[agents]
n = 8
placement = "PLACEMENT"
[algo]
name = "ALGO"
sigma = 0.1
MORE
[policy]
hidden = [4]
"""


def run(tmp_path, placement: str, algo: str = "es", nprocs: int = 2):
    cfg = write_config(
        tmp_path / f"{algo.replace(':', '_')}_{placement}.toml",
        CONFIG.replace("PLACEMENT", placement)
        .replace("ALGO", algo)
        .replace("MORE", "m = 4" if "espc" in algo or "fixed" in algo else ""),
    )
    out = tmp_path / f"{algo.replace(':', '_')}_{placement}_{nprocs}.h5"
    mpirun(nprocs, ["run", str(cfg), "--out", str(out)], timeout=120, env=ENV)
    return read_run(out).metrics


@pytest.mark.parametrize("algo", ["es", "es-fixed"])
def test_fast_rank_takes_over_the_slow_ranks_agents_with_identical_results(tmp_path, algo):
    blocks, dynamic = run(tmp_path, "blocks", algo), run(tmp_path, "dynamic", algo)
    # blocks: agents 0-3 on rank 0, 4-7 on rank 1, every round
    assert (blocks["rank"][0] == [0, 0, 0, 0, 1, 1, 1, 1]).all()
    # dynamic: rank 1 sleeps 2 ms a step, so rank 0 runs its own block and most of rank 1's
    ranks = dynamic["rank"][0]
    assert (ranks[:, :4] == 0).all(), ranks
    assert (ranks == 0).sum() > ranks.size // 2, ranks
    for name in ("reward", "return", "steps", "episodes", "uplink_messages", "uplink_bytes", "downlink_bytes"):
        np.testing.assert_array_equal(dynamic[name], blocks[name], err_msg=name)


def test_auto_is_blocks_for_batched_agents_and_dynamic_for_agents_acting_one_at_a_time(tmp_path):
    """ES's agents act as one batch (a chunk would be a smaller batch): blocks; so do ESPC's, which keep
    state. The same ES acting one agent at a time (per_agent_es.py): dynamic, with the same numbers."""
    es = run(tmp_path, "auto")
    assert (es["rank"][0] == [0, 0, 0, 0, 1, 1, 1, 1]).all()
    assert (run(tmp_path, "auto", "espc")["rank"][0] == [0, 0, 0, 0, 1, 1, 1, 1]).all()
    one = run(tmp_path, "auto", "per_agent_es:per-agent-es")
    assert (one["rank"][0] == 0).sum() > 16
    for name in ("reward", "return", "steps", "uplink_messages", "uplink_bytes"):
        np.testing.assert_array_equal(one[name], es[name], err_msg=name)


def test_one_rank_runs_every_agent_itself(tmp_path):
    assert (run(tmp_path, "dynamic", nprocs=1)["rank"] == 0).all()


def test_more_ranks_than_agents(tmp_path):
    cfg = write_config(
        tmp_path / "one.toml",
        CONFIG.replace("n = 8", "n = 1").replace("PLACEMENT", "dynamic").replace("ALGO", "es").replace("MORE", ""),
    )
    out = tmp_path / "one.h5"
    mpirun(3, ["run", str(cfg), "--out", str(out)], timeout=120, env=ENV)
    metrics = read_run(out).metrics
    # ranks 1 and 2 have empty blocks and may claim agent 0 before rank 0 does
    assert np.isin(metrics["rank"], [0, 1, 2]).all() and (metrics["uplink_messages"] == 1).all()
