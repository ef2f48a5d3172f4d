"""scripts/bench_train.py: the SB3 adapter of Gymnasium vector envs and the time split (the MT10 runs are the script's)."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import VecMonitor

from tests._zoo_helpers import SCRIPTS

sys.path.insert(0, str(SCRIPTS))
from bench_train import PARTS, GymnasiumVecEnv, Split


def _pendulums(n: int = 2) -> GymnasiumVecEnv:
    same_step = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
    return GymnasiumVecEnv(gym.make_vec("Pendulum-v1", num_envs=n, vectorization_mode="sync", vector_kwargs=same_step))


def test_adapter_gives_sb3_terminal_observations():
    env = _pendulums()
    env.seed(0)
    obs = env.reset()
    assert obs.shape == (2, 3)
    for t in range(200):  # Pendulum is truncated at 200 steps
        obs, rewards, dones, infos = env.step(np.zeros((2, 1), np.float32))
        assert rewards.dtype == np.float32
        assert dones.tolist() == [t == 199] * 2
    for info, first_obs in zip(infos, obs, strict=True):
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (3,)
        assert not np.array_equal(info["terminal_observation"], first_obs)  # obs is already the next episode's
    env.close()


def test_split_accounts_for_the_whole_loop():
    env = VecMonitor(_pendulums())
    model = SAC("MlpPolicy", env, learning_starts=100, batch_size=16, policy_kwargs=dict(net_arch=[8]), seed=0)
    split = Split()
    split.instrument(model)
    model.learn(500)
    assert len(model.ep_info_buffer) == 2  # VecMonitor saw both 200-step episodes through the adapter
    assert all(split.seconds[part] > 0 for part in ("env", "act", "train", "add", "sample", "callbacks"))
    parts = split.per_1000(wall=1.0, timesteps=500)
    assert sum(parts[part] for part in PARTS) == pytest.approx(parts["total"]) == 2000.0
