"""The grid worlds: Gymnasium API compliance, dynamics, wind, truncation, Frozen Lake's map."""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mpidrl.envs  # noqa: F401  (registers the grid worlds)
from mpidrl.envs.grids import DOWN, FROZEN_LAKE_5X5, IDS, LEFT, RIGHT, STAY, UP, shortest_path_return


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes_and_spaces_are_discrete(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=False)
    assert env.observation_space == gym.spaces.Discrete(25) and env.action_space == gym.spaces.Discrete(5)
    assert env.spec.max_episode_steps == 100


def run(env, actions, seed=0):
    obs, _ = env.reset(seed=seed)
    out = [(obs, 0.0, False, False)]
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append((obs, r, term, trunc))
    return out


def test_simple_grid_shortest_path_returns_minus_seven():
    env = gym.make("mpidrl/SimpleGrid-v0")
    steps = run(env, [RIGHT] * 4 + [DOWN] * 4)
    assert [s for s, *_ in steps] == [0, 1, 2, 3, 4, 9, 14, 19, 24]
    assert sum(r for _, r, *_ in steps) == -7.0 and steps[-1][2] and not any(t for *_, t in steps)
    assert shortest_path_return(0.9) == pytest.approx(-(1 - 0.9**7) / 0.1)


def test_simple_grid_walls_clip_and_stay_stays():
    env = gym.make("mpidrl/SimpleGrid-v0")
    steps = run(env, [LEFT, UP, STAY, DOWN, RIGHT, STAY])
    assert [s for s, *_ in steps] == [0, 0, 0, 0, 5, 6, 6]
    assert all(r == -1.0 for _, r, *_ in steps[1:])


def test_step_cap_truncates():
    env = gym.make("mpidrl/SimpleGrid-v0", max_episode_steps=3)
    steps = run(env, [STAY] * 3)
    assert [t for *_, t in steps] == [False, False, False, True] and not steps[-1][2]


def test_windy_grid_pushes_up_and_left_independently_with_probability_0_3():
    env = gym.make("mpidrl/WindyGrid-v0", max_episode_steps=None).unwrapped
    env.reset(seed=7)
    pushes = []
    for _ in range(20000):
        env._state = 12  # centre (2, 2): both pushes possible; the action stays put
        s, *_ = env.step(STAY)
        row, col = divmod(s, 5)
        pushes.append((row == 1, col == 1))
    up, left = np.array(pushes).T
    assert up.mean() == pytest.approx(0.3, abs=0.015) and left.mean() == pytest.approx(0.3, abs=0.015)
    assert (up & left).mean() == pytest.approx(0.09, abs=0.01)  # independent


def test_wind_of_down_then_left_pushes_towards_and_away_from_the_goal():
    env = gym.make("mpidrl/WindyGrid-v0", wind=[["down", 0.3], ["left", 0.3]], max_episode_steps=None).unwrapped
    env.reset(seed=7)
    pushes = []
    for _ in range(20000):
        env._state = 12
        s, *_ = env.step(STAY)
        row, col = divmod(s, 5)
        pushes.append((row == 3, col == 1))
    down, left = np.array(pushes).T
    assert down.mean() == pytest.approx(0.3, abs=0.015) and left.mean() == pytest.approx(0.3, abs=0.015)
    assert (down & left).mean() == pytest.approx(0.09, abs=0.01)


def test_a_push_onto_the_goal_ends_the_episode_and_one_off_it_does_not():
    env = gym.make("mpidrl/WindyGrid-v0", wind=[["down", 1.0]]).unwrapped
    env.reset(seed=0)
    env._state = 19  # (3, 4): staying put, the certain push down lands on the goal
    assert env.step(STAY)[1:3] == (0.0, True)
    env = gym.make("mpidrl/WindyGrid-v0", wind=[["left", 1.0]]).unwrapped
    env.reset(seed=0)
    env._state = 23  # (4, 3): the move right reaches the goal, the push left takes the agent off it
    assert env.step(RIGHT)[:3] == (23, -1.0, False)


@pytest.mark.parametrize(
    "wind, message",
    [
        ([["north", 0.3]], "wind direction 'north' is not one of up, down, left, right"),
        ([["up", 1.5]], "wind probability of 'up' must be in [0, 1], got 1.5"),
        ([0.3], "wind must be a list of [direction, probability] pairs"),
    ],
)
def test_bad_wind_is_refused(wind, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make("mpidrl/WindyGrid-v0", wind=wind)


def test_windy_grid_is_seeded_and_clips_at_walls():
    env = gym.make("mpidrl/WindyGrid-v0")
    actions = [RIGHT, DOWN] * 20
    a, b, c = run(env, actions, seed=3), run(env, actions, seed=3), run(env, actions, seed=4)
    assert a == b and a != c
    for s, *_ in run(env, [UP, LEFT] * 10, seed=5):
        assert s == 0  # pushed into the corner's walls, never out of the grid


def test_frozen_lake_map_holes_goal_and_stay():
    env = gym.make("mpidrl/FrozenLake5x5-v0", is_slippery=False)
    assert [row.decode() for row in env.unwrapped.desc.view("S5").ravel()] == list(FROZEN_LAKE_5X5)
    steps = run(env, [STAY, RIGHT, RIGHT, DOWN, DOWN, DOWN, RIGHT, RIGHT, DOWN])
    assert [s for s, *_ in steps] == [0, 0, 1, 2, 7, 12, 17, 18, 19, 24]
    assert steps[-1][1:3] == (1.0, True) and sum(r for _, r, *_ in steps[:-1]) == 0.0
    hole = run(env, [DOWN, RIGHT])
    assert hole[-1][0] == 6 and hole[-1][2] and hole[-1][1] == 0.0


def test_frozen_lake_is_slippery_by_default_but_stay_never_slips():
    env = gym.make("mpidrl/FrozenLake5x5-v0").unwrapped
    assert len(env.P[0][RIGHT]) == 3 and env.P[0][STAY] == [(1.0, 0, 0, False)]
    outcomes = {run(env, [RIGHT], seed=s)[-1][0] for s in range(40)}
    assert outcomes == {0, 1, 5}  # right, or slipped up (wall) or down
