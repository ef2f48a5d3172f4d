"""Tests for :class:`mtgym.wrappers.NTasks`."""

import gymnasium as gym
import numpy as np
import pytest

import mtgym  # noqa: F401  (registers the ids)
from mtgym.wrappers.n_tasks import NTasks
from mtgym.wrappers.sample_random_task import SampleRandomTask

from ._stubs import ScaleTaskEnv


def as_key(task_state):
    return tuple(np.atleast_1d(task_state).tolist())


@pytest.mark.parametrize("n_tasks", [1, 10, 100])
def test_samples_only_from_cached_set(n_tasks):
    env = NTasks(gym.make("MT-Bandit-v0"), n_tasks=n_tasks)
    env.seed_task(0)
    cached = {as_key(t) for t in env.tasks}
    assert len(env.tasks) == n_tasks and len(cached) == n_tasks  # continuous draws: all distinct
    drawn = [as_key(env.sample_task_state()) for _ in range(20 * n_tasks)]
    assert set(drawn) <= cached
    if n_tasks > 1:
        # uniform over the set: with 20 draws per task, every task shows up (P(miss) < 100 * e^-20)
        assert set(drawn) == cached


@pytest.mark.parametrize("n_tasks", [1, 10, 100])
def test_validate_mtenv_contract(n_tasks):
    # mtenv tests/utils/utils.py, validate_mtenv, on the Gymnasium API: seed, seed_task, then 10 x (reset_task_state, reset, 3
    # steps)
    for env_id in ("MT-Bandit-v0", "MT-CartPole-v0"):
        env = NTasks(gym.make(env_id), n_tasks=n_tasks)
        env.action_space.seed(5)
        env.seed_task(15)
        env.assert_task_seed_is_set()
        cached = {as_key(t) for t in env.tasks}
        for _ in range(10):
            env.reset_task_state()
            assert as_key(env.get_task_state()) in cached
            obs, info = env.reset(seed=5)
            assert set(obs) == {"env_obs", "task_obs"} and isinstance(info, dict)
            for _ in range(3):
                obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
                assert obs in env.observation_space
                assert isinstance(reward, (int, float)) and isinstance(terminated, bool) and isinstance(truncated, bool)


def test_cache_is_drawn_once(monkeypatch):
    inner = ScaleTaskEnv()
    calls = []
    original = inner.sample_task_state
    monkeypatch.setattr(inner, "sample_task_state", lambda: calls.append(1) or original())
    env = NTasks(inner, n_tasks=3)
    env.seed_task(0)
    assert calls == []  # nothing drawn before it is needed
    first = list(env.tasks)
    for _ in range(10):
        env.reset_task_state()
    assert len(calls) == 3 and env.tasks == first


def test_same_seed_same_task_set():
    def tasks(seed):
        env = NTasks(ScaleTaskEnv(), n_tasks=5)
        env.reset(seed=seed)  # the first seeded reset seeds the task RNG
        return env.tasks

    assert tasks(3) == tasks(3)
    assert tasks(3) != tasks(4)


def test_set_task_state_passes_inner_state_through():
    env = NTasks(ScaleTaskEnv(), n_tasks=2)
    env.reset(seed=0, options={"task_state": 1.75})
    assert env.get_task_state() == 1.75 and env.unwrapped.env.scale == 1.75
    with pytest.raises(ValueError, match=r"\[0.5, 2\]"):
        env.set_task_state(5.0)


def test_sample_random_task_draws_from_fixed_set():
    env = SampleRandomTask(NTasks(ScaleTaskEnv(), n_tasks=4))
    env.reset(seed=1)
    cached = set(env.env.tasks)
    seen = {env.reset()[0]["task_obs"].item() for _ in range(60)}
    assert {float(np.float32(t)) for t in cached} == seen


@pytest.mark.parametrize("n_tasks", [-1, 0, 2.5, True])
def test_invalid_n_tasks(n_tasks):
    with pytest.raises(ValueError, match="n_tasks must be an integer >= 1"):
        NTasks(ScaleTaskEnv(), n_tasks=n_tasks)
