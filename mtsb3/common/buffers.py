"""Replay buffers for multi-task training."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from mtsb3.common.task import TASK_KEY, n_tasks_of


class TaskBalancedReplayBuffer(DictReplayBuffer):
    """
    A ``DictReplayBuffer`` whose batches hold ``batch_size / n_tasks`` transitions of every task.

    mtrl samples its shared buffer uniformly (mtrl/experiment/multitask.py, run), so a batch of 1280 from MT10 holds *about*
    128 transitions per task; Meta-World+ (metaworld-algorithms), MOORE and Soft-Module sample every task equally, which keeps
    a task with few or short episodes from being drowned out, and makes per-task losses (gradient surgery, per-task heads)
    equally well estimated. Pass it with ``replay_buffer_class=TaskBalancedReplayBuffer``.

    Tasks are read from ``obs["task_obs"]`` (``Discrete``) when transitions are added; a sub-env may change task
    between episodes. Each task keeps the list of its stored slots (updated in O(1) per added transition), and a
    batch is drawn from all tasks at once, uniformly within each task, with replacement. Only tasks already in the
    buffer are sampled; when ``batch_size`` is not a multiple of their number, the remainder goes to randomly chosen
    tasks (one extra sample each). Batches are ordered by task.

    :param buffer_size: max number of transitions (all tasks together)
    :param observation_space: a multi-task ``Dict`` observation space with a ``Discrete`` ``task_obs``
    :param action_space: action space
    :param device: torch device
    :param n_envs: number of parallel environments
    :param optimize_memory_usage: must be False (SB3's memory-optimised variant does not support Dict observations)
    :param handle_timeout_termination: handle timeout termination separately (see SB3's ``ReplayBuffer``)
    :raises ValueError: if ``optimize_memory_usage`` is True or ``task_obs`` is not ``Discrete``
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ):
        if optimize_memory_usage:
            raise ValueError(
                "TaskBalancedReplayBuffer does not support optimize_memory_usage=True: SB3's memory-optimised layout "
                "does not exist for Dict observations; pass optimize_memory_usage=False"
            )
        self.n_tasks = n_tasks_of(observation_space, "TaskBalancedReplayBuffer")
        super().__init__(buffer_size, observation_space, action_space, device, n_envs, False, handle_timeout_termination)
        self._reset_task_index()

    def _reset_task_index(self) -> None:
        # slot = pos * n_envs + env; each task lists its slots in the first `counts[task]` entries of its row
        self._slot_task = np.full(self.buffer_size * self.n_envs, -1, dtype=np.int64)
        self._slot_rank = np.zeros(self.buffer_size * self.n_envs, dtype=np.int64)
        self._task_counts = np.zeros(self.n_tasks, dtype=np.int64)
        self._task_slots = np.zeros((self.n_tasks, 16), dtype=np.int64)

    def reset(self) -> None:
        super().reset()
        self._reset_task_index()

    @property
    def task_counts(self) -> np.ndarray:
        """Number of stored transitions of each task, ``(n_tasks,)``."""
        return self._task_counts.copy()

    def add(
        self,
        obs: dict[str, np.ndarray],
        next_obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        tasks = np.asarray(obs[TASK_KEY]).reshape(self.n_envs).astype(np.int64)
        slots = self.pos * self.n_envs + np.arange(self.n_envs)
        for slot, task in zip(slots, tasks, strict=True):
            old = self._slot_task[slot]
            if old == task:  # the usual case once the ring wraps: a sub-env keeps its task
                continue
            if old >= 0:  # move the last slot of the old task into the freed place
                rank, last = self._slot_rank[slot], self._task_counts[old] - 1
                moved = self._task_slots[old, last]
                self._task_slots[old, rank] = moved
                self._slot_rank[moved] = rank
                self._task_counts[old] = last
            if self._task_counts[task] == self._task_slots.shape[1]:
                grown = np.zeros((self.n_tasks, 2 * self._task_slots.shape[1]), dtype=np.int64)
                grown[:, : self._task_slots.shape[1]] = self._task_slots
                self._task_slots = grown
            self._task_slots[task, self._task_counts[task]] = slot
            self._slot_rank[slot] = self._task_counts[task]
            self._slot_task[slot] = task
            self._task_counts[task] += 1
        super().add(obs, next_obs, action, reward, done, infos)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> DictReplayBufferSamples:  # type: ignore[override]
        """
        :param batch_size: number of transitions, split evenly between the tasks in the buffer
        :param env: associated VecEnv, to normalize the observations/rewards when sampling
        """
        present = np.flatnonzero(self._task_counts)
        if len(present) == 0:
            raise ValueError("Cannot sample from an empty TaskBalancedReplayBuffer")
        per_task, remainder = divmod(batch_size, len(present))
        tasks = np.repeat(present, per_task)
        if remainder:
            tasks = np.sort(np.concatenate([tasks, np.random.choice(present, remainder, replace=False)]))
        ranks = (np.random.random(batch_size) * self._task_counts[tasks]).astype(np.int64)
        slots = self._task_slots[tasks, ranks]
        return self._get_samples(slots // self.n_envs, env=env, env_indices=slots % self.n_envs)

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None, env_indices: np.ndarray | None = None
    ) -> DictReplayBufferSamples:
        if env_indices is None:
            return super()._get_samples(batch_inds, env)
        obs = self._normalize_obs({key: obs[batch_inds, env_indices, :] for key, obs in self.observations.items()}, env)
        next_obs = self._normalize_obs(
            {key: obs[batch_inds, env_indices, :] for key, obs in self.next_observations.items()}, env
        )
        assert isinstance(obs, dict) and isinstance(next_obs, dict)
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        rewards = self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)
        return DictReplayBufferSamples(
            observations={key: self.to_torch(value) for key, value in obs.items()},
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations={key: self.to_torch(value) for key, value in next_obs.items()},
            dones=self.to_torch(dones).reshape(-1, 1),
            rewards=self.to_torch(rewards),
        )
