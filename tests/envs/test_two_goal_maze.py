"""Tests for ``MT-TwoGoalMaze-v0`` (:mod:`mtgym.envs.mpte.two_goal_maze`, Farama miniworld, headless)."""

import importlib
import importlib.util
import math
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mtgym  # noqa: F401  (registers the ids)

ENV_ID = "MT-TwoGoalMaze-v0"

# find_spec, not importorskip: importing miniworld before mtgym sets pyglet's headless option would need a display
pytestmark = pytest.mark.skipif(importlib.util.find_spec("miniworld") is None, reason="needs the maze extra")


@pytest.fixture(scope="module")
def env():
    env = gym.make(ENV_ID)
    yield env
    env.close()


def maze_of(env):
    """The miniworld env under the MT env."""
    return env.unwrapped.env


def test_spaces_and_registration(env):
    assert env.spec.max_episode_steps == 200
    assert env.spec.kwargs == {"size_x": 3, "size_y": 3, "task_seed": 169}
    assert env.action_space == spaces.Discrete(3)
    # the reference declared Discrete(1) while emitting [g] (README, "Differences from mtrl and mtenv")
    assert env.observation_space["task_obs"] == spaces.Discrete(2)
    env_obs_space = env.observation_space["env_obs"]
    assert env_obs_space.shape == (4,) and env_obs_space.dtype == np.float32
    np.testing.assert_allclose(env_obs_space.low, [-4 / 3 * 2.1 - 1, -4 / 3 * 2.1 - 1, -math.pi, -1], rtol=1e-6)
    np.testing.assert_allclose(env_obs_space.high, [4 / 3 * 2.1 - 1, 4 / 3 * 2.1 - 1, math.pi, 1], rtol=1e-6)
    assert env.unwrapped.n_tasks == 2


def test_reset_observation(env):
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    maze = maze_of(env)
    x, z, _, hint = obs["env_obs"]
    assert x == pytest.approx(maze.agent.pos[0] / 3 * 2.1 - 1, abs=1e-6)
    assert z == pytest.approx(maze.agent.pos[2] / 3 * 2.1 - 1, abs=1e-6)
    assert hint == 0.0 and info["total_reward"] == 0.0
    # the start heading is one of k * pi/4 - pi, and the agent starts >= 2 away from both boxes
    k = (maze.agent.dir + math.pi) / (math.pi / 4)
    assert k == pytest.approx(round(k)) and 0 <= round(k) < 8
    assert min(maze._box_distance(box) for box in maze.boxes) >= 2.0
    assert obs["task_obs"] == env.unwrapped.get_task_state() == maze.goal


def place_next_to(env, box_index, offset=1.5):
    maze = maze_of(env)
    box = maze.boxes[box_index]
    maze.agent.pos = box.pos + np.array([offset, 0.0, 0.0])
    return maze


@pytest.mark.parametrize("goal", [0, 1])
def test_reaching_goal_box_gives_plus_one(env, goal):
    env.reset(seed=1, options={"task_state": goal})
    maze = place_next_to(env, goal)
    maze.boxes[1 - goal].pos = np.array([100.0, 0.0, 100.0])  # far away
    _, reward, terminated, truncated, info = env.step(0)  # a turn: the agent stays where it was put
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["success"] == 1.0 and info["is_success"] is True and info["total_reward"] == 1.0


@pytest.mark.parametrize("goal", [0, 1])
def test_reaching_other_box_gives_minus_one_and_wins_ties(env, goal):
    env.reset(seed=1, options={"task_state": goal})
    maze = place_next_to(env, 1 - goal)
    maze.boxes[goal].pos = np.array([100.0, 0.0, 100.0])
    _, reward, terminated, _, info = env.step(1)
    assert (reward, terminated) == (-1.0, True) and info["is_success"] is False
    # both boxes within reach: the wrong-box check runs second and wins
    env.reset(seed=1, options={"task_state": goal})
    maze = maze_of(env)
    maze.boxes[goal].pos = maze.agent.pos + np.array([1.0, 0.0, 0.0])
    maze.boxes[1 - goal].pos = maze.agent.pos + np.array([-1.0, 0.0, 0.0])
    _, reward, terminated, *_ = env.step(0)
    assert (reward, terminated) == (-1.0, True)


def test_far_from_boxes_gives_zero(env):
    env.reset(seed=2)
    _, reward, terminated, truncated, info = env.step(0)
    assert (reward, terminated, truncated) == (0.0, False, False) and info["success"] == 0.0


@pytest.mark.parametrize("goal", [0, 1])
def test_hint_when_facing_west(env, goal):
    env.reset(seed=3, options={"task_state": goal})
    maze = maze_of(env)
    maze.agent.dir = math.pi - math.pi / 4  # one +45 degree turn away from facing west (-x)
    obs, *_ = env.step(0)
    assert obs["env_obs"][2] == pytest.approx(-math.pi / 2, abs=1e-5)
    assert obs["env_obs"][3] == (1.0 if goal == 1 else -1.0)
    obs, *_ = env.step(0)  # facing elsewhere: no hint
    assert obs["env_obs"][3] == 0.0


def test_empty_mu_hides_task():
    env = gym.make(ENV_ID, empty_mu=True)
    env.reset(seed=3, options={"task_state": 1})
    maze = maze_of(env)
    maze.agent.dir = math.pi - math.pi / 4
    obs, *_ = env.step(0)
    assert obs["env_obs"][3] == 0.0 and obs["task_obs"] == 0 and env.unwrapped.get_task_state() == 1


def test_actions_turn_45_degrees_and_move_051(env):
    env.reset(seed=4)
    maze = maze_of(env)
    for box in maze.boxes:
        box.pos = np.array([100.0, 0.0, 100.0])
    maze.agent.pos = np.array([0.0, 0.0, 0.0])
    maze.agent.dir = 0.0  # facing +x
    obs, *_ = env.step(2)
    np.testing.assert_allclose(maze.agent.pos, [0.51, 0.0, 0.0], atol=1e-12)
    assert obs["env_obs"][0] == pytest.approx(0.51 / 3 * 2.1 - 1)
    env.step(0)
    assert maze.agent.dir == pytest.approx(math.pi / 4)
    env.step(1)
    env.step(1)
    assert maze.agent.dir == pytest.approx(-math.pi / 4)
    # walls block: walk east into the metal-grill strip and stop at its far wall (x = 4)
    maze.agent.dir = 0.0
    for _ in range(20):
        env.step(2)
    assert 3.0 < maze.agent.pos[0] < 4.0 - maze.agent.radius + 1e-9


def test_every_reset_draws_goal_from_task_rng():
    env = gym.make(ENV_ID)
    goals = [env.reset(seed=0)[0]["task_obs"]] + [env.reset()[0]["task_obs"] for _ in range(39)]
    assert set(goals) == {0, 1} and 8 <= sum(goals) <= 32  # Binomial(40, 1/2)
    # the west wall follows the goal of the episode
    wall = {room.wall_tex_name for room in maze_of(env).rooms if room.max_x <= -3}
    assert wall == {("wood_planks", "slime")[goals[-1]]}


def test_same_seed_same_episode_and_seed_task_decouples():
    def rollout(seed, task_seed=None, n=40):
        env = gym.make(ENV_ID)
        if task_seed is not None:
            env.unwrapped.seed_task(task_seed)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [(obs["env_obs"].tolist(), obs["task_obs"])]
        for _ in range(n):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            out.append((obs["env_obs"].tolist(), obs["task_obs"], reward))
            if terminated or truncated:
                obs, _ = env.reset()
                out.append((obs["env_obs"].tolist(), obs["task_obs"]))
        return out

    assert rollout(5) == rollout(5)
    assert rollout(5) != rollout(6)
    # the goal sequence over many seeds is not constant (seeded resets draw the goal from the reseeded task RNG)
    goals = {gym.make(ENV_ID).reset(seed=s)[0]["task_obs"] for s in range(10)}
    assert goals == {0, 1}
    # after seed_task the task stream is the caller's: equal task seeds give equal goals whatever the env seed
    env_a, env_b = gym.make(ENV_ID), gym.make(ENV_ID)
    env_a.unwrapped.seed_task(11)
    env_b.unwrapped.seed_task(11)
    goals_a = [env_a.reset(seed=s)[0]["task_obs"] for s in range(10)]
    goals_b = [env_b.reset(seed=100 + s)[0]["task_obs"] for s in range(10)]
    assert goals_a == goals_b


def test_fixed_task_mode():
    env = gym.make(ENV_ID, resample_task_on_reset=False, initial_task_state=1)
    assert [env.reset(seed=s)[0]["task_obs"] for s in range(5)] == [1] * 5


def test_time_limit_200():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    for t in range(200):
        # turning in place never reaches a box: the 200-step limit must end the episode
        _, _, terminated, truncated, _ = env.step(0)
        assert not terminated
        assert truncated == (t == 199)


def test_invalid_arguments():
    env = gym.make(ENV_ID)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        env.reset(options={"task_state": 2})
    with pytest.raises(ValueError, match="obs_type"):
        gym.make(ENV_ID, obs_type="rgb")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="Invalid action"):
        env.unwrapped.step(3)


def test_image_observations_show_the_goal_wall():
    env = gym.make(ENV_ID, obs_type="image", render_mode="rgb_array")
    assert env.observation_space["env_obs"] == spaces.Box(0, 255, (64, 64, 3), np.uint8)
    frames = []
    for goal in (0, 1):
        env.reset(seed=7, options={"task_state": goal})
        maze_of(env).agent.dir = math.pi - math.pi / 4
        obs, *_ = env.step(0)
        assert obs in env.observation_space
        frames.append(obs["env_obs"].astype(int))
    # same seed, same layout and pose: only the west wall texture differs
    assert np.abs(frames[0] - frames[1]).mean() > 10
    assert env.render().shape == (256, 256, 3)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_env_checkers():
    env = gym.make(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(ENV_ID).unwrapped, warn=False)


def test_vector_make():
    venv = gym.make_vec(ENV_ID, num_envs=2)
    obs, _ = venv.reset(seed=0)
    assert obs["env_obs"].shape == (2, 4) and obs["task_obs"].shape == (2,)
    obs, reward, *_ = venv.step(np.array([0, 2]))
    assert reward.shape == (2,)
    venv.close()


def test_missing_miniworld_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "miniworld", None)  # `import miniworld...` now raises ImportError
    monkeypatch.setitem(sys.modules, "miniworld.entity", None)
    monkeypatch.setitem(sys.modules, "miniworld.miniworld", None)
    monkeypatch.delitem(sys.modules, "mtgym.envs.mpte.two_goal_maze", raising=False)
    with pytest.raises(ImportError, match=r"pip install mtgym\[maze\]"):
        gym.make(ENV_ID)
    with pytest.raises(ImportError, match=r"pip install mtgym\[maze\]"):
        importlib.import_module("mtgym.envs.mpte.two_goal_maze")
