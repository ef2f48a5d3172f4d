"""``FlattenTaskObservation``: ``{"env_obs", "task_obs"}`` → one flat ``float32`` vector, for single-task code."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.core import ActType

from mtgym.core import ENV_KEY, TASK_KEY, MTObs
from mtgym.wrappers.multi_task import MultiTask

__all__ = ["FlattenTaskObservation"]


class FlattenTaskObservation(MultiTask[ActType]):
    """
    Concatenate the flattened ``env_obs`` and ``task_obs`` into one ``Box`` of ``float32``, so that single-task code
    (e.g. SB3's ``MlpPolicy``) can consume a multi-task env.

    Each part is flattened with :func:`gymnasium.spaces.flatten`: a ``Discrete`` part becomes a one-hot vector (so
    a task index ``i`` of ``Discrete(n)`` becomes ``e_i``), a ``Box`` is raveled, ``MultiDiscrete`` becomes
    concatenated one-hots. The declared bounds are the flattened bounds, ``env_obs`` first. The task API stays
    reachable through this wrapper (see :class:`~mtgym.wrappers.MultiTask`).

    Example::

        >>> import gymnasium as gym
        >>> import mtgym
        >>> env = FlattenTaskObservation(gym.make("MT-FiniteBandit-v0"))
        >>> obs, _ = env.reset(seed=0, options={"task_state": 2})
        >>> env.observation_space.shape, obs.tolist()
        ((11,), [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])

    Change logs:
     * v0 - Added (no reference counterpart; the porting notes ask for one).

    :param env: a multi-task env
    """

    def __init__(self, env: gym.Env[MTObs, ActType]):
        gym.utils.RecordConstructorArgs.__init__(self)
        MultiTask.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict) or set(space.spaces) != {ENV_KEY, TASK_KEY}:
            raise ValueError(f"Expected a Dict observation space with keys 'env_obs' and 'task_obs', got {space}")
        self._parts = (space[ENV_KEY], space[TASK_KEY])
        flat = [spaces.flatten_space(part) for part in self._parts]
        for part, flat_part in zip(self._parts, flat, strict=True):
            if not isinstance(flat_part, spaces.Box):
                raise ValueError(f"Cannot flatten {part} into a Box")
        self.observation_space = spaces.Box(
            low=np.concatenate([f.low.astype(np.float32) for f in flat]),
            high=np.concatenate([f.high.astype(np.float32) for f in flat]),
            dtype=np.float32,
        )

    def observation(self, obs: MTObs) -> np.ndarray:
        """:return: ``concat(flatten(env_obs), flatten(task_obs))`` as ``float32``."""
        env_part, task_part = self._parts
        return np.concatenate(
            [spaces.flatten(env_part, obs[ENV_KEY]), spaces.flatten(task_part, obs[TASK_KEY])], dtype=np.float32
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        return self.observation(obs), info

    def step(self, action: ActType) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.observation(obs), reward, terminated, truncated, info
