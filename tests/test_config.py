"""Config loading, overrides and validation: every problem is one line naming the key."""

import dataclasses

import pytest

from mpidrl.config import Config, ConfigError, flatten, from_dict, load, parse_overrides


def test_defaults_are_valid_and_frozen():
    cfg = from_dict({})
    assert cfg.algo.name == "es" and cfg.agents.n == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run.rounds = 3


def test_toml_file_and_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[run]\nrounds = 7\n[algo]\nname = "es"\nsigma = 0.2\n[policy]\nhidden = [4]\n')
    cfg = load(p, ["algo.sigma=0.3", "agents.n=9", "env.kwargs.sutton_barto_reward=true", "run.out=x.h5"])
    assert cfg.run.rounds == 7 and cfg.algo.sigma == 0.3 and cfg.agents.n == 9
    assert cfg.policy.hidden == (4,)
    assert cfg.env.kwargs == {"sutton_barto_reward": True}
    assert cfg.run.out == "x.h5"  # a bare word is taken as a string


def test_round_trip_through_plain_data():
    cfg = load(None, ["agents.n=5", "policy.hidden=[3, 2]", 'time.h="sqrt(i)"'])
    assert from_dict(cfg.to_dict()) == cfg
    assert isinstance(cfg, Config)


def test_flatten_dotted_keys_and_empty_tables():
    cfg = load(None, ["env.kwargs.slippery=false"]).to_dict()
    flat = flatten(cfg)
    assert flat["agents.n"] == 1 and flat["env.kwargs.slippery"] is False and "env.kwargs" not in flat
    assert flatten(load(None).to_dict())["env.kwargs"] == {}  # an empty table is a value, not nothing
    assert flatten({"grid": {"agents": {"n": [1, 2]}}, "x": [{"a": 1}]}) == {"grid.agents.n": [1, 2], "x": [{"a": 1}]}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["run.roundz=3"], "run.roundz: unknown key; allowed keys are seed, trials, rounds"),
        (["bogus.key=1"], "bogus: unknown section"),
        (['run.rounds="ten"'], "run.rounds: expected an integer, got 'ten'"),
        (["run.rounds=2.5"], "run.rounds: expected an integer"),
        (["run.rounds=0"], "run.rounds: must be >= 1, got 0"),
        (["run.record_messages=1"], "run.record_messages: expected true or false"),
        (["agents.n=0"], "agents.n: must be >= 1, got 0"),
        (["algo.sigma=-0.1"], "algo.sigma: must be > 0, got -0.1"),
        (["algo.sigma=0"], "algo.sigma: must be > 0"),
        (['algo.name="ppo"'], "algo.name: unknown algorithm 'ppo'; allowed: es"),
        (['algo.fitness_shaping="rank"'], "algo.fitness_shaping: expected one of 'none', 'centered_rank'"),
        (['optim.name="rmsprop"'], "optim.name: expected one of 'adam', 'sgd'"),
        (["optim.lr=-1"], "optim.lr: must be > 0"),
        (["env.gamma=1.5"], "env.gamma: must be in [0, 1]"),
        (["policy.hidden=[8, 0]"], "policy.hidden[1]: must be >= 1"),
        (["policy.hidden=8"], "policy.hidden: expected a list of integers"),
        (["run"], "--set 'run': expected section.key=value"),
        (["run.seed=-4"], "run.seed: must be in [0, 2^63)"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        load(None, overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nrounds = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


def test_override_values_are_toml():
    assert parse_overrides(["a.b=[1, 2]", "a.c=true", "a.d=word"]) == [
        (["a", "b"], [1, 2]),
        (["a", "c"], True),
        (["a", "d"], "word"),
    ]


def test_config_reference_in_docs_is_current():
    from pathlib import Path

    from mpidrl.config.reference import markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "config.md"
    assert doc.read_text().strip() == markdown().strip(), (
        "regenerate: python -m mpidrl.config.reference > docs/config.md"
    )


def test_every_key_of_every_builtin_algorithm_is_documented():
    from mpidrl import registry
    from mpidrl.config.reference import field_docs

    for name in registry.BUILTINS:
        params = registry.lookup(name).params
        docs = field_docs(params)
        missing = [f.name for f in dataclasses.fields(params) if not docs.get(f.name)]
        assert not missing, f"{name}: {missing} have no docstring"


def test_switching_the_algorithm_keeps_the_keys_it_accepts_and_names_the_others(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[algo]\nname = "es"\nsigma = 0.3\nantithetic = true\n[agents]\nn = 6\n')
    notes = []
    cfg = load(p, ['algo.name="espc"', "algo.m=2"], notes)
    assert (cfg.algo.name, cfg.algo.sigma, cfg.algo.antithetic, cfg.algo.m, notes) == ("espc", 0.3, True, 2, [])
    cfg = load(p, ['algo.name="nigt-sync"', "algo.eta=0.5"], notes)
    assert cfg.algo.name == "nigt-sync" and cfg.algo.eta == 0.5
    assert notes == ["algo.name=nigt-sync: dropped algo.antithetic, algo.sigma (nigt-sync has no such parameters)"]
    with pytest.raises(ConfigError, match="algo.sigma: unknown key; allowed keys are name, eta"):
        load(p, ['algo.name="nigt-sync"', "algo.sigma=1"])  # given on purpose: still an error
    with pytest.raises(ConfigError, match="algo.name: unknown algorithm 'nope'"):
        load(p, ['algo.name="nope"'])
