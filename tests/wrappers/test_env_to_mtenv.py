"""Tests for :class:`mtgym.wrappers.EnvToMTEnv`."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from mtgym.core import MTEnv
from mtgym.wrappers.env_to_mtenv import EnvToMTEnv

from ._stubs import NoisyScaledRewardEnv, ScaleTaskEnv


def test_spaces_and_observation_layout():
    env = ScaleTaskEnv()
    assert isinstance(env, MTEnv) and env.unwrapped is env
    assert env.action_space == env.env.action_space
    assert env.observation_space["env_obs"] == env.env.observation_space
    assert env.observation_space["task_obs"] == spaces.Box(0.5, 2.0, (1,), dtype=np.float32)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"env_obs", "task_obs"}
    np.testing.assert_array_equal(obs["task_obs"], [1.0])
    assert obs["env_obs"][0] == 0 and info == {"scale": 1.0}


def test_task_state_changes_inner_dynamics():
    env = ScaleTaskEnv()
    obs, info = env.reset(seed=0, options={"task_state": 1.5})
    assert info["scale"] == 1.5 and env.env.scale == 1.5
    np.testing.assert_array_equal(obs["task_obs"], [1.5])
    obs, reward, *_ = env.step(2)
    assert reward == 3.0
    np.testing.assert_array_equal(obs["task_obs"], [1.5])
    # a plain reset keeps the task
    env.reset()
    assert env.get_task_state() == 1.5


def test_invalid_task_state_raises():
    with pytest.raises(ValueError, match=r"\[0.5, 2\]"):
        ScaleTaskEnv().reset(options={"task_state": 3.0})


def test_seed_reaches_inner_env_and_task_rng():
    a, b = ScaleTaskEnv(), ScaleTaskEnv()
    obs_a, _ = a.reset(seed=42)
    obs_b, _ = b.reset(seed=42)
    np.testing.assert_array_equal(obs_a["env_obs"], obs_b["env_obs"])
    # the inner env got the same seed as a bare one
    bare_obs, _ = NoisyScaledRewardEnv().reset(seed=42)
    np.testing.assert_array_equal(obs_a["env_obs"], bare_obs)
    # the first seeded reset also seeded the task RNG
    assert [a.sample_task_state() for _ in range(3)] == [b.sample_task_state() for _ in range(3)]
    a.assert_task_seed_is_set()


def test_seed_task_is_independent_of_env_seed():
    a, b = ScaleTaskEnv(), ScaleTaskEnv()
    a.seed_task(1)
    b.seed_task(1)
    a.reset(seed=10)
    b.reset(seed=20)  # different env seeds must not change the task stream
    assert a.sample_task_state() == b.sample_task_state()


def test_options_other_than_task_state_reach_inner_env():
    env = ScaleTaskEnv()
    env.reset(seed=0, options={"task_state": 0.7, "foo": 1})
    assert env.env.last_options == {"foo": 1}
    env.reset(options={"task_state": 0.8})
    assert env.env.last_options is None


def test_render_close_and_render_mode_delegated():
    env = ScaleTaskEnv(render_mode="rgb_array")
    assert env.render_mode == "rgb_array" and env.metadata["render_modes"] == ["rgb_array"]
    env.reset(seed=0)
    assert env.render().shape == (2, 2, 3)
    env.close()
    assert env.env.closed


def test_subclass_must_provide_task_methods():
    env = EnvToMTEnv(gym.make("CartPole-v1"), spaces.Discrete(1))
    obs, _ = env.reset(seed=0)
    assert obs["task_obs"] is None
    for method in (env.get_task_state, env.sample_task_state, env.reset_task_state):
        with pytest.raises(NotImplementedError):
            method()
    with pytest.raises(NotImplementedError):
        env.set_task_state(0)


def test_env_checkers():
    check_env(ScaleTaskEnv(), skip_render_check=True)
    sb3_check_env(ScaleTaskEnv(), warn=False)
