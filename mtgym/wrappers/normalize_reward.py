"""``NormalizeReward``: divide each reward by an exponential moving estimate of its standard deviation
(mtenv/envs/metaworld/env.py)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.core import ActType, ObsType

__all__ = ["NormalizeReward", "ema_update"]


def ema_update(mean: np.ndarray | float, var: np.ndarray | float, x: np.ndarray | float, alpha: float) -> tuple[Any, Any]:
    """
    garage's running statistics (mtenv's ``NormalizedEnvWrapper``): ``mean <- (1 - a) mean + a x``, then
    ``var <- (1 - a) var + a (x - mean)^2`` with the *new* mean.

    :return: the updated ``(mean, var)``
    """
    mean = (1.0 - alpha) * mean + alpha * x
    return mean, (1.0 - alpha) * var + alpha * (x - mean) ** 2


class NormalizeReward(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    r"""
    Scale rewards by the running standard deviation of the raw reward, as mtenv's ``NormalizedEnvWrapper`` does for
    Meta-World (mtenv/envs/metaworld/env.py, adapted from garage).

    Both statistics start at ``mean = 0`` and ``var = 1`` and are updated once per step, *before* scaling:

    .. math::

        \mu \leftarrow (1 - \alpha)\,\mu + \alpha r, \qquad
        \sigma^2 \leftarrow (1 - \alpha)\,\sigma^2 + \alpha (r - \mu)^2, \qquad
        r' = r / (\sqrt{\sigma^2} + \epsilon)

    where the variance update uses the *new* mean. The mean is **not** subtracted from the reward: only the scale
    changes, so the sign of every reward is kept. This is not Gymnasium's ``NormalizeReward``, which normalises by the
    std of a discounted return. The statistics belong to this wrapper instance: wrap each task's env separately to
    get per-task statistics, and train and eval envs keep their own. They survive ``reset``.

    Example::

        >>> import gymnasium as gym
        >>> env = NormalizeReward(gym.make("CartPole-v1"), alpha=0.5)
        >>> _ = env.reset(seed=0)
        >>> _, reward, *_ = env.step(0)  # mean 0.5, var 0.5 * 1 + 0.5 * 0.25 = 0.625
        >>> round(float(reward), 6)
        1.264911
        >>> round(env.mean, 6), round(env.var, 6)
        (0.5, 0.625)

    Change logs:
     * v0 - Port of the reward half of mtenv's ``NormalizedEnvWrapper`` (``normalize_reward=True``,
       ``reward_alpha=0.001``, ``scale_reward=1``). The reference swallowed exceptions raised by the inner ``step``;
       here they propagate.

    :param env: the env whose rewards are scaled
    :param alpha: the EMA rate, in ``(0, 1]``
    :param epsilon: added to the std before dividing, ``> 0``
    """

    def __init__(self, env: gym.Env[ObsType, ActType], alpha: float = 0.001, epsilon: float = 1e-8):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        gym.utils.RecordConstructorArgs.__init__(self, alpha=alpha, epsilon=epsilon)
        gym.Wrapper.__init__(self, env)
        self.alpha = alpha
        self.epsilon = epsilon
        self.mean = 0.0
        self.var = 1.0

    def normalize(self, reward: float) -> float:
        """
        Update the statistics with ``reward`` and return it scaled.

        :param reward: the raw reward
        :return: ``reward / (sqrt(var) + epsilon)`` with the updated ``var``
        """
        self.mean, self.var = ema_update(self.mean, self.var, reward, self.alpha)
        return reward / (float(np.sqrt(self.var)) + self.epsilon)

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, self.normalize(float(reward)), terminated, truncated, info
