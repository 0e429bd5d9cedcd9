"""The one reporting path: loading and grouping run files, masking unwritten rounds, labels, the time-grid
resampler, the statistics, the figures' axes, ``summary``, ``plot`` and ``report``, and the analysis/
scripts on small run files."""

from __future__ import annotations

import csv
import runpy
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
from helpers import ROOT, mpidrl, write_config

from mpidrl.analysis import (
    BOOKKEEPING,
    AnalysisError,
    Collection,
    band_name,
    center_band,
    curve,
    final_values,
    iqm,
    iqm_bootstrap,
    load,
    moving_average,
    on_grid,
    time_grid,
    time_to,
    valid_mask,
)
from mpidrl.config import load as load_config
from mpidrl.figures import format_panel, log_x, plot_curves, spans_decades, y_log
from mpidrl.report import CSV_COLUMNS, report, summary, summary_table
from mpidrl.store import RunWriter, read_run


def fake_run(
    path,
    n=2,
    seed=0,
    trials=2,
    rounds=4,
    sigma=None,
    reward=None,
    status="complete",
    sim=False,
    sets=(),
    wall=None,
    downlink=40,
    control=0,
    stop=2,
    unfinished=1,
):
    """A run file with known values: reward[t, r, a] = reward(seed, t, r, a), 1 message of 8 B per agent.

    A run that did not complete has its last ``unfinished`` trials stopped after ``stop`` rounds (as a
    batch of trials run together, or one trial, when the job died).
    """
    sets = [*sets, *([f"algo.sigma={sigma}"] if sigma else [])]  # ES's default sigma is 0.05
    cfg = load_config(None, [f"agents.n={n}", f"run.seed={seed}", f"run.trials={trials}", *sets])
    attrs = {"config": cfg.to_json(), "seed": seed, "n_agents": n}
    w = RunWriter(path, attrs, trials, n)
    reward = reward or (lambda s, t, r, a: 100 * s + 10 * t + r + a / 10)
    wall = wall or (lambda t, r: 0.5 * (r + 1))
    last = trials if status == "complete" else trials - unfinished
    for t in range(trials):
        for r in range(rounds if t < last else stop):
            values = np.array([reward(seed, t, r, a) for a in range(n)])
            w.write_round(
                t,
                r,
                {
                    "reward": values,
                    "return": values,
                    "uplink_messages": np.ones(n),
                    "uplink_bytes": np.full(n, 8),
                    "downlink_bytes": np.full(n, downlink),
                    "control_bytes": np.full(n, control),
                    "wall_time": wall(t, r),
                    "sim_time": 2.0 * (r + 1) if sim else np.nan,
                },
            )
        if t < last:
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
    assert row["total_bytes_per_agent"] == 4 * (8 + 40) and row["msgs_per_agent_round"] == 1.0
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
    row = summary(s)
    assert row["msgs_per_agent_round"] == 1.0
    assert np.isnan(row["total_messages_trials"][2 * died + 1]) and row["total_messages_per_agent"] == 5.0
    with pytest.raises(AnalysisError, match="junk.h5: not a readable HDF5 file"):
        load([tmp_path / "done.h5", tmp_path / "junk.h5"], strict=True)  # files named one by one


def test_summary_of_an_interrupted_run(tmp_path):
    # ES with a 130-parameter policy: 1 message of 8 B up, 1040 B down per agent per round. Trial 2 of 2
    # was interrupted after 2 of 4 rounds: its other rounds read as 0 in the file, and must not count.
    path = fake_run(tmp_path / "es.h5", trials=2, rounds=4, status="interrupted", downlink=1040)
    run = read_run(path)
    assert run.metrics["uplink_messages"].mean() == 0.75  # the raw file, fill values included
    row = summary_table([run]).splitlines()[2]
    assert "| interrupted, round 2 of 100 of trial 2 of 2 | 3.050 | 1.000 | 8.0 | 1040.0 | 0.0 | 2.00 |" in row
    proc = mpidrl(["summary", str(path)])
    assert proc.stdout.splitlines()[2] == row


def test_valid_mask_batches_and_a_trial_just_started(tmp_path):
    # trials 3 and 4 run together as a batch (run.trial_batch = 2) and stopped after 2 of 4 rounds
    batch = read_run(
        fake_run(tmp_path / "b.h5", trials=4, status="interrupted", sets=["run.trial_batch=2"], unfinished=2)
    )
    mask = valid_mask(batch)
    assert mask[:2].all() and mask[2:, :2].all() and not mask[2:, 2:].any()
    # trial 2 has begun but written nothing yet: the file's rounds_done still counts trial 1's rounds
    started = read_run(fake_run(tmp_path / "s.h5", status="running", stop=0))
    assert started.attrs["rounds_done"] == 4 and started.attrs["trials_done"] == 1
    mask = valid_mask(started)
    assert mask[0].all() and not mask[1].any()


def test_labels_name_only_keys_that_differ_and_are_set(tmp_path):
    fake_run(tmp_path / "es1.h5", seed=1)
    bookkeeping = [
        "run.record_messages=true",
        "run.eval_every=2",
        "run.eval_episodes=3",
        "run.checkpoint_every=3",
        "run.trial_batch=2",
        "run.log_every=1.0",
        'agents.placement="blocks"',
        'run.out="elsewhere.h5"',
    ]
    fake_run(tmp_path / "es2.h5", seed=2, trials=3, sets=bookkeeping)  # pooled with es1: the same setting
    fake_run(tmp_path / "es3.h5", seed=1, sigma=0.1)
    fake_run(tmp_path / "espc.h5", seed=1, sets=['algo.name="espc"', "algo.m=1", "algo.k=2"])
    fake_run(tmp_path / "dql.h5", seed=1, sets=['algo.name="dql"', 'env.id="mpidrl/SimpleGrid-v0"', "env.gamma=0.9"])
    col = load([tmp_path])
    labels = sorted(s.label for s in col.settings)
    assert labels == [
        "dql mpidrl/SimpleGrid-v0",  # DQL's own parameters and its gamma tell it apart from no other dql
        "es CartPole-v1 algo.sigma=0.05",
        "es CartPole-v1 algo.sigma=0.1",
        "espc CartPole-v1",
    ]
    es = next(s for s in col.settings if s.label.endswith("0.05"))
    assert es.trials == 5 and len(es.paths) == 2
    for label in labels:
        assert "null" not in label and not any(f"{key}=" in label for key in BOOKKEEPING)
    # one setting alone is labelled by what it is
    assert load([tmp_path / "es3.h5"]).settings[0].label == "es n=2 CartPole-v1"


def test_step_resampler():
    # trial 0 ends rounds at 1, 2, 3, 5 s; trial 1 at 2, 4, 6, 8 s
    times = np.array([[1.0, 2.0, 3.0, 5.0], [2.0, 4.0, 6.0, 8.0]])
    values = np.array([[10.0, 20.0, 30.0, 40.0], [11.0, 21.0, np.nan, 41.0]])
    grid = np.array([0.0, 1.0, 1.5, 2.0, 5.0, 6.0, 7.9, 8.0, 9.0])
    out = on_grid(times, values, grid)
    nan = np.nan
    # the value of the last round finished by t; NaN before the first round ends and after the last
    np.testing.assert_array_equal(out[0], [nan, 10, 10, 20, 40, nan, nan, nan, nan])
    # a round without a value is left out: at 6 s trial 1 still shows round 2's value
    np.testing.assert_array_equal(out[1], [nan, nan, nan, 11, 21, 21, 21, 41, nan])
    # the grid runs from the first round's end to the slowest trial's end, evenly or geometrically
    np.testing.assert_allclose(time_grid(times, points=8), np.linspace(1, 8, 8))
    np.testing.assert_allclose(time_grid(times, points=4, log=True), [1, 2, 4, 8])
    assert time_grid(np.full((2, 3), np.nan)).size == 0


def test_curves_run_to_the_slowest_trial(tmp_path):
    # trial t ends round r at (t + 1) * (r + 1) s: trial 0 ends at 4 s, trial 1 at 8 s
    fake_run(tmp_path / "r.h5", wall=lambda t, r: (t + 1) * (r + 1.0), reward=lambda s, t, r, a: 10 * t + r)
    (setting,) = load([tmp_path]).settings
    grid, per_trial = curve(setting, "reward", "wall_time", points=8)
    np.testing.assert_allclose(grid, np.linspace(1, 8, 8))
    center, lo, hi = center_band(per_trial)
    # at 1 s only trial 0 has ended a round; after 4 s only trial 1 runs, up to its end at 8 s
    np.testing.assert_allclose(center, [0, 5.5, 6, 7, 11, 12, 12, 13])
    assert np.isnan(per_trial[1, 0]) and np.isnan(per_trial[0, 4:]).all()
    # cumulative bytes per agent (uplink + downlink + control) are an axis like the clocks
    grid, _ = curve(setting, "reward", "bytes", points=3, log=True)
    np.testing.assert_allclose(grid, [48, 96, 192])  # 48 B per round: geometric from round 1 to round 4


def test_time_to_moving_average_and_final_values():
    times = np.array([[1.0, 2.0, 3.0], [1.0, 3.0, 5.0]])
    values = np.array([[0.0, 5.0, 9.0], [0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(time_to(times, values, 5.0), [2.0, np.nan])
    assert time_to(np.array([1.0, 2.0, 3.0]), np.array([1.0, np.nan, 7.0]), 6.0) == 3.0
    np.testing.assert_allclose(moving_average(np.array([[1.0, 3.0, np.nan, 5.0]]), 2), [[1, 2, 3, 5]])
    per_trial = np.array([np.arange(20.0), np.r_[np.arange(10.0), np.full(10, np.nan)]])
    np.testing.assert_array_equal(final_values(per_trial), [18.5, np.nan])  # last 10 %: rounds 19 and 20
    np.testing.assert_array_equal(final_values(per_trial, last=15), [12.0, 7.0])


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


def test_mean_interval_covers_the_mean_95_percent_of_the_time():
    # 5 trials of Normal(3, 2): the t interval covers 3 in about 95 % of 4000 experiments ("rounds")
    data = np.random.default_rng(12).normal(3.0, 2.0, size=(5, 4000))
    center, lo, hi = center_band(data, stat="ci")
    assert 0.93 <= np.mean((lo <= 3) & (3 <= hi)) <= 0.97
    np.testing.assert_allclose(center, data.mean(axis=0))
    half = scipy.stats.t.ppf(0.975, 4) * data.std(axis=0, ddof=1) / np.sqrt(5)
    np.testing.assert_allclose(hi - center, half)
    # NaN trials are left out; one value has no interval
    x = np.array([[1.0, np.nan], [3.0, 7.0], [np.nan, np.nan]])
    center, lo, hi = center_band(x, stat="ci")
    np.testing.assert_allclose(center, [2.0, 7.0])
    assert np.isnan(lo[1]) and np.isnan(hi[1]) and lo[0] < 2 < hi[0]
    assert band_name("ci") == "mean over trials, 95 % confidence interval"


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


def test_mean_with_selectable_band():
    per_trial = np.arange(11.0)[:, None] * np.ones((1, 3))
    mean, lo, hi = center_band(per_trial)
    np.testing.assert_allclose([mean[0], lo[0], hi[0]], [5.0, 1.0, 9.0])
    mean, lo, hi = center_band(per_trial, band=(20, 80))
    np.testing.assert_allclose([lo[0], hi[0]], [2.0, 8.0])
    assert band_name() == "mean over trials, 10-90 % band"
    assert band_name("mean", (20, 80)) == "mean over trials, 20-80 % band"
    assert band_name("iqm") == "IQM over trials, 95 % bootstrap band"
    with pytest.raises(AnalysisError, match="stat: expected one of mean, iqm"):
        center_band(per_trial, "median")


def test_log_axes_where_values_span_decades():
    assert spans_decades([8.0, 1040.0]) and not spans_decades([10.0, 900.0])
    assert not spans_decades([0.0, 0.0, 5.0, 10.0])  # zeros cannot be drawn on a log axis: not counted
    assert y_log("uplink_bytes", np.array([8.0, 1000.0])) and not y_log("reward", np.array([1.0, 1e4]))
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2)
    format_panel(a, "downlink_bytes", "round", False, [np.array([10256.0, 10264.0])])
    assert a.get_yscale() == "linear" and a.get_ylim()[0] == 0  # an 8-byte difference at 10 kB is no gap
    format_panel(b, "uplink_bytes", "wall_time", True, [np.array([8.0, 8.0]), np.array([900.0, 1100.0])])
    assert b.get_yscale() == "log" and b.get_xscale() == "log"
    plt.close(fig)


def test_time_axes_and_an_empty_axis(tmp_path):
    fake_run(tmp_path / "sim.h5", seed=1, sim=True, wall=lambda t, r: 0.01 * 10**r)  # 0.01 s to 10 s
    fake_run(tmp_path / "real.h5", seed=1, sigma=0.2)
    col = load([tmp_path])
    real, sim = col.settings  # files are read in sorted order
    assert np.isfinite(sim.metrics["sim_time"]).all() and np.isnan(real.metrics["sim_time"]).all()
    assert log_x([sim], "wall_time") and not log_x([real], "wall_time") and not log_x(col.settings, "sim_time")
    assert log_x([real], "bytes") and not log_x([sim], "round")
    with pytest.raises(AnalysisError, match="sim_time: nothing to draw, no simulated clock"):
        plot_curves(Collection([real]).settings, tmp_path / "none.png", x="sim_time")
    assert not (tmp_path / "none.png").exists()
    out = plot_curves(col.settings, tmp_path / "sim.png", x="sim_time", stat="iqm")
    assert out.stat().st_size > 10_000
    # a run that has not written a round yet: a table row without numbers, and no figure
    started = read_run(fake_run(tmp_path / "started.h5", status="running", stop=0, unfinished=2))
    row = summary_table([started]).splitlines()[2]
    assert row.endswith("| 0 | running, round 0 of 100 of trial 1 of 2 | - | - | - | - | - | - |")
    with pytest.raises(AnalysisError, match="round: nothing to draw, no round written yet"):
        plot_curves(load([started.path]).settings, tmp_path / "none.png")
    proc = mpidrl(["plot", str(tmp_path / "real.h5"), "-o", str(tmp_path / "f.png"), "--x", "sim_time"], check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no simulated clock" in proc.stderr
    assert not (tmp_path / "f.png").exists()


def test_report_tables_and_figures(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for seed in (1, 2):
        fake_run(runs / f"es{seed}.h5", seed=seed, downlink=1040)
    fake_run(runs / "nigt.h5", seed=1, sim=True, control=32, sets=['algo.name="rennala-nigt"', 'time.mode="simulated"'])
    md = report(runs, tmp_path / "out", stat="iqm", seed=3)
    text = md.read_text()
    assert "3 run file(s) in 2 setting(s)" in text and "IQM over trials, 95 % bootstrap band" in text
    assert "final reward IQM [95 % bootstrap CI]" in text and "[report.csv](report.csv)" in text
    with (tmp_path / "out" / "report.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == CSV_COLUMNS and [r["setting"] for r in table] == ["es", "rennala-nigt"]
    es, nigt = table
    assert (es["trials"], es["uplink_bytes_per_agent_round"], es["downlink_bytes_per_agent_round"]) == (
        "4",
        "8.0",
        "1040.0",
    )
    assert float(es["total_bytes_per_agent"]) == 4 * (8 + 1040) and es["sim_time_end"] == ""
    assert float(nigt["control_bytes_per_agent_round"]) == 32 and float(nigt["sim_time_end"]) == 8.0
    low, center, high = (float(es[f"final_reward_{k}"]) for k in ("iqm_ci_low", "iqm", "iqm_ci_high"))
    assert low <= center <= high and float(es["final_reward_p10"]) <= float(es["final_reward_p90"])
    for name in ("reward.png", "curves_round.png"):
        assert (tmp_path / "out" / name).stat().st_size > 10_000


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
    assert len(rows) == 2 and rows[0].startswith("| es algo.sigma=0.05 |") and "| 1 (1) | 2 | 4 |" in rows[0]
    # the table agrees with the per-run summary of the same file
    single = summary_table([read_run(runs / "sigma0.2.h5")]).splitlines()[2].split("|")
    final, up_bytes = single[8].strip(), single[10].strip()
    assert float(rows[1].split("|")[8].split()[0]) == pytest.approx(float(final), abs=0.006)
    assert f"| {up_bytes} |" in rows[1]
    for name in ("reward.png", "curves_round.png", "report.csv"):
        assert (tmp_path / "sweep" / "report" / name).stat().st_size > 200
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = mpidrl(["report", str(empty)], check=False)
    assert proc.returncode == 2 and "no readable mpidrl run files" in proc.stderr


def test_analysis_scripts_run_on_small_run_files(tmp_path, monkeypatch, capsys):
    sim = fake_run(tmp_path / "sim.h5", sim=True, rounds=12, sets=['algo.name="rennala-nigt"', 'time.mode="simulated"'])
    es = fake_run(tmp_path / "es.h5", rounds=12)
    espc = fake_run(tmp_path / "espc.h5", rounds=12, sets=['algo.name="espc"', "algo.m=1", "algo.k=2"])
    calls = {
        "pg_time.py": [sim, es, "-o", tmp_path / "t.png", "--x", "wall_time", "--target", "5"],
        "pg_table.py": ["--target", "5", "--at", "end", f"{sim}=a", str(sim)],
        "pg_final.py": [sim],
        "pg_kappa.py": ["--target", "5", "-o", tmp_path / "k.png", f"0={sim}", f"1={sim}"],
        "espc_compare.py": [es, espc, "-o", tmp_path / "e.png", "--tail", "2", "--start", "2"],
        "fig_ch3.py": [es, "-o", tmp_path / "f.png", "--cumulative"],
    }
    for script, args in calls.items():
        monkeypatch.setattr(sys, "argv", [script, *map(str, args)])
        runpy.run_path(str(ROOT / "analysis" / script), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("wrote") == 4 and "first reaches 5 at wall_time" in out
    # trial 0's return r + 0.05 smoothed over 5 rounds reaches 5 at round 8 (sim_time 16), trial 1's at once
    assert "| a | 2 | 2.0 | 9.0 (2.0-16.0), 2/2 | 12 +- 5 | 14 +- 5 | 24.0 |" in out
    assert "ESPC n=2 m=1 k=2" in out and "| dql |" not in out and "| es | discounted reward |" in out


def test_edge_comparison_script(tmp_path, monkeypatch, capsys):
    sim = ['time.mode="simulated"', "time.h=0.01"]
    runs = tmp_path / "runs"
    runs.mkdir()
    fake_run(runs / "ib.h5", sim=True, rounds=12, sets=[*sim, 'time.network="infiniband"'])
    fake_run(runs / "lte.h5", sim=True, rounds=12, sets=[*sim, 'time.network="lte"', 'algo.name="dql"'])
    table = tmp_path / "t.md"
    args = [runs, "-o", tmp_path / "e.png", "--target", "5", "--table", table, "--title", "test"]
    monkeypatch.setattr(sys, "argv", ["edge_comparison.py", *map(str, args)])
    runpy.run_path(str(ROOT / "analysis" / "edge_comparison.py"), run_name="__main__")
    out = capsys.readouterr().out
    # trial 1 starts at 10.05, so the mean over trials is at 5.05 after the first round (sim_time 2); trial 0's
    # smoothed curve reaches 5 at round 8 (sim_time 16): median 9. The fake runs count no episodes.
    assert "| dql |  | 2 (1) |" in out and "| es | 2 (1) |  |" in out, out
    assert "| es | infiniband | 2 | 2/2 | 9 | 1 | 0 | 2 | 8 | 40 | 0 | 14.05 | 12 |" in out
    assert table.read_text().strip() in out and (tmp_path / "e.png").stat().st_size > 1000


def test_edge_comparison_places_follow_each_networks_times():
    edge = runpy.run_path(str(ROOT / "analysis" / "edge_comparison.py"))
    times = {("es", "lte"): 1.0, ("es", "infiniband"): 3.0, ("lapg", "lte"): 2.0, ("lapg", "infiniband"): 0.5}
    times |= {("dql", "lte"): np.inf, ("dql", "infiniband"): 0.5}
    rows = [{"algorithm": a, "network": net, "time": t} for (a, net), t in times.items()]
    lines = edge["pivot"](rows, 5, "return").splitlines()
    assert lines[0] == "| algorithm | lte: time to 5 (place) | infiniband: time to 5 (place) |"
    # rows in the fixed order (value-based, ES family, policy gradients); the ordering flips between the
    # networks; equal times share a place; a network where the target is never reached has no place
    assert lines[2:] == ["| dql | - | 0.5 (1) |", "| es | 1 (1) | 3 (3) |", "| lapg | 2 (2) | 0.5 (1) |"]


def test_step_cost_times_steps_of_the_configured_environment_and_policy(tmp_path):
    step_cost = runpy.run_path(str(ROOT / "analysis" / "step_cost.py"))
    grid = ROOT / "configs" / "report" / "fig3_4_simplegrid_dql.toml"
    pg = ROOT / "configs" / "edge" / "simplegrid_pg.toml"
    per_step, cap = step_cost["seconds_per_step"](str(grid), steps=500, repeats=3)
    assert cap == 100 and 0 < per_step < 0.01
    # the 32-32 stochastic MLP of the policy gradients costs more a step than the grid's Q table
    assert step_cost["seconds_per_step"](str(pg), steps=500, repeats=3)[0] > per_step


def test_plot_by_draws_one_panel_per_network_with_one_colour_per_label(tmp_path, monkeypatch):
    import mpidrl.figures as figures

    sim = ['time.mode="simulated"', "time.h=0.01"]
    for name, net, algo in [("a", "infiniband", "es"), ("b", "lte", "es"), ("c", "lte", "dql")]:
        sets = [*sim, f'time.network="{net}"', f'algo.name="{algo}"']
        low = (lambda s, t, r, a: r - 50) if algo == "dql" else None  # dql far below es: only in the lte panel
        fake_run(tmp_path / f"{name}.h5", sim=True, rounds=6, sets=sets, reward=low)
    settings = load([tmp_path]).settings
    for s in settings:
        s.label = s.algo
    drawn = {}
    monkeypatch.setattr(figures, "_finish", lambda fig, legend, style, title, out: drawn.update(fig=fig, legend=legend))
    figures.plot_by(settings, tmp_path / "p.png", "time.network", order=["dql", "es"])
    axes = drawn["fig"].axes
    assert [ax.get_title() for ax in axes] == ["time.network = infiniband", "time.network = lte"]
    assert axes[0].get_ylim() == axes[1].get_ylim() and axes[0].get_ylim()[0] < -45  # one scale for all panels
    # the labels of ``order`` take the colours first: dql the cycle's first, es its second, in every panel
    cycle = figures._pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    assert {line.get_color() for line in axes[0].lines} == {cycle[1]}
    assert {line.get_color() for line in axes[1].lines} == {cycle[0], cycle[1]}
    assert [s.label for s in drawn["legend"]] == ["es", "dql"]  # one legend entry per label
    figures._pyplot().close(drawn["fig"])


def test_pg_grid_tables_of_a_sweep(tmp_path, monkeypatch, capsys):
    # agent-mean return 100 seed + 10 trial + round + 0.05 (2 agents); the last 2 of 4 rounds average 2.5
    runs = tmp_path / "sweep" / "runs"
    for folder, sigma, seeds in (("a", 0.1, (1, 2)), ("b", 0.2, (3,))):
        (runs / folder).mkdir(parents=True)
        for s in seeds:
            fake_run(runs / folder / f"seed{s}.h5", seed=s, sigma=sigma, sets=["algo.episodes=2"])
    grid = runpy.run_path(str(ROOT / "analysis" / "pg_grid.py"))
    args = ["pg_grid.py", str(tmp_path / "sweep"), "--rows", "algo.sigma", "--cols", "algo.episodes", "--last", "2"]
    monkeypatch.setattr(sys, "argv", args)
    grid["main"]()
    out = capsys.readouterr().out
    half = scipy.stats.t.ppf(0.975, 3) * np.std([102.55, 112.55, 202.55, 212.55], ddof=1) / 2
    assert f"| 0.1 | 157.6 +- {half:.1f} (4) |" in out
    assert "| 0.2 | **307.6 +- 63.5 (2)** |" in out  # t(0.975, 1) * 10 / sqrt(2) / sqrt(2) = 63.5
    # the trial-mean curve of sigma 0.1 is 155.05 + round: it reaches 156 in round 2 (sigma 0.2 at once),
    # never 1000
    monkeypatch.setattr(sys, "argv", [*args, "--rounds-to", "156", "--smooth", "1", "--digits", "0", "--best", "min"])
    grid["main"]()
    out = capsys.readouterr().out
    assert "| 0.1 | 2 |" in out and "| 0.2 | **1** |" in out
    monkeypatch.setattr(sys, "argv", [*args, "--rounds-to", "1000"])
    grid["main"]()
    assert "| 0.1 | inf |" in capsys.readouterr().out


def test_espc_settings_pairs_each_espc_run_with_the_es_run_of_its_settings(tmp_path, monkeypatch, capsys):
    # ES's agent-mean reward is 10 trial + round + 0.1 (+ 100 with zero init); each ESPC setting adds a
    # known offset to the ES run it must be paired with (the one of the same init; ES has no tail)
    offsets = {("random", "exact"): lambda r: 3, ("random", "shifted"): lambda r: -1}
    offsets |= {("zeros", "exact"): lambda r: r - 1.5, ("zeros", "shifted"): lambda r: 0}
    for init in ("random", "zeros"):
        base = 100 if init == "zeros" else 0
        (tmp_path / "es" / "runs" / init).mkdir(parents=True)
        fake_run(
            tmp_path / "es" / "runs" / init / "seed0.h5",
            sets=[f'policy.init="{init}"'],
            reward=lambda s, t, r, a, base=base: base + 10 * t + r + a / 5,
        )
        for tail in ("exact", "shifted"):
            up = offsets[init, tail]
            (tmp_path / "espc" / "runs" / f"{init}_{tail}").mkdir(parents=True)
            fake_run(
                tmp_path / "espc" / "runs" / f"{init}_{tail}" / "seed0.h5",
                sets=['algo.name="espc"', "algo.m=1", f'policy.init="{init}"', f'algo.binomial_tail="{tail}"'],
                reward=lambda s, t, r, a, base=base, up=up: base + 10 * t + r + a / 5 + up(r),
            )
    script = runpy.run_path(str(ROOT / "analysis" / "espc_settings.py"))
    args = ["espc_settings.py", str(tmp_path / "espc"), str(tmp_path / "es"), "--last", "2", "--start", "1"]
    monkeypatch.setattr(sys, "argv", args)
    script["main"]()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| algo.binomial_tail | policy.init | ES, last rounds | ESPC, last rounds |")
    half = scipy.stats.t.ppf(0.975, 1) * np.std([2.6, 12.6], ddof=1) / np.sqrt(2)  # ES random, 2 trials
    assert lines[2] == f"| exact | random | 7.6 +- {half:.1f} | 10.6 +- {half:.1f} | 3.0 +- 0.0 | 100 % |"
    # zero init: ESPC - ES = round - 1.5, 0.5 and 1.5 over the last 2 rounds, above in rounds 2-4 but 2
    assert lines[3] == f"| exact | zeros | 107.6 +- {half:.1f} | 108.6 +- {half:.1f} | 1.0 +- 0.0 | 67 % |"
    assert lines[4] == f"| shifted | random | 7.6 +- {half:.1f} | 6.6 +- {half:.1f} | -1.0 +- 0.0 | 0 % |"
    assert lines[5].endswith("| 0.0 +- 0.0 | 0 % |")


def test_plot_draws_the_metrics_asked_for_and_names_the_choices(tmp_path, monkeypatch):
    import mpidrl.figures as figures

    fake_run(tmp_path / "a.h5", seed=1)
    drawn = {}
    monkeypatch.setattr(figures, "_finish", lambda fig, legend, style, title, out: drawn.update(fig=fig) or out)
    plot_curves(load([tmp_path]).settings, tmp_path / "r.png", metrics=["return", "uplink_bytes"])
    axes = [ax for ax in drawn["fig"].axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in axes] == [figures.LABELS["return"], figures.LABELS["uplink_bytes"]]
    # the trial-mean return of fake_run: 100 seed + 10 trial + round + 0.05, averaged over its 2 trials
    assert np.allclose(axes[0].lines[0].get_ydata(), 105.05 + np.arange(4))
    figures._pyplot().close(drawn["fig"])
    with pytest.raises(AnalysisError, match="metrics: steps: expected some of reward, "):
        plot_curves(load([tmp_path]).settings, tmp_path / "x.png", metrics=["steps"])
    proc = mpidrl(["plot", str(tmp_path / "a.h5"), "-o", str(tmp_path / "f.png"), "--metrics", "steps"], check=False)
    assert proc.returncode == 2 and "metrics: steps: expected some of" in proc.stderr
    assert not (tmp_path / "f.png").exists()
    # the help names every metric that can be drawn
    usage = " ".join(mpidrl(["plot", "--help"]).stdout.split())
    assert all(m in usage for m in figures.LABELS)
    mpidrl(["plot", str(tmp_path / "a.h5"), "-o", str(tmp_path / "f.png"), "--metrics", "return"])
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_pg_episodes_gives_steps_per_episode_and_return_per_step(tmp_path, monkeypatch, capsys):
    # 2 agents, 6 rounds; agent a has 1 + a episodes a round, each of 10 (r + 1) steps earning 2 a step
    cfg = load_config(None, ['algo.name="rennala-nigt"', "agents.n=2", "run.trials=1", "env.gamma=0.99"])
    w = RunWriter(tmp_path / "pg.h5", {"config": cfg.to_json(), "seed": 0, "n_agents": 2}, 1, 2)
    for r in range(6):
        episodes = np.array([1.0, 2.0])
        w.write_round(
            0,
            r,
            {"reward": np.zeros(2), "return": np.full(2, 20.0 * (r + 1)), "episodes": episodes,
             "steps": 10.0 * (r + 1) * episodes, "wall_time": r + 1.0},
        )  # fmt: skip
    w.end_trial(0)
    w.close("complete")
    script = runpy.run_path(str(ROOT / "analysis" / "pg_episodes.py"))
    args = ["pg_episodes.py", str(tmp_path / "pg.h5"), "--keys", "env.gamma", "--smooth", "2", "--last", "3"]
    monkeypatch.setattr(sys, "argv", args)
    script["main"]()
    lines = capsys.readouterr().out.splitlines()
    # peak of the 2-round mean: (100 + 120) / 2 at round 6; last 3 rounds: returns 80, 100, 120 and
    # episodes of 40, 50, 60 steps, 3 a round (450 steps / 9 episodes = 50), earning 2.00 a step
    assert lines[2] == f"| {tmp_path / 'pg.h5'} | 0 | 0.99 | 6 | 110 (6) | 100.0 | 50 | 2.00 |"


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("pg_episodes.py", ["README.md"], "README.md: not a readable HDF5 file"),
        ("pg_final.py", ["missing.h5"], "missing.h5: no such file"),
        ("step_cost.py", ["README.md"], "README.md: not valid TOML"),
    ],
)
def test_analysis_scripts_turn_bad_input_into_one_line(script, args, message):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "analysis" / script), *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.startswith(f"{script}: error: {message}") and proc.stderr.count("\n") == 1, proc.stderr
