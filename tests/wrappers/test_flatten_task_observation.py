"""Tests for :class:`mtgym.wrappers.FlattenTaskObservation`."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mtgym  # noqa: F401  (registers the ids)
from mtgym.wrappers.flatten_task_observation import FlattenTaskObservation
from mtgym.wrappers.n_tasks_id import NTasksId
from mtgym.wrappers.sample_random_task import SampleRandomTask

from ._stubs import ScaleTaskEnv


def test_discrete_task_obs_is_one_hot():
    env = FlattenTaskObservation(gym.make("MT-FiniteBandit-v0"))
    assert env.observation_space.shape == (1 + 10,) and env.observation_space.dtype == np.float32
    np.testing.assert_array_equal(env.observation_space.low, np.zeros(11))
    np.testing.assert_array_equal(env.observation_space.high, np.ones(11))
    for task in (0, 3, 9):
        obs, _ = env.reset(seed=0, options={"task_state": task})
        expected = np.zeros(11, dtype=np.float32)
        expected[1 + task] = 1.0
        np.testing.assert_array_equal(obs, expected)
        assert obs.dtype == np.float32 and obs in env.observation_space
        obs, *_ = env.step(0)
        np.testing.assert_array_equal(obs, expected)


def test_box_task_obs_is_concatenated():
    env = FlattenTaskObservation(ScaleTaskEnv())
    assert env.observation_space.shape == (3,)
    np.testing.assert_array_equal(env.observation_space.low, [-1000, -1000, 0.5])
    obs, _ = env.reset(seed=4, options={"task_state": 1.5})
    inner_obs, _ = ScaleTaskEnv().reset(seed=4, options={"task_state": 1.5})
    np.testing.assert_array_equal(obs, np.concatenate([inner_obs["env_obs"], inner_obs["task_obs"]]))


def test_task_api_still_reachable():
    env = FlattenTaskObservation(SampleRandomTask(gym.make("MT-FiniteBandit-v0")))
    obs, _ = env.reset(seed=0)
    assert obs[1 + env.get_task_state()] == 1.0 and obs[1:].sum() == 1.0


def test_rejects_non_mt_obs():
    with pytest.raises(ValueError, match="multi-task env"):
        FlattenTaskObservation(gym.make("CartPole-v1"))


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_env_checkers():
    check_env(FlattenTaskObservation(NTasksId(ScaleTaskEnv(), n_tasks=3)), skip_render_check=True)
    sb3_check_env(FlattenTaskObservation(gym.make("MT-FiniteBandit-v0")), warn=False)


def test_single_task_sb3_mlp_policy_consumes_mt_env():
    env = FlattenTaskObservation(SampleRandomTask(gym.make("MT-FiniteBandit-v0")))
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(128)
    assert model.observation_space == env.observation_space
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
