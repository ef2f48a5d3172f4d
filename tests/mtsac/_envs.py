"""Small envs shared by the MTSAC tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class BoxTaskEnv(gym.Env):
    """A multi-task env whose task is a continuous descriptor (``Box`` task_obs), like MT-CartPole's physics."""

    def __init__(self):
        self.observation_space = spaces.Dict(
            {"env_obs": spaces.Box(-1, 1, (3,), np.float32), "task_obs": spaces.Box(0, 1, (2,), np.float32)}
        )
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}
