"""``EpisodeSuccess``: ``info["is_success"]`` says whether the episode has succeeded at any step so far (mtrl's training
success, mtrl/experiment/multitask.py)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.core import ActType, ObsType

__all__ = ["EpisodeSuccess"]


class EpisodeSuccess(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    """
    Set ``info["is_success"]`` to 1.0 from the first step where ``info["success"]`` is positive until the episode ends.

    SB3 reads ``is_success`` at the last step of each episode for ``rollout/success_rate`` (``ep_success_buffer``). With
    this wrapper that is mtrl's ``train/success_env_index_i``: 1 if *any* step of the episode had ``success > 0``
    (mtrl/experiment/multitask.py, ``run``), the success notion of the evaluation as well. ``info["success"]`` keeps
    the step's own value. Envs that report no ``success`` are passed through.

    :param env: an env that reports ``info["success"]``
    """

    def __init__(self, env: gym.Env[ObsType, ActType]):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.episode_success = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsType, dict[str, Any]]:
        self.episode_success = 0.0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if "success" in info:
            self.episode_success = max(self.episode_success, float(float(info["success"]) > 0))
            info = {**info, "is_success": self.episode_success}
        return obs, reward, terminated, truncated, info
