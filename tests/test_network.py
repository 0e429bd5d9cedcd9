"""The simulated network: message times from the bytes sent, collective costs, every protocol on one clock."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import mpirun, write_config

from mpidrl.config import ConfigError, load, network_profiles
from mpidrl.network import Links, SyncClock, ring_allreduce
from mpidrl.store import read_messages, read_run


def links(**keys) -> Links:
    cfg = load(None, ['time.mode="simulated"', 'time.network="links"', *(f"time.{k}={v}" for k, v in keys.items())])
    return Links(cfg.time, n=3)


def test_doubling_an_agents_bandwidth_halves_its_transfer_time():
    slow = links(uplink_latency=0, uplink_bandwidth=1000, downlink_latency=0, downlink_bandwidth=500)
    fast = links(uplink_latency=0, uplink_bandwidth=2000, downlink_latency=0, downlink_bandwidth=1000)
    assert slow.up(0, 1, 8000)[0] == 8.0 and fast.up(0, 1, 8000)[0] == 4.0
    assert slow.down(0, 2, 8000)[0] == 16.0 and fast.down(0, 2, 8000)[0] == 8.0
    with_latency = links(uplink_latency=0.5, uplink_bandwidth="1000 * i", downlink_latency=0, downlink_bandwidth=1)
    np.testing.assert_array_equal([with_latency.up(0, a, 3000)[0] for a in range(3)], [3.5, 2.0, 1.5])


def test_random_links_draw_the_same_values_for_a_messages_coordinates():
    table = links(
        uplink_latency='{dist = "exponential", mean = 0.1}',
        uplink_bandwidth=1e6,
        downlink_latency=0.1,
        downlink_bandwidth=1e6,
    )
    first = table.up(3, 1, np.array([24.0, 24.0, 24.0]))
    assert np.array_equal(table.up(3, 1, np.array([24.0, 24.0])), first[:2])  # a prefix, whatever the count
    assert not np.array_equal(table.up(4, 1, np.array([24.0, 24.0, 24.0])), first)  # another round: other draws


def test_ring_allreduce_cost():
    assert ring_allreduce(1, 1e6, 0.1, 1e3) == 0.0  # nobody to talk to
    assert ring_allreduce(4, 4000, 0.01, 1000) == pytest.approx(2 * 3 * 0.01 + 2 * 3 / 4 * 4000 / 1000)
    slow = links(uplink_latency="0.01 * i", uplink_bandwidth=1000, downlink_latency=0.02, downlink_bandwidth="500 * i")
    assert slow.alpha_beta() == pytest.approx((0.03 + 0.02, 500))  # the slowest link bounds every ring step


def test_a_synchronous_round_lasts_the_slowest_download_compute_upload():
    cfg = load(
        None,
        [
            'time.mode="simulated"',
            'time.network="links"',
            'time.h="i"',
            "time.uplink_latency=0.1",
            "time.uplink_bandwidth=100",
            "time.downlink_latency=0.2",
            "time.downlink_bandwidth=1000",
        ],
    )
    clock = SyncClock(cfg.time, n=3)
    times = clock.advance(0, np.array([1, 1, 2]), np.array([100, 0, 50]), 500)
    # agent 3: 0.2 + 0.5 down, 3 * 2 compute, 0.1 + 0.5 up = 7.3; agent 1: 0.7 + 1 + 1.1; agent 2 is silent
    assert clock.now == pytest.approx(7.3)
    np.testing.assert_allclose(times["down_arrived"], [0.7, 0.7, 0.7])
    np.testing.assert_allclose(times["up_sent"], [1.7, np.nan, 6.7])
    np.testing.assert_allclose(times["up_arrived"], [2.8, np.nan, 7.3])
    clock.advance(1, np.array([1, 1, 1]), np.array([0, 0, 0]), 0)
    assert clock.now == pytest.approx(7.3 + 0.2 + 3)  # nobody sends: the slowest download and computation


def test_profiles_fill_the_link_keys_and_keys_given_win():
    assert {"infiniband", "ethernet", "wifi", "lte", "lte-stragglers"} <= set(network_profiles())
    cfg = load(None, ['time.mode="simulated"', 'time.network="lte"', "time.uplink_latency=0.5"])
    assert cfg.time.uplink_bandwidth == 0.75e6 and cfg.time.uplink_latency == 0.5
    with pytest.raises(ConfigError, match='time.uplink_latency: needs time.network = "links" or a profile'):
        load(None, ["time.uplink_latency=0.5"])
    with pytest.raises(ConfigError, match="time.network: expected"):
        load(None, ['time.mode="simulated"', 'time.network="carrier-pigeon"'])
    with pytest.raises(ConfigError, match="time.network: times messages on the simulated clock"):
        load(None, ['time.network="lte"'])
    with pytest.raises(ConfigError, match="time.uplink_bandwidth: bandwidths must be > 0"):
        from mpidrl import validate

        validate.check(load(None, ['time.mode="simulated"', 'time.network="lte"', "time.uplink_bandwidth=0"]))


CONFIG = """
[run]
seed = 3
trials = 2
rounds = 4
record_messages = true
[agents]
n = 4
[algo]
name = "{algo}"
{keys}
[policy]
hidden = [6]
[time]
mode = "simulated"
network = "{network}"
h = "0.01 * i"
"""
PG = "M = 4\nM_init = 4\nH = 30"


@pytest.mark.mpi
@pytest.mark.parametrize(
    "algo, keys, network",
    [
        ("es", "sigma = 0.1", "lte"),
        ("espc", "m = 2\nk = 3", "lte-stragglers"),
        ("rennala-nigt", PG, "wifi"),
        ("nigt-sync", PG, "ethernet"),
        ("afedpg", PG, "lte"),
    ],
)
def test_every_protocol_times_its_messages_and_does_not_depend_on_the_ranks(tmp_path, algo, keys, network):
    cfg = write_config(tmp_path / "c.toml", CONFIG.format(algo=algo, keys=keys, network=network))
    for ranks in (1, 3):
        mpirun(ranks, ["run", str(cfg), "--out", str(tmp_path / f"{ranks}.h5")], timeout=120)
    one, three = read_run(tmp_path / "1.h5"), read_run(tmp_path / "3.h5")
    for name in ("reward", "uplink_bytes", "downlink_bytes", "control_bytes", "sim_time"):
        np.testing.assert_array_equal(one.metrics[name], three.metrics[name], err_msg=name)
    log = read_messages(tmp_path / "3.h5")
    for field in log.dtype.names:
        np.testing.assert_array_equal(log[field], read_messages(tmp_path / "1.h5")[field], err_msg=field)
    sim = one.metrics["sim_time"]
    assert np.all(np.diff(sim, axis=1) > 0)
    assert np.isfinite(log["sent"]).all() and np.all(log["arrived"] >= log["sent"])
    for trial in (0, 1):
        rounds = log[log["trial"] == trial]
        # nothing the learner waits for arrives after its round ends (AFedPG's last replies and its STOP
        # travel while the next round starts); the first round starts at 0
        waited = rounds if algo != "afedpg" else rounds[rounds["direction"] == 0]
        assert np.all(waited["arrived"] <= sim[trial][waited["round"]] + 1e-9)
        assert rounds["sent"].min() >= 0.0
