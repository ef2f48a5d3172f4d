"""Tests for :class:`mtgym.wrappers.MultiTask` (the task-API forwarding base)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit

import mtgym  # noqa: F401  (registers the ids)
from mtgym.envs.bandit import FiniteMTBanditEnv
from mtgym.wrappers.multi_task import MultiTask, find_task_env

from ._stubs import ScaleTaskEnv


def test_forwards_task_api_through_gym_make_wrappers():
    env = MultiTask(gym.make("MT-FiniteBandit-v0"))
    inner = env.unwrapped
    assert isinstance(inner, FiniteMTBanditEnv)
    assert env.task_env is inner  # TimeLimit / OrderEnforcing / PassiveEnvChecker are skipped
    env.set_task_state(7)
    assert inner.get_task_state() == 7 and env.get_task_state() == 7 and env.get_task_obs() == 7
    obs, _ = env.reset(seed=0, options={"task_state": 3})
    assert obs["task_obs"] == 3 and inner.get_task_state() == 3
    obs, *_ = env.step(0)
    assert obs["task_obs"] == 3
    assert env.np_random_task is inner.np_random_task


def test_invalid_task_state_names_range():
    env = MultiTask(gym.make("MT-FiniteBandit-v0"))
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        env.set_task_state(10)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        env.reset(seed=0, options={"task_state": -1})


def test_seeding_semantics():
    env = MultiTask(gym.make("MT-FiniteBandit-v0"))
    with pytest.raises(RuntimeError, match="seed_task"):
        env.assert_task_seed_is_set()
    assert env.seed_task(5) == [5]
    env.assert_task_seed_is_set()
    first = [env.sample_task_state() for _ in range(20)]
    env.seed_task(5)
    assert [env.sample_task_state() for _ in range(20)] == first
    assert len(set(first)) > 3
    # a seeded first reset seeds an unseeded task RNG with the same seed
    other = MultiTask(gym.make("MT-FiniteBandit-v0"))
    other.reset(seed=5)
    other.assert_task_seed_is_set()
    assert [other.sample_task_state() for _ in range(20)] == first


def test_reset_task_state_uses_outer_sampling():
    class Always4(MultiTask):
        def sample_task_state(self):
            return 4

    env = Always4(gym.make("MT-FiniteBandit-v0"))
    env.reset_task_state()
    assert env.get_task_state() == 4


def test_stacks_and_get_wrapper_attr():
    inner = MultiTask(gym.make("MT-FiniteBandit-v0"))
    outer = MultiTask(inner)
    assert outer.task_env is inner and find_task_env(outer) is outer
    limited = TimeLimit(outer, 5)
    limited.get_wrapper_attr("set_task_state")(2)
    assert inner.unwrapped.get_task_state() == 2


def test_works_on_continuous_task_env():
    env = MultiTask(ScaleTaskEnv())
    env.reset(seed=1, options={"task_state": 1.25})
    _, reward, *_ = env.step(2)
    assert reward == 2.5
    np.testing.assert_array_equal(env.get_task_obs(), [1.25])


def test_requires_multitask_env():
    with pytest.raises(ValueError, match="multi-task env"):
        MultiTask(gym.make("CartPole-v1"))
