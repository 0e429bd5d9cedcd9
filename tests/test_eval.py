"""mpidrl eval: the learned policy of a run file played again, and recorded as MP4 or GIF."""

from __future__ import annotations

import re

import gymnasium as gym
import h5py
import numpy as np
import pytest
from helpers import write_config

from mpidrl.cli import main
from mpidrl.config import from_dict
from mpidrl.envs import observation_encoder, rollout, spec_of
from mpidrl.policies import make_policy
from mpidrl.store import read_run

CARTPOLE = """
[run]
seed = 7
trials = 2
rounds = 3
checkpoint_every = 1
[env]
id = "CartPole-v1"
[agents]
n = 4
[algo]
name = "es"
sigma = 0.1
[policy]
hidden = [4]
"""
GRID = """
[run]
seed = 2
trials = 3
rounds = 4
trial_batch = 2
[env]
id = "mpidrl/SimpleGrid-v0"
[agents]
n = 3
[algo]
name = "es"
sigma = 0.5
[policy]
hidden = [4]
"""


def run_file(tmp_path, text, name="r.h5"):
    out = tmp_path / name
    assert main(["run", str(write_config(tmp_path / f"{name}.toml", text)), "--out", str(out)]) == 0
    return out


def table(text: str) -> list[tuple[int, float, int]]:
    """(seed, return, steps) of each row of eval's table."""
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([-\d.]+) \| (\d+) \|$", text, re.M)
    return [(int(seed), float(ret), int(steps)) for _, seed, ret, steps in rows]


def replay(path, theta, seeds):
    """Returns of the greedy policy of parameters ``theta`` on the run's environment, played directly."""
    cfg = from_dict(read_run(path).config)
    env = gym.make(cfg.env.id)
    spec = spec_of(env)
    actor = make_policy(cfg.policy, spec).actor(theta)
    return [rollout(env, actor, observation_encoder(spec), 1.0, s).undiscounted for s in seeds]


def test_eval_plays_the_final_policy_of_the_trial_asked_for(tmp_path, capsys):
    out = run_file(tmp_path, CARTPOLE)
    capsys.readouterr()
    assert main(["eval", str(out), "--trial", "2", "--episodes", "3", "--seed", "11"]) == 0
    text = capsys.readouterr().out
    rows = table(text)
    with h5py.File(out) as f:
        theta = f["final/1/learner/theta"][()]
    assert [seed for seed, _, _ in rows] == [11, 12, 13]
    assert [ret for _, ret, _ in rows] == pytest.approx(replay(out, theta, [11, 12, 13]))
    returns = [ret for _, ret, _ in rows]
    assert "greedy policy of its final state, after round 3 of 3" in text
    assert f"mean {np.mean(returns):.3f}, min {min(returns):.3f}, max {max(returns):.3f}" in text


def test_eval_of_a_batch_of_trials_takes_the_trials_row(tmp_path, capsys):
    out = run_file(tmp_path, GRID)
    capsys.readouterr()
    with h5py.File(out) as f:
        stacked = f["final/0/learner/batch/theta"][()]  # trials 1 and 2, run together
        alone = f["final/2/learner/theta"][()]  # trial 3, a batch of one, run as a single trial
    assert stacked.shape[0] == 2 and not np.array_equal(stacked[0], stacked[1])
    for trial, theta in ((2, stacked[1]), (3, alone)):
        assert main(["eval", str(out), "--trial", str(trial), "--episodes", "2"]) == 0
        rows = table(capsys.readouterr().out)
        assert [ret for _, ret, _ in rows] == pytest.approx(replay(out, theta, [0, 1]))


def test_an_unfinished_trial_plays_its_last_checkpoint_or_is_refused(tmp_path, capsys):
    out = run_file(tmp_path, CARTPOLE)
    with h5py.File(out, "a") as f:  # as if the run had stopped in its second trial
        del f["final"]
        f.attrs["status"] = "interrupted"
        ckpt = f["checkpoint"][f["checkpoint"].attrs["current"]]
        theta, at = ckpt["learner/theta"][()], int(ckpt.attrs["round"])
    capsys.readouterr()
    assert main(["eval", str(out), "--trial", "2", "--episodes", "2"]) == 0
    captured = capsys.readouterr()
    warning = f"mpidrl: warning: trial 2 did not finish; playing its last checkpoint, after round {at} of 3"
    assert captured.err == warning + "\n"
    assert [ret for _, ret, _ in table(captured.out)] == pytest.approx(replay(out, theta, [0, 1]))
    assert main(["eval", str(out), "--trial", "1"]) == 2
    assert capsys.readouterr().err == (
        f"mpidrl: error: {out}: trial 1 has no final state and no checkpoint (the run is interrupted); "
        "evaluate a trial that finished\n"
    )


@pytest.mark.parametrize("suffix, magic", [(".gif", b"GIF89a"), (".mp4", b"ftyp")])
def test_video_records_one_episode(tmp_path, capsys, suffix, magic):
    out = run_file(tmp_path, CARTPOLE)
    video = tmp_path / "videos" / f"policy{suffix}"
    assert main(["eval", str(out), "--episodes", "1", "--video", str(video)]) == 0
    text = capsys.readouterr().out
    steps = table(text)[0][2]
    assert f"wrote {video} (one episode from seed 0: return {float(steps):.3f}, {steps} steps)" in text
    assert magic in video.read_bytes()[:12]
    if suffix == ".gif":
        from PIL import Image

        with Image.open(video) as gif:
            assert gif.size == (600, 400) and gif.n_frames > 1


def one_line_error(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("mpidrl: error: ") and message in err and err.count("\n") == 1, err


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    out = run_file(tmp_path, CARTPOLE)
    grid = run_file(tmp_path, GRID, "grid.h5")
    capsys.readouterr()
    one_line_error(capsys, ["eval", str(out), "--trial", "3"], f"--trial: {out} has trials 1 to 2, not 3")
    one_line_error(capsys, ["eval", str(out), "--episodes", "0"], "--episodes: must be >= 1, got 0")
    one_line_error(capsys, ["eval", str(tmp_path / "no.h5")], "no.h5: no such file")
    one_line_error(capsys, ["eval", str(out), "--video", "x.avi"], "--video: x.avi must end in .mp4 or .gif")
    one_line_error(
        capsys,
        ["eval", str(grid), "--video", str(tmp_path / "g.gif")],
        "--video: mpidrl/SimpleGrid-v0 cannot render frames (render_mode='rgb_array')",
    )
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)  # the video extra not installed
    one_line_error(
        capsys,
        ["eval", str(out), "--video", str(tmp_path / "v.mp4")],
        "--video: writing MP4 needs the video extra (pip install 'mpidrl[video]')",
    )
    assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "g.gif").exists()
