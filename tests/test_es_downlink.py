"""The scalar-only downlink of ES, ESPC and ES-fixed: replicas stay bit-identical, bytes are counted."""

import numpy as np
import pytest
from helpers import mpidrl, mpirun, write_config

from mpidrl import registry
from mpidrl.algorithms.es import ReplicaMismatch, decode_returns, encode_returns, theta_hash
from mpidrl.config import load
from mpidrl.envs import make_env, spec_of
from mpidrl.protocols import Context
from mpidrl.store import read_messages, read_run

CONFIG = """
[run]
seed = 3
trials = 2
rounds = 10
record_messages = true
[env]
id = "CartPole-v1"
max_steps = 25
[agents]
n = 5
[algo]
name = "{algo}"
{extra}
check_every = 4
[policy]
hidden = [4]
"""
ALGOS = {"es": "", "espc": "m = 2\nk = 3", "es-fixed": "m = 3"}


def d_of(run) -> int:
    return int(run.metrics["downlink_bytes"][0, 0, 0] // 8)


@pytest.mark.mpi
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_returns_downlink_replays_the_learner_exactly(tmp_path, algo):
    cfg = write_config(tmp_path / "c.toml", CONFIG.format(algo=algo, extra=ALGOS[algo]))
    mpidrl(["run", str(cfg), "--out", str(tmp_path / "params.h5")], timeout=120)
    mpirun(2, ["run", str(cfg), "--set", 'algo.downlink="returns"', "--out", str(tmp_path / "returns.h5")], timeout=120)
    params, returns = read_run(tmp_path / "params.h5"), read_run(tmp_path / "returns.h5")
    for name in ("reward", "return", "steps", "uplink_messages", "uplink_bytes"):
        assert np.array_equal(params.metrics[name], returns.metrics[name], equal_nan=True), name
    for name in params.diagnostics:
        assert np.array_equal(params.diagnostics[name], returns.diagnostics[name], equal_nan=True), name

    # params: theta, 8 d bytes per agent per round (d = 4*4+4 + 4*2+2 = 30 for CartPole with hidden [4])
    assert d_of(params) == 30
    assert np.all(params.metrics["downlink_bytes"] == 8 * 30)
    # returns: 16 bytes per (agent, F) pair received in the previous round, + 8 for the hash every 4th round
    sent = returns.metrics["uplink_messages"].sum(axis=2)  # [T, R]
    previous = np.concatenate([np.zeros((2, 1), int), sent[:, :-1]], axis=1)
    check = 8 * (np.arange(10) % 4 == 0)
    expected = 16 * previous + check[None, :]
    assert np.array_equal(returns.metrics["downlink_bytes"], np.repeat(expected[:, :, None], 5, axis=2))
    assert returns.metrics["uplink_bytes"].max() == 8
    kinds = read_messages(tmp_path / "returns.h5")["kind"]
    assert {b"return", b"returns"} == set(kinds)
    if algo != "es":
        assert 0 < sent.sum() < sent.size * 5  # some agents stayed silent, so the pairs really vary


def small_ctx(downlink: str = "returns", check_every: int = 2) -> Context:
    cfg = load(
        None,
        [
            "agents.n=4",
            'algo.name="espc"',
            "algo.m=2",
            f'algo.downlink="{downlink}"',
            f"algo.check_every={check_every}",
            "env.max_steps=15",
            "policy.hidden=[3]",
        ],
    )
    env = make_env(cfg.env)
    return Context(cfg, 0, spec_of(env))


def play(learner, worker, rounds):
    """Rounds in one process, as the synchronous protocol runs them; returns the payloads."""
    payloads = []
    for r in rounds:
        payload = learner.downlink().copy()
        payloads.append(payload)
        worker.receive([payload])
        res = worker.act(r, worker.agents)
        learner.update(r, [(a, m) for a, m in zip(worker.agents, res.messages) if m is not None])
    return payloads


def test_a_diverged_replica_is_caught_at_the_next_check():
    ctx = small_ctx(check_every=2)
    spec = registry.lookup("espc")
    learner, worker = spec.learner(ctx), spec.worker([ctx], range(4))
    play(learner, worker, range(3))  # hashes compared before rounds 0 and 2: equal
    worker.theta = worker.theta + 1e-15 * np.abs(worker.theta).max()  # one rounding step apart
    with pytest.raises(ReplicaMismatch, match="differs from the learner's before round 4"):
        play(learner, worker, range(3, 5))


def test_replica_state_resumes_exactly():
    ctx = small_ctx(check_every=1)
    spec = registry.lookup("espc")
    learner, worker = spec.learner(ctx), spec.worker([ctx], range(4))
    play(learner, worker, range(4))
    saved_l, saved_w = learner.state_dict(), worker.state_dict()
    tail = play(learner, worker, range(4, 8))

    learner2, worker2 = spec.learner(ctx), spec.worker([ctx], range(4))
    learner2.load_state_dict(saved_l)
    worker2.load_state_dict(saved_w)
    tail2 = play(learner2, worker2, range(4, 8))
    assert all(np.array_equal(a, b) for a, b in zip(tail, tail2))
    assert np.array_equal(learner.theta, learner2.theta) and np.array_equal(worker.theta, worker2.theta)
    worker2.receive([learner2.downlink()])  # the replica catches up with the last update, hash checked
    assert np.array_equal(worker2.theta, learner2.theta)


def test_pair_encoding_round_trips():
    theta = np.linspace(-1, 1, 7)
    payload = encode_returns([0, 3, 9], np.array([1.5, -2.0, 0.25]), theta_hash(theta))
    assert payload.nbytes == 16 * 3 + 8
    agents, returns, check = decode_returns(payload)
    assert agents == [0, 3, 9] and list(returns) == [1.5, -2.0, 0.25]
    assert check.tobytes() == theta_hash(theta).tobytes() != theta_hash(theta + 1e-16).tobytes()
    empty = decode_returns(encode_returns([], np.empty(0), None))
    assert empty[0] == [] and empty[2] is None
