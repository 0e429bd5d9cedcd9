"""Loading and grouping run files, the statistics of the figures, and ``mpidrl report`` on real runs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from helpers import mpidrl, write_config

from mpidrl.analysis import (
    AnalysisError,
    Collection,
    center_band,
    iqm,
    iqm_bootstrap,
    load,
    on_time_grid,
    summary,
)
from mpidrl.config import load as load_config
from mpidrl.plots import summary_table
from mpidrl.store import RunWriter, read_run


def fake_run(path, n=2, seed=0, trials=2, rounds=4, sigma=0.05, reward=None, status="complete", sim=False):
    """A run file with known values: reward[t, r, a] = reward(seed, t, r, a), 1 message of 8 B per agent."""
    cfg = load_config(None, [f"agents.n={n}", f"run.seed={seed}", f"run.trials={trials}", f"algo.sigma={sigma}"])
    attrs = {"config": cfg.to_json(), "seed": seed, "n_agents": n}
    w = RunWriter(path, attrs, trials, n)
    reward = reward or (lambda s, t, r, a: 100 * s + 10 * t + r + a / 10)
    for t in range(trials):
        # a run that did not complete died in its last trial after two rounds
        for r in range(rounds if status == "complete" or t < trials - 1 else 2):
            w.write_round(
                t,
                r,
                {
                    "reward": np.array([reward(seed, t, r, a) for a in range(n)]),
                    "uplink_messages": np.ones(n),
                    "uplink_bytes": np.full(n, 8),
                    "downlink_bytes": np.full(n, 40),
                    "wall_time": 0.5 * (r + 1),
                    "sim_time": 2.0 * (r + 1) if sim else np.nan,
                },
            )
        if status == "complete" or t < trials - 1:
            w.end_trial(t)
    w.close(status)
    return path


def test_group_settings_and_stack_seeds_as_trials(tmp_path):
    for seed in (1, 2, 3):
        fake_run(tmp_path / f"a{seed}.h5", n=2, seed=seed)
        fake_run(tmp_path / f"b{seed}.h5", n=3, seed=seed, sigma=0.1)
    col = load([tmp_path])
    assert [s.n for s in col.settings] == [2, 3]
    assert [s.label for s in col.settings] == ["es agents.n=2 algo.sigma=0.05", "es agents.n=3 algo.sigma=0.1"]
    a = col.settings[0]
    assert a.metrics["reward"].shape == (6, 4, 2)  # 3 seeds x 2 trials, 4 rounds, 2 agents
    # trials stacked in file order (a1, a2, a3), each file's trials in order
    expect = np.array(
        [[[100 * s + 10 * t + r + ag / 10 for ag in range(2)] for r in range(4)] for s in (1, 2, 3) for t in (0, 1)]
    )
    np.testing.assert_array_equal(a.metrics["reward"], expect)
    stacked = col.stack("reward")
    assert stacked.shape == (2, 6, 4, 3)
    assert np.isnan(stacked[0, :, :, 2]).all() and not np.isnan(stacked[1]).any()
    assert col.stack("wall_time").shape == (2, 6, 4)
    row = summary(a)
    assert row["runs"] == row["complete"] == 3
    assert row["total_up_bytes_per_agent"] == 4 * 8 and row["msgs_per_agent_round"] == 1.0
    # final reward: the last round (4 rounds -> last 10 % is one round), agent mean, then trial mean
    assert row["final_reward"] == pytest.approx(
        np.mean([100 * s + 10 * t + 3 + 0.05 for s in (1, 2, 3) for t in (0, 1)])
    )


def test_unfinished_runs_are_nan_not_zero(tmp_path):
    fake_run(tmp_path / "done.h5", seed=1, rounds=5)
    fake_run(tmp_path / "died.h5", seed=2, rounds=5, status="failed")  # trial 1 of 2 died after round 2 of 5
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    fake_run(tmp_path / "rerun.h5", seed=1, rounds=5)  # a copy of done.h5's setting and seed
    col = load([tmp_path])
    assert len(col.settings) == 1 and len(col.skipped) == 2
    assert "junk.h5: not a readable HDF5 file" in col.skipped[0]
    assert col.skipped[1].endswith(f"rerun.h5: same setting and seed as {tmp_path / 'done.h5'}")
    s = col.settings[0]
    assert s.trials == 4 and s.statuses.count("failed") == 1
    msgs = s.metrics["uplink_messages"]
    died = s.paths.index(str(tmp_path / "died.h5"))
    assert (msgs[2 * died] == 1).all()  # the trial that finished
    assert (msgs[2 * died + 1, :2] == 1).all() and np.isnan(msgs[2 * died + 1, 2:]).all()  # not the 0 fill
    assert summary(s)["msgs_per_agent_round"] == 1.0


def test_load_errors(tmp_path):
    with pytest.raises(AnalysisError, match="no readable mpidrl run files"):
        load([tmp_path])
    with pytest.raises(AnalysisError, match="no such file"):
        load([tmp_path / "nope"])


def test_iqm_matches_trimmed_mean():
    rng = np.random.default_rng(3)
    for k in (1, 2, 3, 4, 5, 8, 13, 40):
        x = rng.standard_cauchy((k, 6))
        np.testing.assert_allclose(iqm(x), scipy.stats.trim_mean(x, 0.25, axis=0))
    assert iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    x = np.array([[1.0, np.nan], [2.0, np.nan], [300.0, 5.0], [4.0, np.nan]])
    np.testing.assert_allclose(iqm(x), [3.0, 5.0])  # NaN trials are left out, one value is its own IQM


def test_iqm_bootstrap_known_answer():
    # Uniform(0, 10) has IQM 5 (the mean of its middle half). The 95 % band covers it about 95 % of the time.
    rng = np.random.default_rng(11)
    data = rng.uniform(0, 10, size=(20, 300))  # 300 independent experiments of 20 trials (as "rounds")
    center, lo, hi = iqm_bootstrap(data, samples=1000, seed=5)
    covered = np.mean((lo <= 5) & (5 <= hi))
    assert 0.88 <= covered <= 0.99
    assert np.all(lo <= center) and np.all(center <= hi)
    # band width close to the sampling spread of the IQM (simulated directly)
    spread = np.std(iqm(rng.uniform(0, 10, size=(20, 4000))))
    assert np.median(hi - lo) == pytest.approx(2 * 1.96 * spread, rel=0.25)
    # seeded: the same seed gives the same band, identical trials give a zero-width band
    np.testing.assert_array_equal(iqm_bootstrap(data[:, :5], seed=5)[1], iqm_bootstrap(data[:, :5], seed=5)[1])
    same = iqm_bootstrap(np.full((7, 3), 2.5))
    for part in same:
        np.testing.assert_allclose(part, 2.5)


def test_mean_band_and_time_grid():
    per_trial = np.arange(11.0)[:, None] * np.ones((1, 3))
    mean, lo, hi = center_band(per_trial)
    np.testing.assert_allclose([mean[0], lo[0], hi[0]], [5.0, 1.0, 9.0])
    # two trials: rounds end at 1, 2, 3, 5 s and at 2, 4, 6, 8 s; the grid is where both ran, [2, 5]
    times = np.array([[1.0, 2.0, 3.0, 5.0], [2.0, 4.0, 6.0, 8.0]])
    values = np.array([[10.0, 20.0, 30.0, 40.0], [10.0, 20.0, 30.0, 40.0]])
    grid, out = on_time_grid(times, values, points=4)
    np.testing.assert_allclose(grid, [2, 3, 4, 5])
    np.testing.assert_allclose(out, [[20, 30, 35, 40], [10, 15, 20, 25]])
    # trials that never overlap: each is shown over its own span, NaN elsewhere
    grid, out = on_time_grid(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 4.0]]), points=4)
    np.testing.assert_allclose(grid, [1, 2, 3, 4])
    np.testing.assert_allclose(out, [[1, 2, np.nan, np.nan], [np.nan, np.nan, 3, 4]])


def test_time_axes_follow_the_clocks_the_runs_kept(tmp_path):
    from mpidrl.figures import plot_curves

    fake_run(tmp_path / "sim.h5", seed=1, sim=True)
    fake_run(tmp_path / "real.h5", seed=1, sigma=0.2)
    col = load([tmp_path])
    real, sim = col.settings  # files are read in sorted order
    assert np.isfinite(sim.metrics["sim_time"]).all() and np.isnan(real.metrics["sim_time"]).all()
    assert plot_curves(Collection([real]), tmp_path / "none.png", x="sim_time") is None
    out = plot_curves(col, tmp_path / "sim.png", x="sim_time", stat="iqm")
    assert out.stat().st_size > 10_000


def test_report_command_on_real_runs(tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        '[run]\nrounds = 4\ntrials = 2\n[env]\nid = "CartPole-v1"\n[agents]\nn = 3\n[policy]\nhidden = [4]\n',
    )
    runs = tmp_path / "sweep" / "runs"
    for sigma in (0.05, 0.2):
        mpidrl(["run", str(config), "--set", f"algo.sigma={sigma}", "--out", str(runs / f"sigma{sigma}.h5")])
    proc = mpidrl(["report", str(tmp_path / "sweep")])
    md = (tmp_path / "sweep" / "report" / "report.md").read_text()
    assert "wrote" in proc.stdout and "2 run file(s) in 2 setting(s)" in md
    rows = [line for line in md.splitlines() if line.startswith("| es ")]
    assert len(rows) == 2 and "algo.sigma=0.05" in rows[0] and "| 1 (1) | 2 | 4 |" in rows[0]
    # the table agrees with the per-run summary of the same file
    single = summary_table([read_run(runs / "sigma0.2.h5")]).splitlines()[2].split("|")
    final, up_bytes = single[8].strip(), single[10].strip()
    assert float(rows[1].split("|")[8].split()[0]) == pytest.approx(float(final), abs=0.006)
    assert f"| {up_bytes} |" in rows[1]
    for name in ("curves_round.png", "curves_wall_time.png", "reward_vs_communication.png"):
        assert (tmp_path / "sweep" / "report" / name).stat().st_size > 10_000
    assert not (tmp_path / "sweep" / "report" / "curves_sim_time.png").exists()  # real-time runs only
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = mpidrl(["report", str(empty)], check=False)
    assert proc.returncode == 2 and "no readable mpidrl run files" in proc.stderr
