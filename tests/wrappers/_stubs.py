"""Small deterministic envs for the wrapper tests (Gymnasium's ``GenericTestEnv`` idea, sized to what we check)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mtgym.wrappers.env_to_mtenv import EnvToMTEnv


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


class NoisyScaledRewardEnv(gym.Env[np.ndarray, int]):
    """
    A single-task env: reward ``scale * action``; obs ``[t, noise]`` with noise from the env RNG (to check seeding).
    It records the options of its last reset.

    :param scale: the reward scale (the "task parameter" of :class:`ScaleTaskEnv`)
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}

    def __init__(self, scale: float = 1.0, render_mode: str | None = None):
        self.observation_space = spaces.Box(-1000.0, 1000.0, (2,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.scale = scale
        self.render_mode = render_mode
        self.last_options: dict[str, Any] | None = None
        self.closed = False
        self._t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self._t, self.np_random.normal()], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.last_options = options
        self._t = 0
        return self._obs(), {"scale": self.scale}

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        self._t += 1
        return self._obs(), self.scale * int(action), False, self._t >= 20, {}

    def render(self) -> np.ndarray:
        return np.zeros((2, 2, 3), dtype=np.uint8)

    def close(self) -> None:
        self.closed = True


class ScaleTaskEnv(EnvToMTEnv):
    """:class:`NoisyScaledRewardEnv` made multi-task: the reward scale in [0.5, 2] is the task, ``task_obs = [scale]``."""

    def __init__(self, **kwargs: Any):
        super().__init__(NoisyScaledRewardEnv(**kwargs), spaces.Box(0.5, 2.0, (1,), dtype=np.float32))
        self.set_task_state(1.0)

    def get_task_state(self) -> float:
        return self.env.scale

    def set_task_state(self, task_state: float) -> None:
        if not 0.5 <= task_state <= 2.0:
            raise ValueError(f"Invalid task state {task_state}: expected a scale in [0.5, 2]")
        self.env.scale = float(task_state)
        self._task_obs = np.array([task_state], dtype=np.float32)

    def sample_task_state(self) -> float:
        return float(self.np_random_task.uniform(0.5, 2.0))
