"""Bad input is refused with one clear line and exit status 2, and nothing is written."""

import h5py
import pytest
from helpers import mpidrl, write_config
from hypothesis import given, settings
from hypothesis import strategies as st

from mpidrl.config import ConfigError, from_dict, load

GOOD = """
[run]
rounds = 2
[agents]
n = 3
[policy]
hidden = [4]
"""

# (extra CLI arguments for `run CONFIG --out OUT`, text expected in the one-line error)
RUN_CASES = [
    (["--set", 'algo.name="ppo"'], "algo.name: unknown algorithm 'ppo'"),
    (["--set", 'env.id="MoonLander-v9"'], "env.id: unknown environment 'MoonLander-v9'"),
    (["--set", 'env.id="nosuchmodule:Env-v0"'], "env.id: cannot import module 'nosuchmodule'"),
    (["--set", "run.rounds=1.5"], "run.rounds: expected an integer"),
    (["--set", 'run.trials="three"'], "run.trials: expected an integer, got 'three'"),
    (["--set", "agents.n=0"], "agents.n: must be >= 1, got 0"),
    (["--set", "agents.n=-5"], "agents.n: must be >= 1, got -5"),
    (["--set", "algo.sigma=-0.05"], "algo.sigma: must be > 0"),
    (["--set", "algo.episodes=0"], "algo.episodes: must be in [1, 10000]"),
    (["--set", "algo.tau=3"], "algo.tau: unknown key; allowed keys are name, sigma"),
    (["--set", "optim.lr=0"], "optim.lr: must be > 0"),
    (["--set", "optim.momentum=1.0"], "optim.momentum: must be in [0, 1)"),
    (["--set", 'policy.activation="gelu"'], "policy.activation: expected one of 'tanh', 'relu'"),
    (["--set", "env.gamma=-0.1"], "env.gamma: must be in [0, 1]"),
    (["--set", 'time.mode="warp"'], "time.mode: expected one of 'real', 'simulated'"),
    (["--set", 'time.h="i ** 2 + j"'], "time.h: unknown name 'j'"),
    (["--set", "run.checkpoint_every=-1"], "run.checkpoint_every: must be >= 0"),
    (["--set", "agents.n=1000000", "--set", 'env.id="Ant-v5"'], "agents.n: 1000000 agents of Ant-v5 need about"),
    (["--set", 'agents.placement="everywhere"'], "agents.placement: expected one of 'auto', 'blocks', 'dynamic'"),
    (
        ["--set", 'algo.name="espc"', "--set", "algo.m=2", "--set", 'agents.placement="dynamic"'],
        "agents.placement: espc cannot place agents dynamically",
    ),
    (["--set", "oops"], "--set 'oops': expected section.key=value"),
    (["--set", "run.rounds.x=1"], "run.rounds: is a value, not a table"),
]


@pytest.mark.parametrize("extra, message", RUN_CASES, ids=[c[1][:40] for c in RUN_CASES])
def test_bad_run_is_refused_before_any_work(tmp_path, extra, message):
    cfg = write_config(tmp_path / "c.toml", GOOD)
    out = tmp_path / "out.h5"
    proc = mpidrl(["run", str(cfg), "--out", str(out), *extra], check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()


def test_unwritable_and_existing_outputs(tmp_path):
    cfg = write_config(tmp_path / "c.toml", GOOD)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        ([str(blocker / "x.h5")], "run.out: cannot create directory"),
        (["/proc/mpidrl-test.h5"], "run.out: cannot write in /proc"),
        ([str(tmp_path)], "is a directory"),
        ([str(blocker)], "exists; pass --overwrite"),
    ]
    for out, message in cases:
        proc = mpidrl(["run", str(cfg), "--out", *out], check=False)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert blocker.read_text() == "x"


def test_missing_or_broken_config_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nrounds = = 3\n")
    for path, message in ((tmp_path / "none.toml", "no such config file"), (bad, "not valid TOML")):
        proc = mpidrl(["validate", str(path)], check=False)
        assert proc.returncode == 2 and message in proc.stderr
    proc = mpidrl(["run"], check=False)
    assert proc.returncode == 2 and "give a CONFIG.toml" in proc.stderr


@pytest.mark.parametrize("command", ["summary", "plot", "resume"])
def test_corrupt_and_foreign_hdf5_files(tmp_path, command):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 signature and nothing else
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.attrs["schema"] = "someone-else/3"
    for path, message in ((corrupt, "not a readable HDF5 file"), (foreign, "not an mpidrl run file")):
        args = {
            "summary": ["summary", str(path)],
            "plot": ["plot", str(path), "-o", str(tmp_path / "f.png")],
            "resume": ["run", "--resume", str(path)],
        }[command]
        proc = mpidrl(args, check=False)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "f.png").exists()


# Property-based tests of the config loader: any table either loads or fails with one ConfigError line.
scalars = st.one_of(
    st.integers(-10, 10**6),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=8),
    st.lists(st.integers(-3, 20), max_size=3),
)
KEYS = {
    "run": ["seed", "trials", "rounds", "record_messages", "eval_every", "log_every", "bogus"],
    "agents": ["n", "m"],
    "algo": ["name", "sigma", "episodes", "fitness_shaping", "antithetic", "k"],
    "policy": ["hidden", "activation", "kind"],
    "optim": ["name", "lr", "l2", "momentum"],
    "env": ["gamma", "max_steps"],
}
tables = st.fixed_dictionaries(
    {},
    optional={section: st.dictionaries(st.sampled_from(keys), scalars, max_size=4) for section, keys in KEYS.items()},
)


@settings(max_examples=300, deadline=None)
@given(tables)
def test_loader_accepts_or_names_the_problem(data):
    try:
        cfg = from_dict(data)
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text and ":" in text
        assert text.split(":")[0].split(".")[0].split("[")[0] in {*KEYS, "config"}
    else:
        assert from_dict(cfg.to_dict()) == cfg  # a valid config survives the trip through plain data


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10**6), st.floats(1e-6, 1e3), st.lists(st.integers(1, 512), min_size=0, max_size=4))
def test_valid_values_are_kept_exactly(n, sigma, hidden):
    cfg = load(None, [f"agents.n={n}", f"algo.sigma={sigma!r}", f"policy.hidden={hidden}"])
    assert (cfg.agents.n, cfg.algo.sigma, cfg.policy.hidden) == (n, sigma, tuple(hidden))


def test_algorithm_name_of_the_wrong_type():
    with pytest.raises(ConfigError, match=r"algo.name: expected a string, got \[\]"):
        from_dict({"algo": {"name": []}})
