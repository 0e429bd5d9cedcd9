"""``mpidrl eval``: the learned policy of a run file, played again.

A run file keeps, for each trial (or batch of trials run together), the learner's state at its end
(``/final/<first trial of the batch>``). :func:`saved_learner` rebuilds the learner side of the run's
algorithm from the run's config through the registry and loads that state (a batch's learner state holds
one row per trial); :func:`episodes` plays its greedy policy (``learner.actor()``) for some episodes,
and :func:`record` plays one while rendering it (``render_mode="rgb_array"``) into an MP4 (imageio with
imageio-ffmpeg) or a GIF (Pillow): the ``video`` extra, ``pip install 'mpidrl[video]'``.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mpidrl import registry, rng
from mpidrl.config import Config, ConfigError, from_dict
from mpidrl.envs import EnvSpec, make_env, observation_encoder, rollout
from mpidrl.protocols import Context, TrialLearners
from mpidrl.store import (
    Checkpoint,
    DamagedState,
    RunFileError,
    describe_status,
    load_checkpoint,
    open_file,
    read_final,
    read_run,
)
from mpidrl.validate import environment

GIF_FRAMES = 300
"""A GIF keeps at most this many frames of the episode (every k-th frame, played k times as long)."""


class EvalError(ValueError):
    """A policy that cannot be played or recorded; the message is one line."""


@dataclass
class Saved:
    """The learner of one trial of a run, rebuilt from its saved state."""

    cfg: Config
    env_spec: EnvSpec
    trial: int
    """0-based"""
    learner: Any
    state: Checkpoint
    final: bool
    """the trial's final state; False: the last checkpoint of a run that did not finish the trial"""

    @property
    def where(self) -> str:
        what = "final state" if self.final else "last checkpoint"
        return f"{what}, after round {self.state.round} of {self.cfg.run.rounds}"


def _saved_state(path: Path, cfg: Config, trial: int) -> tuple[Checkpoint, bool]:
    """The state trial ``trial`` (0-based) ended in, else the checkpoint of the batch it is in."""
    first = trial - trial % cfg.run.trial_batch
    with open_file(path) as f:
        status = describe_status({k: f.attrs[k] for k in f.attrs})
        try:
            finals = read_final(f)
            if first in finals:
                return finals[first], True
            ckpt, _ = load_checkpoint(f, cfg.run.trials, cfg.run.rounds, cfg.agents.n)
        except DamagedState as exc:
            raise EvalError(f"{path}: trial {trial + 1}'s saved state cannot be read ({exc})") from None
    if ckpt is not None and ckpt.trial - ckpt.trial % cfg.run.trial_batch == first:
        return ckpt, False
    raise EvalError(
        f"{path}: trial {trial + 1} has no final state and no checkpoint (the run is {status}); "
        "evaluate a trial that finished"
    )


def saved_learner(path: str | Path, trial: int = 0) -> Saved:
    """The learner of trial ``trial`` (0-based) of a run file, with its final state loaded (or, for a
    trial the run did not finish, the state of its last checkpoint)."""
    path = Path(path)
    try:
        run = read_run(path)
    except RunFileError as exc:
        raise EvalError(str(exc)) from None
    try:
        cfg = from_dict(run.config)
        spec = registry.lookup(cfg.algo.name)
    except ConfigError as exc:
        raise EvalError(f"{path}: its config no longer loads ({exc})") from None
    if not 0 <= trial < cfg.run.trials:
        raise EvalError(f"--trial: {path} has trials 1 to {cfg.run.trials}, not {trial + 1}")
    state, final = _saved_state(path, cfg, trial)
    try:
        env_spec = environment(cfg)
    except ConfigError as exc:
        raise EvalError(str(exc)) from None
    first = trial - trial % cfg.run.trial_batch
    last = min(first + cfg.run.trial_batch, cfg.run.trials)
    if last - first > 1:  # trials run together: the batch's learners, loaded as the run loads them
        batch = TrialLearners([spec.learner(Context(cfg, t, env_spec)) for t in range(first, last)])
        batch.load_state_dict(state.learner)
        learner = batch.learners[trial - first]
    else:
        learner = spec.learner(Context(cfg, trial, env_spec))
        learner.load_state_dict(state.learner)
    return Saved(cfg, env_spec, trial, learner, state, final)


def _actor(saved: Saved) -> Callable[[np.ndarray], Any]:
    actor = saved.learner.actor()
    if actor is None:
        raise EvalError(f"algo.name: {saved.cfg.algo.name} has no greedy policy to play (its learner gives no actor)")
    return actor


def episodes(saved: Saved, n: int, seed: int = 0) -> list[tuple[int, float, int]]:
    """(reset seed, undiscounted return, steps) of ``n`` episodes of the greedy policy, from seeds
    ``seed``, ``seed + 1``, ..."""
    actor = _actor(saved)
    env = make_env(saved.cfg.env, rng.LEARNER)
    encode = observation_encoder(saved.env_spec)
    try:
        played = [rollout(env, actor, encode, saved.cfg.env.gamma, seed + i) for i in range(n)]
    finally:
        env.close()
    return [(seed + i, e.undiscounted, e.steps) for i, e in enumerate(played)]


class Video:
    """Frames written to an MP4 (streamed through imageio-ffmpeg) or a GIF (Pillow, every k-th frame so
    that at most :data:`GIF_FRAMES` are kept for an episode of up to ``length`` steps)."""

    def __init__(self, path: Path, fps: float, length: int | None = None):
        self.path, self.fps, self.kind = path, fps, path.suffix.lower()
        if self.kind == ".mp4":
            self.writer = imageio_writer(path, fps)
        else:
            self.step = max(1, -(-(length or 0) // GIF_FRAMES))
            self.images: list[Any] = []
            self.seen = 0

    def append(self, frame: np.ndarray) -> None:
        if self.kind == ".mp4":
            self.writer.append_data(frame)
        else:
            if self.seen % self.step == 0:
                from PIL import Image

                self.images.append(Image.fromarray(frame).quantize(colors=64))
            self.seen += 1

    def close(self) -> None:
        if self.kind == ".mp4":
            self.writer.close()
        else:
            first, rest = self.images[0], self.images[1:]
            first.save(self.path, save_all=True, append_images=rest, duration=int(1000 * self.step / self.fps), loop=0)


def imageio_writer(path: Path, fps: float) -> Any:
    import imageio.v2 as imageio

    return imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=2, ffmpeg_log_level="error")


def check_video(path: Path) -> None:
    """EvalError (one line) unless ``path`` ends in .mp4 or .gif and the ``video`` extra can write it."""
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise EvalError(f"--video: {path} must end in .mp4 or .gif")
    try:
        if suffix == ".mp4":
            import imageio.v2  # noqa: F401
            import imageio_ffmpeg  # noqa: F401  (the MP4 encoder imageio uses)
        else:
            import PIL.Image  # noqa: F401
    except ImportError as exc:
        raise EvalError(
            f"--video: writing {suffix[1:].upper()} needs the video extra (pip install 'mpidrl[video]'): {exc}"
        ) from None


def record(saved: Saved, path: str | Path, seed: int = 0) -> tuple[float, int]:
    """Play one episode from ``seed`` while rendering it, write it to ``path`` (.mp4 or .gif); its return
    and steps."""
    path = Path(path)
    check_video(path)
    actor = _actor(saved)
    cfg = saved.cfg
    rendering = dataclasses.replace(cfg.env, kwargs={**cfg.env.kwargs, "render_mode": "rgb_array"})
    for name in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER"):  # pygame draws off screen; no display or sound needed
        os.environ.setdefault(name, "dummy")
    try:
        with warnings.catch_warnings():  # gymnasium's warning about the render mode: the refusal below says it
            warnings.simplefilter("ignore")
            env = make_env(rendering, rng.LEARNER)
        obs, _ = env.reset(seed=seed)
        frame = env.render()
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise EvalError(f"--video: {cfg.env.id} cannot render frames (render_mode='rgb_array'): {message}") from None
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        env.close()
        raise EvalError(f"--video: {cfg.env.id} gives no rgb_array frames to record")
    encode = observation_encoder(saved.env_spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    length = cfg.env.max_steps or (env.spec.max_episode_steps if env.spec else None)
    video = Video(path, float(env.metadata.get("render_fps") or 30), length)
    total, steps = 0.0, 0
    try:
        video.append(frame)
        while True:
            obs, reward, terminated, truncated, _ = env.step(actor(encode(obs)))
            video.append(env.render())
            total, steps = total + float(reward), steps + 1
            if terminated or truncated:
                break
    finally:
        env.close()
        video.close()
    return total, steps
