"""
``enjoy``: rl-zoo's test env with one sub-env per task for multi-task envs, and a per-task summary on close.

Imports ``rl_zoo3`` (it patches Gymnasium); :func:`mtsb3.zoo.register_zoo` imports this module when called.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from rl_zoo3.utils import create_test_env, get_wrapper_class
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack, VecNormalize

from mtgym.core import TASK_KEY
from mtsb3.common.callbacks import episode_success
from mtsb3.common.env_util import make_mt_vec_env
from mtsb3.zoo.env_info import env_info


def make_test_env(
    env_id: str,
    n_envs: int = 1,
    stats_path: str | None = None,
    seed: int = 0,
    log_dir: str | None = None,
    should_render: bool = True,
    hyperparams: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> VecEnv:
    """
    rl-zoo's ``create_test_env`` for ``enjoy``, with one sub-env per task for multi-task envs (``--n-envs 1``, the
    default, means "one per task") and a per-task success/return table printed when the env is closed.
    Other envs are passed to rl-zoo's own function.
    """
    env_kwargs = dict(env_kwargs or {})
    info = env_info(env_id, env_kwargs)
    if not info.is_multi_task:
        return create_test_env(env_id, n_envs, stats_path, seed, log_dir, should_render, hyperparams, env_kwargs, **kwargs)
    hyperparams = dict(hyperparams or {})
    if should_render and "render_mode" not in env_kwargs and "human" in info.render_modes:
        env_kwargs["render_mode"] = "human"
    env = make_mt_vec_env(
        env_id,
        n_envs=None if n_envs <= 1 and info.task_names is not None else n_envs,
        tasks=info.eval_tasks,
        seed=seed,
        env_kwargs=env_kwargs,
        wrapper_class=get_wrapper_class(hyperparams),
        monitor_dir=log_dir,
    )
    if "vec_env_wrapper" in hyperparams:
        env = get_wrapper_class(hyperparams, "vec_env_wrapper")(env)
    if stats_path is not None:
        if hyperparams.get("normalize"):
            env = VecNormalize.load(os.path.join(stats_path, "vecnormalize.pkl"), env)
            env.training = False
            env.norm_reward = False
        if hyperparams.get("frame_stack", 0) > 0:
            env = VecFrameStack(env, hyperparams["frame_stack"])
    return PerTaskReport(env, info.task_names)


class PerTaskReport(VecEnvWrapper):
    """
    Counts finished episodes per task (read from ``task_obs``) and prints a success/return table on close. Success is
    read as in :func:`mtsb3.common.callbacks.evaluate_per_task`: positive at any step of the episode.

    :param venv: the multi-task vector env
    :param task_names: the names of the task indices, or ``None`` (the indices are printed)
    """

    def __init__(self, venv: VecEnv, task_names: list[str] | None = None):
        super().__init__(venv)
        self.task_names = task_names
        self.returns = np.zeros(venv.num_envs)
        self.episodes: dict[int, list[tuple[float, float]]] = {}
        self._success = np.zeros(venv.num_envs)
        self._tasks = np.zeros(venv.num_envs, dtype=int)

    def _read_tasks(self, obs: dict[str, np.ndarray]) -> None:
        self._tasks = np.asarray(obs[TASK_KEY]).reshape(self.num_envs, -1)[:, 0].astype(int)

    def reset(self):
        obs = self.venv.reset()
        self._read_tasks(obs)
        return obs

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self.returns += rewards
        for i, info in enumerate(infos):
            success = episode_success(info)
            if success is not None:
                self._success[i] = max(self._success[i], float(success > 0))
            if dones[i]:
                self.episodes.setdefault(int(self._tasks[i]), []).append((self.returns[i], self._success[i]))
                self.returns[i] = self._success[i] = 0.0
        self._read_tasks(obs)
        return obs, rewards, dones, infos

    def _name(self, task: int) -> str:
        return self.task_names[task] if self.task_names is not None and task < len(self.task_names) else str(task)

    def close(self) -> None:
        if self.episodes:
            print("| task | episodes | success rate | mean return |")
            print("|---|---|---|---|")
            for task in sorted(self.episodes):
                results = np.array(self.episodes[task])
                print(f"| {self._name(task)} | {len(results)} | {results[:, 1].mean():.2f} | {results[:, 0].mean():.2f} |")
            all_results = [np.array(r)[:, 1].mean() for r in self.episodes.values()]
            print(f"Mean success rate over tasks: {np.mean(all_results):.2f}")
        super().close()
