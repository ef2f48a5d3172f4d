"""Per-task training metrics: ``rollout/<task>/success_rate`` and ``rollout/<task>/ep_rew_mean`` (mtrl's per-env-index
training logs)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from mtsb3.common.callbacks import episode_success
from mtsb3.common.task import TASK_KEY


class PerTaskRolloutCallback(BaseCallback):
    """
    Log the training episodes per task: ``rollout/<task>/ep_rew_mean`` and ``rollout/<task>/success_rate`` next to
    SB3's aggregate ``rollout/ep_rew_mean`` and ``rollout/success_rate``, in every output of the logger (stdout,
    ``progress.csv``, TensorBoard). mtrl logs its training episodes per env index (``train/..._env_index_<i>``,
    mtrl/experiment/multitask.py, ``run``), and its sub-env ``i`` runs task ``i``.

    The task of an episode is read from its last observation's ``task_obs`` (a task index, named by the env's
    ``task_names``); without one (a ``Box`` task descriptor) each sub-env is its own task ``env_<i>``. Success means
    ``info["success"]`` (else ``info["is_success"]``) at *any* step of the episode, as in mtrl and
    :func:`evaluate_per_task`; tasks whose env never reports success log no success rate. The means are over the last
    ``stats_window_size`` episodes of each task (SB3's window for the aggregate, 100 by default).

    :param task_names: the task names by index (default: the training env's ``task_names``)
    :param verbose: verbosity
    """

    checkpoint_attrs = ("episode_rewards", "episode_successes")

    def __init__(self, task_names: Sequence[str] | None = None, verbose: int = 0):
        super().__init__(verbose)
        self.task_names = None if task_names is None else list(task_names)
        self.episode_rewards: dict[str, list[float]] = {}
        self.episode_successes: dict[str, list[float]] = {}
        self._returns = np.zeros(0)
        self._succeeded: list[float | None] = []

    def _init_callback(self) -> None:
        n_envs = self.training_env.num_envs
        self._returns, self._succeeded = np.zeros(n_envs), [None] * n_envs
        if self.task_names is None:
            with contextlib.suppress(AttributeError):
                self.task_names = self.training_env.get_attr("task_names", [0])[0]

    def _task_of(self, env_index: int, info: dict[str, Any]) -> str:
        obs = info.get("terminal_observation")
        task = obs.get(TASK_KEY) if isinstance(obs, dict) else None
        task = None if task is None else np.asarray(task)
        if self.task_names is None or task is None or task.size != 1 or not np.issubdtype(task.dtype, np.integer):
            return f"env_{env_index}"
        return str(self.task_names[int(task)])

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        self._returns += self.locals["rewards"]
        window = self.model._stats_window_size
        finished = set()
        for i, (info, done) in enumerate(zip(infos, dones, strict=True)):
            success = episode_success(info)
            if success is not None:
                self._succeeded[i] = max(self._succeeded[i] or 0.0, float(success > 0))
            if not done:
                continue
            task = self._task_of(i, info)
            # Monitor's return is the raw one (before VecNormalize); ours is the fallback without Monitor
            reward = float(info["episode"]["r"]) if "episode" in info else float(self._returns[i])
            self.episode_rewards[task] = [*self.episode_rewards.get(task, []), reward][-window:]
            if self._succeeded[i] is not None:
                self.episode_successes[task] = [*self.episode_successes.get(task, []), self._succeeded[i]][-window:]
            self._returns[i], self._succeeded[i] = 0.0, None
            finished.add(task)
        if finished:
            for task, rewards in self.episode_rewards.items():
                self.logger.record(f"rollout/{task}/ep_rew_mean", float(np.mean(rewards)))
            for task, successes in self.episode_successes.items():
                self.logger.record(f"rollout/{task}/success_rate", float(np.mean(successes)))
        return True
