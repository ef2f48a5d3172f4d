import gymnasium as gym
import numpy as np
import pytest

import mtgym  # noqa: F401
from mtgym.envs.bandit import FiniteMTBanditEnv, MTBanditEnv


def test_bandit_reward_follows_arm_probability():
    env = MTBanditEnv(n_arms=2)
    env.set_task_state([1.0, 0.0])
    env.reset(seed=0)
    assert [env.step(0)[1] for _ in range(5)] == [1.0] * 5
    assert [env.step(1)[1] for _ in range(5)] == [0.0] * 5
    env.set_task_state([0.3, 0.0])
    assert np.mean([env.step(0)[1] for _ in range(2000)]) == pytest.approx(0.3, abs=0.04)


def test_bandit_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        MTBanditEnv(3).step(0)


def test_finite_bandit_task_is_index():
    env = gym.make("MT-FiniteBandit-v0", n_tasks=4, n_arms=3, initial_task_state=2)
    obs, _ = env.reset(seed=0)
    assert obs["task_obs"] == 2 and env.observation_space["task_obs"] == gym.spaces.Discrete(4)
    np.testing.assert_array_equal(env.unwrapped.reward_probability, env.unwrapped.tasks[2])
    np.testing.assert_array_equal(FiniteMTBanditEnv(4, 3).tasks, env.unwrapped.tasks)  # fixed task set
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        env.unwrapped.set_task_state(4)


@pytest.mark.parametrize("env_id", ["MT-Bandit-v0", "MT-FiniteBandit-v0"])
@pytest.mark.parametrize("action", [-1, 99, 1.5])
def test_bandit_rejects_invalid_actions(env_id, action):
    env = gym.make(env_id, disable_env_checker=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"Invalid action {action!r}: expected an integer in \[0, 4\]"):
        env.step(action)  # -1 used to pull the last arm, 99 to raise an IndexError


def test_bandit_rejects_nan_arm_probabilities():
    env = MTBanditEnv(n_arms=3)
    with pytest.raises(ValueError, match=r"expected 3 arm probabilities in \[0, 1\], got \[0.5, nan, 0.5\]"):
        env.set_task_state([0.5, np.nan, 0.5])
