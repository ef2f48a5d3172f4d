"""Every registered mtgym id: Gymnasium's and SB3's env checkers, determinism, and the Dict observation contract."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mtgym

ALL_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("MT-"))


def test_every_issue_id_is_registered():
    expected = {
        "MT-CartPole-v0",
        "MT-Acrobat-v0",
        "MT-Acrobot-v0",
        "MT-TabularMDP-v0",
        "MT-Bandit-v0",
        "MT-FiniteBandit-v0",
        "MT-TwoGoalMaze-v0",
        "MT-PointGoal-v0",
    }
    assert expected <= set(ALL_IDS)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_env_checkers(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id)
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env, warn=False)
    assert set(env.observation_space.spaces) == {"env_obs", "task_obs"}
    env.close()


def _trajectory(env_id, seed, n_steps=20):
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    rewards = []
    for _ in range(n_steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        frames.append(obs)
        rewards.append(float(reward))
        if terminated or truncated:
            obs, _ = env.reset()
            frames.append(obs)
    env.close()
    return frames, rewards


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_same_seed_same_trajectory(env_id):
    a, ra = _trajectory(env_id, 11)
    b, rb = _trajectory(env_id, 11)
    assert ra == rb
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["env_obs"], y["env_obs"])
        np.testing.assert_array_equal(x["task_obs"], y["task_obs"])


def test_unknown_id_is_a_clear_error():
    with pytest.raises(gym.error.NameNotFound, match="MT-Nope"):
        gym.make("MT-Nope-v0")


def test_register_envs_is_idempotent():
    before = len(gym.registry)
    mtgym.register_envs()
    assert len(gym.registry) == before


def test_module_prefix_registers_without_import():
    code = "import gymnasium as gym; env = gym.make('mtgym:MT-CartPole-v0'); print(sorted(env.reset(seed=0)[0]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['env_obs', 'task_obs']"
