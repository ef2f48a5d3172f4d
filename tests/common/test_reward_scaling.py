"""BRC's per-task reward normalisation: discounted returns, per-task return statistics and the reward divisors."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from mtsb3.common.reward_scaling import TaskReturnScaler, discounted_returns


def _recursion(rewards: np.ndarray, gamma: float, bootstrap: float) -> np.ndarray:
    """``G_t = r_t + gamma G_{t+1}`` step by step (test reference only)."""
    returns, carry = np.empty(len(rewards)), bootstrap
    for t in reversed(range(len(rewards))):
        carry = rewards[t] + gamma * carry
        returns[t] = carry
    return returns


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.5, 0.99, 0.999, 1.0])
def test_discounted_returns_match_the_recursion(gamma):
    rewards = np.random.default_rng(0).normal(size=3000)
    for bootstrap in (0.0, -4.0):
        np.testing.assert_allclose(
            discounted_returns(rewards, gamma, bootstrap), _recursion(rewards, gamma, bootstrap), rtol=1e-9, atol=1e-9
        )
    assert discounted_returns(np.array([]), 0.9).shape == (0,)


def _step(scaler: TaskReturnScaler, tasks, rewards, terminated=(False, False), truncated=(False, False)) -> None:
    scaler.update(np.array(tasks), np.array(rewards, dtype=np.float64), np.array(terminated), np.array(truncated))


def test_statistics_are_kept_per_task():
    scaler = TaskReturnScaler(n_tasks=3, gamma=0.5, v_max=10.0)
    # sub-env 0 runs task 2 (rewards 1, 1, terminated), sub-env 1 runs task 0 (rewards -4, -4, time limit)
    _step(scaler, [2, 0], [1.0, -4.0])
    _step(scaler, [2, 0], [1.0, -4.0], terminated=(True, False), truncated=(False, True))
    # task 2: G_1 = 1, G_0 = 1 + 0.5 * 1; task 0 bootstraps with its mean reward times the horizon 1 / (1 - 0.5) = 2:
    # G_1 = -4 + 0.5 * -8 = -8, G_0 = -4 + 0.5 * -8 = -8
    assert (scaler.return_min[2], scaler.return_max[2]) == (1.0, 1.5)
    assert (scaler.return_min[0], scaler.return_max[0]) == (-8.0, -8.0)
    assert np.isinf(scaler.return_min[1])
    bounds = scaler.return_bounds()
    np.testing.assert_allclose(bounds[[0, 2]], [8.0, 1.5])
    assert np.isnan(bounds[1])  # never seen
    # divisors: (|G| + alpha * horizon * -target_entropy / 2) / v_max; a task never seen keeps its rewards (1)
    scales = scaler.scales(th.tensor(0.1), target_entropy=-2.0)
    th.testing.assert_close(scales, th.tensor([(8.0 + 0.2) / 10, 1.0, (1.5 + 0.2) / 10]))
    per_task_alpha = scaler.scales(th.tensor([0.1, 0.2, 0.0]), target_entropy=-2.0)
    th.testing.assert_close(per_task_alpha, th.tensor([(8.0 + 0.2) / 10, 1.0, 1.5 / 10]))
    # the next episodes extend the range of their task only
    _step(scaler, [1, 0], [3.0, -1.0], terminated=(True, True))
    assert scaler.return_max[1] == 3.0 and scaler.return_max[0] == -1.0 and scaler.return_min[0] == -8.0
    assert scaler.return_max[2] == 1.5


def test_unfinished_episodes_count_until_a_task_has_a_finished_one():
    scaler = TaskReturnScaler(n_tasks=2, gamma=0.9, v_max=10.0)
    for _ in range(200):  # longer than the initial buffer: it grows
        _step(scaler, [0, 1], [-1.0, 0.0])
    bounds = scaler.return_bounds()
    np.testing.assert_allclose(bounds, [10.0, 0.0])  # as if truncated now: mean reward -1 times horizon 10
    th.testing.assert_close(scaler.scales(th.tensor(0.0), -1.0), th.tensor([1.0, 1e-8]))  # all-zero rewards stay zero
    assert np.isinf(scaler.return_min).all()  # only finished episodes enter the statistics


def test_a_new_vector_env_starts_new_episodes_and_bad_arguments_raise():
    scaler = TaskReturnScaler(n_tasks=2, gamma=0.9)
    _step(scaler, [0, 1], [1.0, 1.0])
    scaler.update(np.array([1]), np.array([2.0]), np.array([True]), np.array([False]))  # one sub-env now
    assert scaler.return_max[1] == 2.0 and np.isinf(scaler.return_max[0])
    with pytest.raises(ValueError, match=r"gamma in \[0, 1\)"):
        TaskReturnScaler(2, gamma=1.0)
    with pytest.raises(ValueError, match="v_max must be > 0, got 0"):
        TaskReturnScaler(2, gamma=0.9, v_max=0)
