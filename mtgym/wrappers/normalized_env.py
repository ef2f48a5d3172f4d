"""``NormalizedEnv``: mtenv's ``NormalizedEnvWrapper`` (adapted from garage) with all of its options: action scaling,
running observation and reward normalisation, reward scale (mtenv/envs/metaworld/env.py)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mtgym.wrappers.normalize_reward import ema_update

__all__ = ["NormalizedEnv"]

ENV_KEY = "env_obs"


class NormalizedEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    r"""
    mtenv's ``NormalizedEnvWrapper`` (mtenv/envs/metaworld/env.py, from garage's ``NormalizedEnv``), with its constructor
    defaults.

    * **Actions** (``Box`` action spaces with finite bounds): the agent acts in ``[-s, s]`` (``s =
      expected_action_scale``), mapped affinely onto ``[low, high]`` and clipped. The wrapper's action space is
      ``Box(-s, s)``. (The reference's "bounds are finite" test compared ``high != -inf``, so it scaled even unbounded
      spaces; here an unbounded space is passed through.)
    * **Observations** (``normalize_obs``): ``(o - mean) / (sqrt(var) + 1e-8)`` with running statistics
      (:func:`~mtgym.wrappers.normalize_reward.ema_update`, rate ``obs_alpha``, starting at mean 0 and var 1), updated
      at every reset and step before normalising. For a multi-task ``Dict`` observation the ``env_obs`` entry is
      normalised and ``task_obs`` kept.
    * **Rewards** (``normalize_reward``): ``r / (sqrt(var) + 1e-8)``, the mean **not** subtracted, rate ``reward_alpha``
      (the reward half is :class:`~mtgym.wrappers.NormalizeReward`); then every reward is multiplied by ``scale_reward``.

    The statistics carry over between episodes and restart at ``reset(seed=...)`` (so a seed fixes the trajectory, as
    :class:`~mtgym.envs.metaworld.task_env.SeededNormalizeReward`). The reference swallowed (printed) exceptions of the
    inner ``step``; here they propagate. Its ``flatten_obs`` flag only matters for non-``Box`` observations, which garage
    flattened before normalising; here the ``Box`` (or ``env_obs``) keeps its shape.

    :param env: the env
    :param scale_reward: factor applied to every (normalised) reward
    :param normalize_obs: normalise observations with running statistics
    :param normalize_reward: divide rewards by their running std
    :param expected_action_scale: ``s``, the half-width of the agent's action box
    :param obs_alpha: rate of the observation statistics, in ``(0, 1]``
    :param reward_alpha: rate of the reward statistics, in ``(0, 1]``
    """

    def __init__(
        self,
        env: gym.Env,
        scale_reward: float = 1.0,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        expected_action_scale: float = 1.0,
        obs_alpha: float = 0.001,
        reward_alpha: float = 0.001,
    ):
        for name, value in (("obs_alpha", obs_alpha), ("reward_alpha", reward_alpha)):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if not expected_action_scale > 0:
            raise ValueError(f"expected_action_scale must be > 0, got {expected_action_scale}")
        gym.utils.RecordConstructorArgs.__init__(
            self,
            scale_reward=scale_reward,
            normalize_obs=normalize_obs,
            normalize_reward=normalize_reward,
            expected_action_scale=expected_action_scale,
            obs_alpha=obs_alpha,
            reward_alpha=reward_alpha,
        )
        gym.Wrapper.__init__(self, env)
        self.scale_reward, self.normalize_obs, self.normalize_reward = float(scale_reward), normalize_obs, normalize_reward
        self.expected_action_scale, self.obs_alpha, self.reward_alpha = float(expected_action_scale), obs_alpha, reward_alpha
        space = env.action_space
        self.scales_actions = isinstance(space, spaces.Box) and bool(np.all(np.isfinite(space.low) & np.isfinite(space.high)))
        if self.scales_actions:
            s = self.expected_action_scale
            self.action_space = spaces.Box(-s, s, space.shape, space.dtype)  # type: ignore[arg-type]
        obs_space = self._obs_box(env.observation_space)
        self._obs_shape = obs_space.shape
        self.reset_statistics()
        if normalize_obs:
            unbounded = spaces.Box(-np.inf, np.inf, obs_space.shape, np.float32)
            if isinstance(env.observation_space, spaces.Dict):
                self.observation_space = spaces.Dict({**env.observation_space.spaces, ENV_KEY: unbounded})
            else:
                self.observation_space = unbounded

    @staticmethod
    def _obs_box(space: gym.Space) -> spaces.Box:
        """The ``Box`` that observation normalisation works on (the space itself, or its ``env_obs``)."""
        box = space.spaces.get(ENV_KEY) if isinstance(space, spaces.Dict) else space
        if not isinstance(box, spaces.Box):
            raise ValueError(f"NormalizedEnv needs a Box observation (or a Dict with a Box env_obs), got {space}")
        return box

    def scale_action(self, action: Any) -> np.ndarray:
        """:return: ``action`` mapped from ``[-s, s]`` onto the env's ``[low, high]``, clipped."""
        low, high, s = self.env.action_space.low, self.env.action_space.high, self.expected_action_scale
        scaled = low + (np.asarray(action, dtype=np.float64) + s) * (0.5 * (high - low) / s)
        return np.clip(scaled, low, high).astype(self.env.action_space.dtype)

    def _normalize_obs(self, obs: Any) -> Any:
        if not self.normalize_obs:
            return obs
        raw = np.asarray(obs[ENV_KEY] if isinstance(obs, dict) else obs, dtype=np.float64)
        self.obs_mean, self.obs_var = ema_update(self.obs_mean, self.obs_var, raw, self.obs_alpha)
        normalized = ((raw - self.obs_mean) / (np.sqrt(self.obs_var) + 1e-8)).astype(np.float32)
        return {**obs, ENV_KEY: normalized} if isinstance(obs, dict) else normalized

    def reset_statistics(self) -> None:
        """Restart the running statistics (mean 0, var 1), as at construction."""
        self.obs_mean, self.obs_var = np.zeros(self._obs_shape), np.ones(self._obs_shape)
        self.reward_mean, self.reward_var = 0.0, 1.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            # same seed, same trajectory (the statistics otherwise carry over between episodes, as in the reference)
            self.reset_statistics()
        obs, info = self.env.reset(seed=seed, options=options)
        return self._normalize_obs(obs), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self.scale_action(action) if self.scales_actions else action)
        reward = float(reward)
        if self.normalize_reward:
            self.reward_mean, self.reward_var = ema_update(self.reward_mean, self.reward_var, reward, self.reward_alpha)
            reward = reward / (float(np.sqrt(self.reward_var)) + 1e-8)
        return self._normalize_obs(obs), reward * self.scale_reward, terminated, truncated, info
