"""Tests for :class:`mtgym.wrappers.SampleRandomTask`."""

import itertools

import gymnasium as gym
import numpy as np
import pytest

import mtgym  # noqa: F401  (registers the ids)
from mtgym.wrappers.sample_random_task import SampleRandomTask

from ._stubs import ScaleTaskEnv


def task_sequence(env, n=30, seed=0):
    tasks = [env.reset(seed=seed)[0]["task_obs"]]
    tasks += [env.reset()[0]["task_obs"] for _ in range(n - 1)]
    return tasks


def test_changes_task_across_resets():
    env = SampleRandomTask(gym.make("MT-FiniteBandit-v0"))
    tasks = task_sequence(env, n=100)
    assert set(tasks) == set(range(10))  # 100 uniform draws over 10 tasks: P(some task missing) < 10 * 0.9^100 < 3e-4
    assert sum(a != b for a, b in itertools.pairwise(tasks)) >= 80  # P(same task twice) = 0.1
    # every observation within an episode carries the episode's task, and the inner env really runs it
    env.reset()
    task = env.get_task_state()
    for _ in range(5):
        obs, *_ = env.step(0)
        assert obs["task_obs"] == task == env.unwrapped.get_task_state()


def test_plain_env_keeps_task_for_contrast():
    env = gym.make("MT-FiniteBandit-v0")
    assert set(task_sequence(env)) == {0}


def test_same_seed_same_sequence_and_matches_manual_protocol():
    a = task_sequence(SampleRandomTask(gym.make("MT-FiniteBandit-v0")), seed=7)
    b = task_sequence(SampleRandomTask(gym.make("MT-FiniteBandit-v0")), seed=7)
    c = task_sequence(SampleRandomTask(gym.make("MT-FiniteBandit-v0")), seed=8)
    assert a == b and a != c
    # equivalent to: seed_task(seed), then reset_task_state() before every reset
    manual = gym.make("MT-FiniteBandit-v0").unwrapped
    manual.seed_task(7)
    expected = []
    for i in range(30):
        manual.reset_task_state()
        expected.append(manual.reset(seed=7 if i == 0 else None)[0]["task_obs"])
    assert a == expected


def test_explicit_task_state_wins():
    env = SampleRandomTask(gym.make("MT-FiniteBandit-v0"))
    for _ in range(5):
        obs, _ = env.reset(seed=0, options={"task_state": 9})
        assert obs["task_obs"] == 9


def test_continuous_tasks_resampled():
    env = SampleRandomTask(ScaleTaskEnv())
    scales = [env.reset(seed=0 if i == 0 else None)[1]["scale"] for i in range(10)]
    assert len(set(scales)) == 10 and all(0.5 <= s <= 2.0 for s in scales)
    np.testing.assert_array_equal(env.get_task_obs(), [np.float32(scales[-1])])


def test_requires_multitask_env():
    with pytest.raises(ValueError, match="multi-task env"):
        SampleRandomTask(gym.make("CartPole-v1"))
