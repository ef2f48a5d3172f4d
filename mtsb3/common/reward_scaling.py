"""
BRC's per-task reward normalisation (Nauman et al. 2025, "Bigger, Regularized, Categorical",
https://arxiv.org/abs/2505.23150, section 3; naumix/BiggerRegularizedCategorical, jaxrl/normalizer.py,
``RewardNormalizer``): each task's rewards are divided by a running estimate of the largest magnitude of its soft
returns, so that every task's values fill the same range ``[-v_max, v_max]`` (the support of a categorical critic)
whatever the task's reward scale.

For every finished episode the discounted returns-to-go ``G_t = r_t + gamma G_{t+1}`` of each of its steps are computed (a
truncated episode bootstraps with its mean reward times the effective horizon ``1 / (1 - gamma)``, a terminated one with 0),
and each task keeps the smallest and the largest ``G_t`` seen. The scale of task ``k`` is

    ``d_k = (max(|G_min|, |G_max|) - alpha_k * H * target_entropy / 2) / v_max``,

with ``H = 1 / (1 - gamma)``, the task's temperature ``alpha_k`` and the target entropy (negative) (the second term bounds the
entropy bonus of the soft values), and the critic learns from ``r / d_k``.
"""

from __future__ import annotations

import math

import numpy as np
import torch as th

#: the smallest scale: a task whose returns and entropy term are all zero keeps its (zero) rewards
MIN_SCALE = 1e-8


def discounted_returns(rewards: np.ndarray, gamma: float, bootstrap: float = 0.0) -> np.ndarray:
    """
    ``G_t = r_t + gamma G_{t+1}`` with ``G_T = bootstrap``, vectorised: within chunks short enough that
    ``gamma^length`` stays far from underflow, ``G_t = gamma^-t * sum_{k >= t} gamma^k r_k`` is one reversed cumulative sum.

    :param rewards: ``(T,)`` the rewards of one episode
    :param gamma: the discount, in ``[0, 1]``
    :param bootstrap: the value after the last step
    :return: ``(T,)`` the returns-to-go
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    returns = np.empty_like(rewards)
    chunk = len(rewards) if gamma >= 1.0 else max(1, int(30 * math.log(10) / -math.log(max(gamma, 1e-300))))
    carry = float(bootstrap)
    for end in range(len(rewards), 0, -chunk):
        start = max(0, end - chunk)
        powers = gamma ** np.arange(end - start, dtype=np.float64)
        tail = np.cumsum((rewards[start:end] * powers)[::-1])[::-1]
        returns[start:end] = tail / powers + carry * gamma ** np.arange(end - start, 0, -1, dtype=np.float64)
        carry = returns[start]
    return returns


class TaskReturnScaler:
    """
    The running per-task statistics of BRC's reward normalisation (module docstring), fed with every transition the
    algorithm stores (:meth:`update`); :meth:`scales` gives the divisors of the rewards. It is plain NumPy state, saved
    with the model.

    :param n_tasks: number of tasks
    :param gamma: the discount of the returns
    :param v_max: the bound the scaled soft returns should stay within (BRC: the categorical critic's ``v_max``, 10)
    """

    def __init__(self, n_tasks: int, gamma: float, v_max: float = 10.0):
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"Per-task reward normalisation needs gamma in [0, 1) (horizon 1 / (1 - gamma)), got {gamma}")
        if not v_max > 0:
            raise ValueError(f"The return bound v_max must be > 0, got {v_max}")
        self.n_tasks, self.gamma, self.v_max = n_tasks, float(gamma), float(v_max)
        self.horizon = 1.0 / (1.0 - self.gamma)
        self.return_min = np.full(n_tasks, np.inf)
        self.return_max = np.full(n_tasks, -np.inf)
        # the rewards of each sub-env's unfinished episode, (n_envs, capacity), and the task it runs
        self._rewards = np.zeros((0, 64))
        self._lengths = np.zeros(0, dtype=np.int64)
        self._tasks = np.zeros(0, dtype=np.int64)

    def update(self, tasks: np.ndarray, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> None:
        """
        Record one vector step.

        :param tasks: ``(n_envs,)`` the task index of each sub-env's transition
        :param rewards: ``(n_envs,)`` its reward
        :param terminated: ``(n_envs,)`` whether its episode reached a terminal state (bootstrap with 0)
        :param truncated: ``(n_envs,)`` whether its episode was cut by a time limit (bootstrap with the mean reward)
        """
        n_envs = len(rewards)
        if len(self._lengths) != n_envs:  # another vector env (e.g. after load): its unfinished episodes are unknown
            self._rewards, self._lengths = np.zeros((n_envs, self._rewards.shape[1])), np.zeros(n_envs, dtype=np.int64)
        if self._lengths.max() >= self._rewards.shape[1]:
            self._rewards = np.concatenate([self._rewards, np.zeros_like(self._rewards)], axis=1)
        self._rewards[np.arange(n_envs), self._lengths] = rewards
        self._lengths += 1
        self._tasks = np.asarray(tasks, dtype=np.int64).reshape(n_envs)
        truncated = np.asarray(truncated, dtype=bool)
        for env in np.flatnonzero(np.asarray(terminated, dtype=bool) | truncated):
            low, high = self._return_range(env, bool(truncated[env]))
            task = self._tasks[env]
            self.return_min[task], self.return_max[task] = min(self.return_min[task], low), max(self.return_max[task], high)
            self._lengths[env] = 0

    def _return_range(self, env: int, truncated: bool) -> tuple[float, float]:
        """:return: the smallest and largest return-to-go of sub-env ``env``'s episode so far"""
        rewards = self._rewards[env, : self._lengths[env]]
        bootstrap = float(rewards.mean()) * self.horizon if truncated else 0.0
        returns = discounted_returns(rewards, self.gamma, bootstrap)
        return float(returns.min()), float(returns.max())

    def return_bounds(self) -> np.ndarray:
        """
        :return: ``(n_tasks,)`` the largest return magnitude of each task; a task with no finished episode yet uses its
            unfinished ones as if truncated now, and a task never seen gets ``nan``
        """
        low, high = self.return_min.copy(), self.return_max.copy()
        unseen = ~np.isfinite(low)
        if unseen.any():
            for env in np.flatnonzero(unseen[self._tasks] & (self._lengths > 0)):
                task = self._tasks[env]
                env_low, env_high = self._return_range(env, truncated=True)
                low[task], high[task] = min(low[task], env_low), max(high[task], env_high)
        bounds = np.maximum(np.abs(low), np.abs(high))
        bounds[~np.isfinite(low)] = np.nan
        return bounds

    def scales(self, ent_coef: th.Tensor, target_entropy: float) -> th.Tensor:
        """
        :param ent_coef: the temperature, a scalar or ``(n_tasks,)`` (one per task)
        :param target_entropy: the target entropy of the temperature loss (its entropy bonus term counts when negative)
        :return: ``(n_tasks,)`` the divisor of each task's rewards (1 for a task never seen), on ``ent_coef``'s device
        """
        bounds = th.as_tensor(self.return_bounds(), dtype=th.float32, device=ent_coef.device)
        entropy_term = ent_coef.detach().float() * self.horizon * max(-float(target_entropy), 0.0) / 2.0
        scales = ((bounds + entropy_term) / self.v_max).clamp(min=MIN_SCALE)
        return th.where(th.isnan(bounds), th.ones_like(scales), scales)
