"""A long run with many agents keeps memory flat; the message log goes to disk, chunked and compressed."""

import sys
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from soak import soak  # noqa: E402


def test_memory_is_flat_over_many_rounds(tmp_path):
    out = tmp_path / "soak.h5"
    samples = soak(agents=20, rounds=1000, every=200, record_messages=False, out=out, max_steps=1)
    growth = samples[-1][1] - samples[0][1]
    assert growth < 1, samples  # MiB over 800 rounds: nothing is kept in memory per round
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete" and "messages" not in f


def test_message_log_is_on_disk_chunked_and_compressed(tmp_path):
    out = tmp_path / "soak.h5"
    soak(agents=20, rounds=100, every=50, record_messages=True, out=out, max_steps=1)
    with h5py.File(out, "r") as f:
        log = f["messages"]  # 40 rows a round: 20 uplink returns and 20 downlink broadcasts
        assert log.shape == (100 * 40,) and log.compression == "gzip" and log.chunks == (4096,)
        assert log.id.get_storage_size() < log.size * log.dtype.itemsize / 4
