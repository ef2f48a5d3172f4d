"""TaskBalancedReplayBuffer: equal per-task batches, slot bookkeeping under wrap-around and task switches."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from mtsb3 import TaskBalancedReplayBuffer

N_TASKS = 4
OBS_SPACE = spaces.Dict({"env_obs": spaces.Box(-10, 10, (2,), np.float32), "task_obs": spaces.Discrete(N_TASKS)})
ACTION_SPACE = spaces.Box(-1, 1, (1,), np.float32)


def _add(buffer: TaskBalancedReplayBuffer, tasks: np.ndarray, step: int) -> None:
    """One transition per sub-env; env_obs / action / reward encode (step, env) so samples can be checked."""
    n = len(tasks)
    env_obs = np.stack([np.full(n, step), np.arange(n)], axis=1).astype(np.float32)
    obs = {"env_obs": env_obs, "task_obs": tasks}
    next_obs = {"env_obs": env_obs + 0.5, "task_obs": tasks}
    action = (tasks / 10.0).reshape(n, 1).astype(np.float32)
    buffer.add(obs, next_obs, action, np.full(n, float(step)), np.zeros(n), [{} for _ in range(n)])


def _check_index(buffer: TaskBalancedReplayBuffer) -> None:
    """Every task's slot list is exactly the set of filled slots holding that task."""
    upper = buffer.buffer_size if buffer.full else buffer.pos
    stored = buffer.observations["task_obs"][:upper].reshape(-1)
    for task in range(N_TASKS):
        listed = buffer._task_slots[task, : buffer.task_counts[task]]
        np.testing.assert_array_equal(np.sort(listed), np.flatnonzero(stored == task))


def test_batches_hold_batch_size_over_n_tasks_per_task():
    np.random.seed(0)
    buffer = TaskBalancedReplayBuffer(1000, OBS_SPACE, ACTION_SPACE, n_envs=5)
    # task 0 fills 3 of the 5 sub-envs: a uniform sampler would give it 60% of every batch
    for step in range(50):
        _add(buffer, np.array([0, 0, 0, 1, 2 + step % 2]), step)
    np.testing.assert_array_equal(buffer.task_counts, [150, 50, 25, 25])
    for _ in range(5):
        batch = buffer.sample(64)
        tasks = batch.observations["task_obs"].numpy().reshape(-1).astype(int)
        np.testing.assert_array_equal(np.bincount(tasks, minlength=N_TASKS), [16, 16, 16, 16])
        # the transitions are consistent: action, next obs and reward belong to the same stored row
        env_obs = batch.observations["env_obs"].numpy()
        np.testing.assert_allclose(batch.next_observations["env_obs"].numpy(), env_obs + 0.5)
        np.testing.assert_allclose(batch.actions.numpy().reshape(-1), tasks / 10.0, rtol=1e-6)
        np.testing.assert_allclose(batch.rewards.numpy().reshape(-1), env_obs[:, 0])
    # sampling is uniform within a task: task 0's draws spread over its 3 sub-envs
    batch = buffer.sample(3000)
    task0 = batch.observations["task_obs"].numpy().reshape(-1) == 0
    envs = np.bincount(batch.observations["env_obs"].numpy()[task0, 1].astype(int), minlength=5)
    assert envs[3:].sum() == 0 and (np.abs(envs[:3] / task0.sum() - 1 / 3) < 0.05).all()


def test_only_present_tasks_and_remainder():
    np.random.seed(1)
    buffer = TaskBalancedReplayBuffer(100, OBS_SPACE, ACTION_SPACE, n_envs=2)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(4)
    for step in range(10):
        _add(buffer, np.array([1, 3]), step)
    counts = np.bincount(buffer.sample(7).observations["task_obs"].numpy().reshape(-1).astype(int), minlength=N_TASKS)
    assert counts[[0, 2]].sum() == 0 and sorted(counts[[1, 3]]) == [3, 4]


def test_wrap_around_and_task_switches_keep_the_index_exact():
    rng = np.random.default_rng(0)
    buffer = TaskBalancedReplayBuffer(24, OBS_SPACE, ACTION_SPACE, n_envs=3)  # 8 rows x 3 envs
    for step in range(40):  # wraps five times; sub-envs switch tasks at random (like SampleRandomTask)
        _add(buffer, rng.integers(0, N_TASKS, 3), step)
        _check_index(buffer)
    assert buffer.full and buffer.task_counts.sum() == 24
    batch = buffer.sample(40)
    assert batch.observations["env_obs"].numpy()[:, 0].min() >= 32  # only the last 8 steps survive
    buffer.reset()
    assert buffer.task_counts.sum() == 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        TaskBalancedReplayBuffer(100, OBS_SPACE, ACTION_SPACE, optimize_memory_usage=True)
    box_tasks = spaces.Dict({"env_obs": OBS_SPACE["env_obs"], "task_obs": spaces.Box(0, 1, (2,))})
    with pytest.raises(ValueError, match="TaskBalancedReplayBuffer needs a Discrete task_obs"):
        TaskBalancedReplayBuffer(100, box_tasks, ACTION_SPACE)
