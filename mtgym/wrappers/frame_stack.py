"""``FrameStack``: concatenate the last ``num_stack`` observations along the first (channel) axis
(mtenv/envs/hipbmdp/env.py)."""

from __future__ import annotations

from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.core import ActType

__all__ = ["FrameStack"]


class FrameStack(gym.Wrapper[np.ndarray, ActType, np.ndarray, ActType], gym.utils.RecordConstructorArgs):
    """
    Stack the last ``num_stack`` observations of a ``Box`` env by concatenating them along axis 0, oldest first.

    For channels-first images of shape ``(C, H, W)`` the result has shape ``(C * num_stack, H, W)``, the layout of
    mtenv's HiP-BMDP pixel envs (mtenv/envs/hipbmdp/env.py) and of SAC-AE-style encoders. Unlike Gymnasium's
    ``FrameStackObservation``, no new axis is added. On ``reset`` the first observation fills every slot.

    The declared space tiles the inner ``low``/``high`` and keeps the inner dtype, so ``uint8`` frames are declared
    ``[0, 255]``. The reference declared ``[0, 1]`` with the ``uint8`` dtype (README, "Differences from mtrl and mtenv"), which
    is a bug.

    Example::

        >>> import gymnasium as gym
        >>> env = FrameStack(gym.make("CartPole-v1"), num_stack=3)
        >>> env.observation_space.shape
        (12,)
        >>> obs, _ = env.reset(seed=0)
        >>> bool((obs[:4] == obs[8:]).all())
        True

    Change logs:
     * v0 - Port of mtenv's ``FrameStack(k)``; declared bounds fixed to the inner bounds.

    :param env: an env with a ``Box`` observation space of at least one dimension
    :param num_stack: the number of observations stacked, ``>= 1``
    """

    def __init__(self, env: gym.Env[np.ndarray, ActType], num_stack: int):
        if not isinstance(num_stack, (int, np.integer)) or isinstance(num_stack, bool) or num_stack < 1:
            raise ValueError(f"num_stack must be an integer >= 1, got {num_stack!r}")
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) == 0:
            raise ValueError(f"FrameStack needs a Box observation space with at least one dimension, got {space}")
        gym.utils.RecordConstructorArgs.__init__(self, num_stack=num_stack)
        gym.Wrapper.__init__(self, env)
        self.num_stack = int(num_stack)
        self.observation_space = spaces.Box(
            low=np.concatenate([space.low] * self.num_stack, axis=0),
            high=np.concatenate([space.high] * self.num_stack, axis=0),
            dtype=space.dtype,  # type: ignore[arg-type]
        )
        self.frames: deque[np.ndarray] = deque(maxlen=self.num_stack)

    def _stacked(self) -> np.ndarray:
        return np.concatenate(self.frames, axis=0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        frame = np.array(obs, copy=True)
        for _ in range(self.num_stack):
            self.frames.append(frame)
        return self._stacked(), info

    def step(self, action: ActType) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(np.array(obs, copy=True))
        return self._stacked(), reward, terminated, truncated, info
