"""Small deterministic envs for the wrapper tests (Gymnasium's ``GenericTestEnv`` idea, sized to what we check)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class RewardSequenceEnv(gym.Env[int, int]):
    """
    Plays back a fixed reward sequence; the observation is the global step count.

    The sequence position is *not* reset by ``reset``, so a wrapper's statistics can be checked across episodes.

    :param rewards: the rewards returned by successive ``step`` calls (cycled)
    :param episode_length: ``terminated`` is set every ``episode_length`` steps of an episode
    """

    def __init__(self, rewards: list[float], episode_length: int = 1_000_000):
        self.observation_space = spaces.Discrete(1_000_000)
        self.action_space = spaces.Discrete(2)
        self.rewards = list(rewards)
        self.episode_length = episode_length
        self._i = 0
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._i, {}

    def step(self, action: int) -> tuple[int, SupportsFloat, bool, bool, dict[str, Any]]:
        reward = self.rewards[self._i % len(self.rewards)]
        self._i += 1
        self._t += 1
        return self._i, reward, self._t >= self.episode_length, False, {"t": self._t}


class CounterImageEnv(gym.Env[np.ndarray, int]):
    """
    Channels-first ``uint8`` frames whose every pixel equals the step count within the episode (reset frame = 0).

    :param shape: the frame shape ``(C, H, W)``
    :param episode_length: ``truncated`` is set after this many steps
    """

    def __init__(self, shape: tuple[int, ...] = (1, 2, 2), episode_length: int = 100):
        self.observation_space = spaces.Box(0, 255, shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(2)
        self.episode_length = episode_length
        self._t = 0

    def _frame(self) -> np.ndarray:
        return np.full(self.observation_space.shape, self._t % 256, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._frame(), {}

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        self._t += 1
        return self._frame(), 0.0, False, self._t >= self.episode_length, {}
