"""EpisodeSuccess: SB3's rollout/success_rate becomes mtrl's training success (success at any step of the episode)."""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from mtgym.wrappers import EpisodeSuccess
from tests._zoo_helpers import HYPERPARAMS


class MidEpisodeSuccessEnv(gym.Env):
    """4-step episodes whose only success is at step 2 (an object reached, then pushed away again)."""

    observation_space = spaces.Box(-1, 1, (1,), np.float32)
    action_space = spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        success = float(self.t == 2)
        return np.zeros(1, np.float32), 0.0, False, self.t == 4, {"success": success, "is_success": success}


def test_is_success_is_the_episode_success_so_far():
    env = EpisodeSuccess(MidEpisodeSuccessEnv())
    env.reset(seed=0)
    infos = [env.step(np.zeros(1, np.float32))[4] for _ in range(4)]
    assert [i["is_success"] for i in infos] == [0.0, 1.0, 1.0, 1.0]
    assert [i["success"] for i in infos] == [0.0, 1.0, 0.0, 0.0]  # the step's own value is kept
    env.reset()
    assert env.step(np.zeros(1, np.float32))[4]["is_success"] == 0.0
    plain = EpisodeSuccess(gym.make("Pendulum-v1"))  # no success reported: passed through
    plain.reset(seed=0)
    assert "is_success" not in plain.step(np.zeros(1, np.float32))[4]


@pytest.mark.parametrize(("wrapped", "expected"), [(False, 0.0), (True, 1.0)])
def test_sb3_rollout_success_rate_counts_success_at_any_step(wrapped, expected):
    def make() -> gym.Env:
        env = Monitor(MidEpisodeSuccessEnv())
        return EpisodeSuccess(env) if wrapped else env

    model = SAC("MlpPolicy", DummyVecEnv([make]), learning_starts=100, policy_kwargs=dict(net_arch=[4]))
    model.learn(12)  # 3 episodes
    assert list(model.ep_success_buffer) == [expected] * 3


@pytest.mark.parametrize(
    "algo", ["mtsac", "mtsac_te", "mtmhsac", "film", "softmod", "care", "pcgrad", "gradnorm", "cagrad", "distral"]
)
def test_mtrl_presets_log_mtrls_training_success(algo):
    presets = yaml.safe_load((HYPERPARAMS / f"{algo}.yml").read_text())
    for env_id in ("MT-MetaWorld-MT10-v0", "MT-MetaWorld-MT50-v0"):
        module, name = presets[env_id]["env_wrapper"].rsplit(".", 1)
        assert getattr(importlib.import_module(module), name) is EpisodeSuccess
