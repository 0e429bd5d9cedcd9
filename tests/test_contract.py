"""The contract every registered algorithm keeps, the built-ins and the installed example's alike.

An algorithm gets these tests by being registered: each runs on its spec's ``example`` config.

- its metrics are the same bits at 1 and 2 ranks (and the example's at 3);
- a run stopped by a signal and resumed at another world size equals an uninterrupted one;
- the bytes counted are the payloads' ``nbytes``, and the message log adds up to the metrics;
- its bad parameters are refused with one line;
- its learner and worker state round-trips through a checkpoint.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import signal
import sys
import typing

import h5py
import numpy as np
import pytest
from golden import IGNORED_METRICS, numbers
from helpers import MPIEXEC, ROOT, _run, mpirun

from mpidrl import registry, validate
from mpidrl.comm import Runtime
from mpidrl.config import ConfigError, from_dict
from mpidrl.log import Progress
from mpidrl.protocols import BlockWorker, Context, SyncRounds
from mpidrl.records import DOWNLINK, UPLINK
from mpidrl.run import Experiment, Interrupted, StopRequest
from mpidrl.sweep import toml_value

NAMES = registry.names()
EXAMPLE = "quantised-es"
"""the algorithm of examples/custom_algorithm (make test installs it)"""
RUN = {"seed": 3, "trials": 2, "rounds": 6, "record_messages": True, "eval_every": 2, "eval_episodes": 1}


def example_config(name: str, **run) -> dict:
    """The algorithm's example config as plain data, with the contract's run settings."""
    spec = registry.lookup(name)
    data = json.loads(json.dumps(spec.example))
    data.setdefault("algo", {})["name"] = name
    data["run"] = {**RUN, **data.get("run", {}), **run}
    return data


def write_toml(path, data: dict):
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_example_algorithm_is_installed_and_registered():
    assert EXAMPLE in NAMES, "make test installs examples/custom_algorithm (pip install -e examples/custom_algorithm)"
    assert NAMES[: len(registry.BUILTINS)] == list(registry.BUILTINS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every algorithm's example, run at 1 and 2 ranks (one mpiexec for all), and the example's at 3."""
    folder = tmp_path_factory.mktemp("contract")
    for name in NAMES:
        write_toml(folder / f"{name}.toml", example_config(name))
    for nprocs, names in ((1, NAMES), (2, NAMES), (3, [EXAMPLE])):
        cmd = [MPIEXEC, "-n", str(nprocs), sys.executable, str(ROOT / "tests" / "run_cases.py"), str(folder), *names]
        _run(cmd, timeout=600, check=True, env=None)
    return folder


@pytest.mark.mpi
@pytest.mark.parametrize("name", NAMES)
def test_metrics_do_not_depend_on_the_ranks(runs, name):
    ref = numbers(runs / f"{name}-1.h5")
    assert str(ref["status"]) == "complete"
    for nprocs in (2, 3) if name == EXAMPLE else (2,):
        got = numbers(runs / f"{name}-{nprocs}.h5")
        assert sorted(got) == sorted(ref)
        for key, value in ref.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"{name}: {key} differs at -n {nprocs}")


@pytest.mark.mpi
@pytest.mark.parametrize("name", NAMES)
def test_message_log_adds_up_to_the_metrics(runs, name):
    """Per (trial, round, agent): uplink and downlink payload and control traffic in /messages are the metrics."""
    with h5py.File(runs / f"{name}-2.h5") as f:
        m = {k: f["metrics"][k][()] for k in f["metrics"]}
        log = f["messages"][()]
    control = log["kind"] == b"control"
    for direction, metric in ((UPLINK, "uplink"), (DOWNLINK, "downlink")):
        rows = log[(log["direction"] == direction) & ~control]
        total = np.zeros_like(m[f"{metric}_bytes"])
        np.add.at(total, (rows["trial"], rows["round"], rows["agent"]), rows["nbytes"])
        np.testing.assert_array_equal(total, m[f"{metric}_bytes"], err_msg=f"{name}: {metric} bytes")
    count = np.zeros_like(m["uplink_messages"])
    rows = log[(log["direction"] == UPLINK) & ~control]
    np.add.at(count, (rows["trial"], rows["round"], rows["agent"]), 1)
    np.testing.assert_array_equal(count, m["uplink_messages"], err_msg=f"{name}: uplink messages")
    total = np.zeros_like(m["control_bytes"])
    np.add.at(total, (log["trial"][control], log["round"][control], log["agent"][control]), log["nbytes"][control])
    np.testing.assert_array_equal(total, m["control_bytes"], err_msg=f"{name}: control bytes")


def context(name: str) -> Context:
    data = example_config(name)
    checked = validate.check(from_dict(data))
    return Context(checked.cfg, 0, checked.env_spec)


@pytest.mark.parametrize("name", [n for n in NAMES if registry.lookup(n).protocol is SyncRounds])
def test_uplink_bytes_are_the_payloads_nbytes(name):
    """What a synchronous worker returns is what is counted: nbytes of each message, in the spec's dtype."""
    spec, ctx = registry.lookup(name), context(name)
    sent: dict[int, int] = {}

    def count(agent, message):
        if message is not None:
            assert message.dtype == spec.wire.uplink_dtype, f"{name}: message dtype"
            sent[agent] = sent.get(agent, 0) + message.nbytes

    if issubclass(spec.worker, BlockWorker):

        class Recording(spec.worker):
            def act(self, round, agents):
                result = super().act(round, agents)
                for agent, message in zip(agents, result.messages):  # one trial: one message per agent
                    count(agent, message)
                return result

    else:

        class Recording(spec.worker):
            def act_many(self, round, agents):  # what PerAgent calls (act itself may be bypassed)
                results = super().act_many(round, agents)
                for agent, result in zip(agents, results):
                    count(agent, result.message)
                return results

    rounds = SyncRounds(dataclasses.replace(spec, worker=Recording), [ctx], Runtime())
    counted = np.zeros(ctx.n, dtype=np.int64)
    for r in range(4):
        (record,) = rounds.run(r)
        counted += record.values["uplink_bytes"].astype(np.int64)
    assert counted.tolist() == [sent.get(a, 0) for a in range(ctx.n)]


def bad_values(tp) -> list:
    """Values of a parameter's type that no algorithm can use."""
    origin = typing.get_origin(tp)
    if tp is float:
        return [math.nan, math.inf, -math.inf, "x", True]
    if tp is int:
        return [1.5, "x", True, 2**70]
    if tp is bool:
        return [1, "yes"]
    if origin is typing.Literal:
        return ["no such choice", 0]
    return ["x"] if tp is not str else []


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameters_are_refused_with_one_line(name):
    spec = registry.lookup(name)
    hints = typing.get_type_hints(spec.params)
    for field in dataclasses.fields(spec.params):
        if field.name == "name":
            continue
        for value in bad_values(hints[field.name]):
            data = example_config(name)
            data["algo"][field.name] = value
            with pytest.raises(ConfigError) as err:
                validate.check(from_dict(data))
            message = str(err.value)
            assert message.startswith(f"algo.{field.name}") and "\n" not in message, (field.name, value, message)
    with pytest.raises(ConfigError, match=r"^algo.no_such_key: unknown key"):
        from_dict({**example_config(name), "algo": {"name": name, "no_such_key": 1}})


class StopAfter(Progress):
    """A silent progress report that asks the experiment to stop after round ``after`` of trial 2."""

    def __init__(self, cfg, stop, after):
        super().__init__(0, cfg.run.trials, cfg.run.rounds, stream=io.StringIO(), bar=False)
        self.stop, self.after = stop, after

    def update(self, trial, round, *args, **kwargs):
        if (trial, round) == (1, self.after):
            self.stop.signum = signal.SIGTERM


@pytest.mark.mpi
@pytest.mark.parametrize("name", NAMES)
def test_a_resumed_run_equals_an_uninterrupted_one(runs, tmp_path, name):
    """Stopped in its second trial at one rank, resumed at two: the bits of the uninterrupted run."""
    cfg = from_dict(example_config(name, checkpoint_every=2))
    spec = registry.lookup(name)
    checked = validate.check(cfg)
    out, stop = tmp_path / "stopped.h5", StopRequest()
    with pytest.raises(Interrupted):
        Experiment(cfg, checked.env_spec, out, Runtime(), progress=StopAfter(cfg, stop, 2), stop=stop).run()
    with h5py.File(out) as f:
        assert f.attrs["status"] == "interrupted" and f["checkpoint"].attrs["round"] == 3
    mpirun(2, ["run", "--resume", str(out)], timeout=180)
    got, want = numbers(out), numbers(runs / f"{name}-1.h5")
    assert spec.resumable and str(got["status"]) == "complete"
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=f"{name}: {key} differs after resume")


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trips_through_a_checkpoint(name):
    """Learner and worker state saved after two rounds and loaded into fresh sides give the same next rounds."""
    spec, ctx = registry.lookup(name), context(name)
    first = spec.protocol.start(spec, [ctx], Runtime())
    for r in range(2):
        first.run(r)
    learner_state, worker_state = first.learner.state_dict(), first.worker.state_dict()
    for state in (learner_state, worker_state):
        assert all(isinstance(v, np.ndarray) for v in state.values()), "state holds arrays only"
    second = spec.protocol.start(spec, [ctx], Runtime())
    second.learner.load_state_dict(learner_state)
    second.worker.load_state_dict(worker_state)
    second.sim_time = first.sim_time
    for r in range(2, 4):
        (a,), (b,) = first.run(r), second.run(r)
        for key in a.values:
            if key not in IGNORED_METRICS:
                np.testing.assert_array_equal(a.values[key], b.values[key], err_msg=f"{name}: {key} in round {r}")
