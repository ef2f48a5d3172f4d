"""Tests for :class:`mtgym.wrappers.NTasksId`."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mtgym  # noqa: F401  (registers the ids)
from mtgym.wrappers.n_tasks_id import NTasksId
from mtgym.wrappers.sample_random_task import SampleRandomTask

from ._stubs import ScaleTaskEnv


@pytest.mark.parametrize("n_tasks", [1, 10, 100])
def test_task_obs_is_the_id(n_tasks):
    env = NTasksId(gym.make("MT-Bandit-v0"), n_tasks=n_tasks)
    assert env.observation_space["task_obs"] == spaces.Discrete(n_tasks)
    assert env.observation_space["env_obs"] == env.unwrapped.observation_space["env_obs"]
    env.seed_task(15)
    for _ in range(10):
        env.reset_task_state()
        task_id = env.get_task_state()
        assert 0 <= task_id < n_tasks and env.sample_task_state() in range(n_tasks)
        obs, _ = env.reset(seed=5)
        assert obs["task_obs"] == task_id and obs in env.observation_space
        # the inner env runs the cached task with that id
        np.testing.assert_array_equal(env.unwrapped.get_task_state(), env.tasks[task_id])
        for _ in range(3):
            obs, *_ = env.step(env.action_space.sample())
            assert obs["task_obs"] == task_id


def test_no_initial_task_needed_and_default_applied_on_first_reset():
    env = NTasksId(ScaleTaskEnv(), n_tasks=3)
    with pytest.raises(RuntimeError, match="No task is set"):
        env.get_task_obs()
    obs, _ = env.reset(seed=0)
    assert obs["task_obs"] == 0 and env.unwrapped.get_task_state() == env.tasks[0]
    env = NTasksId(ScaleTaskEnv(), n_tasks=3, initial_task_state=2)
    obs, _ = env.reset(seed=0)
    assert obs["task_obs"] == 2 and env.unwrapped.get_task_state() == env.tasks[2]


def test_reset_option_switches_by_id_and_plain_reset_keeps_it():
    env = NTasksId(ScaleTaskEnv(), n_tasks=5)
    obs, _ = env.reset(seed=0, options={"task_state": 4})
    assert obs["task_obs"] == 4
    _, reward, *_ = env.step(2)
    assert reward == pytest.approx(2 * env.tasks[4])
    obs, _ = env.reset()
    assert obs["task_obs"] == 4


def test_task_set_reproducible_from_seeded_reset():
    a, b = NTasksId(ScaleTaskEnv(), n_tasks=4), NTasksId(ScaleTaskEnv(), n_tasks=4)
    a.reset(seed=9, options={"task_state": 1})  # the set is drawn after seeding, even when the first call switches task
    b.reset(seed=9)
    assert a.tasks == b.tasks


@pytest.mark.parametrize("bad", [-1, 5, 1.0])
def test_invalid_id_names_range(bad):
    env = NTasksId(ScaleTaskEnv(), n_tasks=5)
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        env.set_task_state(bad)


@pytest.mark.parametrize("n_tasks", [-1, 0])
def test_invalid_n_tasks(n_tasks):
    with pytest.raises(ValueError, match="n_tasks must be an integer >= 1"):
        NTasksId(ScaleTaskEnv(), n_tasks=n_tasks)


def test_invalid_initial_task_state():
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        NTasksId(ScaleTaskEnv(), n_tasks=3, initial_task_state=3)


def test_seed_task_seeds_the_new_task_space():
    env = NTasksId(ScaleTaskEnv(), n_tasks=50)
    env.seed_task(3)
    first = [env.observation_space["task_obs"].sample() for _ in range(5)]
    env.seed_task(3)
    assert [env.observation_space["task_obs"].sample() for _ in range(5)] == first


def test_sample_random_task_over_ids():
    env = SampleRandomTask(NTasksId(ScaleTaskEnv(), n_tasks=6))
    ids = [env.reset(seed=0 if i == 0 else None)[0]["task_obs"] for i in range(40)]
    assert set(ids) == set(range(6))


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_env_checkers():
    check_env(NTasksId(ScaleTaskEnv(), n_tasks=4), skip_render_check=True)
    sb3_check_env(NTasksId(ScaleTaskEnv(), n_tasks=4), warn=False)
