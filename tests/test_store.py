"""The HDF5 run file: schema, growth by round, fill values, status, foreign files refused."""

import json

import h5py
import numpy as np
import pytest

from mpidrl.store import MESSAGE_DTYPE, SCHEMA, RunFileError, RunWriter, read_messages, read_run

CONFIG = {"run": {"trials": 2, "rounds": 20}, "algo": {"name": "es"}, "env": {"id": "CartPole-v1"}, "agents": {"n": 3}}
ATTRS = {"config": json.dumps(CONFIG), "seed": 4}


def test_rounds_grow_and_unwritten_cells_are_nan(tmp_path):
    path = tmp_path / "r.h5"
    w = RunWriter(path, ATTRS, trials=2, n=3, diagnostics=("p_comm",), record_messages=True)
    w.write_round(
        0, 0, {"reward": [1.0, 2.0, 3.0], "uplink_bytes": [8, 0, 8], "wall_time": 0.5, "p_comm": [0.1, 0.2, 0.3]}
    )
    w.write_round(0, 1, {"reward": [4.0, 5.0, 6.0], "uplink_bytes": [8, 8, 8], "wall_time": 0.9})
    with h5py.File(path, "r", locking=False) as f:  # readable while the writer is open (it holds no lock)
        assert f.attrs["status"] == "running" and f.attrs["rounds_done"] == 2
        assert f["metrics/reward"].shape == (2, 2, 3)
    w.end_trial(0)
    w.close("complete")
    run = read_run(path)
    assert run.attrs["schema"] == SCHEMA and run.attrs["status"] == "complete" and run.attrs["seed"] == 4
    np.testing.assert_array_equal(run.metrics["reward"][0], [[1, 2, 3], [4, 5, 6]])
    assert np.isnan(run.metrics["reward"][1]).all()  # trial 1 never ran
    assert run.metrics["uplink_bytes"].dtype == np.int64 and run.metrics["uplink_messages"].dtype == np.int32
    assert run.metrics["wall_time"].shape == (2, 2) and np.isnan(run.metrics["eval_return"]).all()
    np.testing.assert_array_equal(run.diagnostics["p_comm"][0, 0], [0.1, 0.2, 0.3])
    assert np.isnan(run.diagnostics["p_comm"][0, 1]).all()


def test_message_log_is_chunked_and_compressed(tmp_path):
    path = tmp_path / "m.h5"
    w = RunWriter(path, ATTRS, trials=1, n=2, record_messages=True)
    rows = np.zeros(3, MESSAGE_DTYPE)
    rows["agent"], rows["kind"], rows["nbytes"] = [0, 1, 1], b"return", [8, 8, 1040]
    rows["direction"] = [0, 0, 1]
    w.log_messages(rows)
    w.log_messages(rows)
    w.close("complete")
    with h5py.File(path, "r") as f:
        assert f["messages"].compression == "gzip" and f["messages"].chunks is not None
    log = read_messages(path)
    assert log.shape == (6,) and list(log["nbytes"]) == [8, 8, 1040] * 2


def test_no_message_log_unless_asked(tmp_path):
    path = tmp_path / "n.h5"
    RunWriter(path, ATTRS, trials=1, n=2, diagnostics=("p_comm",)).close("complete")
    with h5py.File(path, "r") as f:
        assert "messages" not in f and "diagnostics" not in f


def test_foreign_and_missing_files_are_refused(tmp_path):
    with pytest.raises(RunFileError, match="no such file"):
        read_run(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(RunFileError, match="not an mpidrl run file"):
        read_run(other)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(RunFileError, match="not a readable HDF5 file"):
        read_run(junk)


def test_a_checkpoint_interrupted_while_written_leaves_the_previous_one(tmp_path):
    from mpidrl.store import Checkpoint, read_checkpoint

    class Breaks:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("killed while writing")

    path = tmp_path / "c.h5"
    w = RunWriter(path, ATTRS, trials=1, n=2)
    first = Checkpoint(0, 7, 1.5, np.nan, {"theta": np.arange(3.0), "optim/m": np.ones(3)}, {"h": np.zeros((2, 4))})
    w.write_checkpoint(first)
    broken = Checkpoint(0, 14, 3.0, np.nan, {"theta": np.full(3, 9.0), "optim/m": Breaks()}, {})
    with pytest.raises(RuntimeError, match="killed while writing"):
        w.write_checkpoint(broken)
    w.close("failed")
    got = read_checkpoint(path)
    assert (got.trial, got.round, got.wall_time) == (0, 7, 1.5)
    np.testing.assert_array_equal(got.learner["theta"], np.arange(3.0))
    np.testing.assert_array_equal(got.learner["optim/m"], np.ones(3))
    np.testing.assert_array_equal(got.workers["h"], np.zeros((2, 4)))
