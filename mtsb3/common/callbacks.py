"""Per-task evaluation of multi-task agents."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from mtsb3.common.env_util import first_sub_env_attr
from mtsb3.common.run_state import EVAL_CALLBACK_ATTRS
from mtsb3.common.save_util import check_env_tasks
from mtsb3.common.task import TASK_KEY
from mtsb3.common.videos import VIDEO_FORMATS, log_video_to_tensorboard, render_fps, video_path, write_video

# mtrl's DMC metric names (mtrl/experiment/multitask.py, evaluate_vec_env_of_tasks): the training tasks are evaluated under
# "eval_base"
SPLIT_LOG_NAMES = {"train": "base"}


def episode_success(info: dict[str, Any]) -> float | None:
    """:return: the step's ``info["success"]`` (else ``info["is_success"]``) as a float, ``None`` where neither is set"""
    value = info.get("success", info.get("is_success"))
    return None if value is None else float(value)


@contextlib.contextmanager
def metaworld_protocol(env: VecEnv, terminate_on_success: bool, one_episode_per_goal: bool) -> Iterator[int | None]:
    """
    Set up Meta-World's evaluation protocol on ``env`` for the duration of the block, then restore it.

    * ``terminate_on_success``: episodes end at their first success step, as ``metaworld.evaluation.evaluation``
      does through ``toggle_terminate_on_success(True)``.
    * ``one_episode_per_goal``: every goal of a task is evaluated exactly once (Meta-World draws them at random); a
      task's goals are split between its sub-envs (``set_goal_sequence``).

    :param env: sub-envs with Meta-World's ``toggle_terminate_on_success`` and, for ``one_episode_per_goal``, the
        ``set_goal_sequence`` / ``get_task_state`` / ``n_goals`` of :class:`~mtgym.envs.metaworld.env.MetaWorldMTEnv`
    :param terminate_on_success: end episodes at success
    :param one_episode_per_goal: one episode per goal
    :return: (as the block's value) the number of goals per task with ``one_episode_per_goal``, else ``None``
    :raises ValueError: if the sub-envs lack what is asked
    """
    previous = None
    n_goals = None
    try:
        if terminate_on_success:
            previous = _get_attr(env, "terminate_on_success", "terminate_on_success=True")
            env.env_method("toggle_terminate_on_success", True)
        if one_episode_per_goal:
            goals_per_env = _get_attr(env, "n_goals", "one_episode_per_goal=True")
            tasks = np.asarray(env.env_method("get_task_state"))
            for task in np.unique(tasks):
                envs = np.flatnonzero(tasks == task)
                for j, i in enumerate(envs):
                    env.env_method("set_goal_sequence", list(range(j, goals_per_env[i], len(envs))), indices=[int(i)])
            n_goals = int(goals_per_env[0])
        yield n_goals
    finally:
        if one_episode_per_goal and n_goals is not None:
            env.env_method("set_goal_sequence", None)
        if previous is not None:
            for i, on in enumerate(previous):
                env.env_method("toggle_terminate_on_success", on, indices=[i])


def _get_attr(env: VecEnv, name: str, asked: str) -> list[Any]:
    if not env.has_attr(name):
        raise ValueError(f"{asked} needs Meta-World sub-envs (e.g. MT-MetaWorldPlus-*), which have {name!r}")
    return env.get_attr(name)


def evaluate_per_task(
    model: BaseAlgorithm,
    env: VecEnv,
    n_eval_episodes: int = 1,
    deterministic: bool = True,
    task_names: Sequence[str] | None = None,
    terminate_on_success: bool = False,
    one_episode_per_goal: bool = False,
) -> dict[str, dict[str, float]]:
    """
    Run exactly ``n_eval_episodes`` episodes of every task of ``env`` and report them per task.

    Each sub-env keeps its task during the evaluation (``make_mt_vec_env`` gives one sub-env per task); the task of a
    sub-env is read from ``obs["task_obs"]`` after the reset. Without a task index (a ``Box`` task_obs), every sub-env
    is reported as its own task ``task_<i>``. When several sub-envs run the same task, its episodes
    are split between them, so every task gets exactly ``n_eval_episodes`` episodes whatever their lengths.
    Success means ``info["success"]`` (or ``info["is_success"]``) was positive at *any* step of the episode (mtrl's
    protocol, mtrl/experiment/multitask.py, evaluate_vec_env_of_tasks).

    :param model: the agent (its ``predict`` is called on the whole batch of sub-envs)
    :param env: the evaluation VecEnv; it is reset first
    :param n_eval_episodes: episodes per task
    :param deterministic: use deterministic actions
    :param task_names: names of the task indices; by default ``env``'s ``task_names`` (else ``task_<i>``)
    :param terminate_on_success: end each episode at its first success step (Meta-World's evaluation protocol,
        ``metaworld.evaluation.evaluation``); the returns are then those Meta-World reports
    :param one_episode_per_goal: evaluate every goal of every task once (then ``n_eval_episodes`` is ignored)
    :return: ``{task_name: {"mean_reward", "std_reward", "mean_ep_length", "success_rate", "n_episodes"}}`` in task
        index order; ``success_rate`` is ``nan`` for a task whose env never reports success
    :raises ValueError: if ``env`` has other tasks than ``model``, or the same ones in another order (the results would
        be reported under the wrong names)
    """
    if n_eval_episodes < 1:
        raise ValueError(f"n_eval_episodes must be >= 1, got {n_eval_episodes}")
    check_env_tasks(model, env)
    with metaworld_protocol(env, terminate_on_success, one_episode_per_goal) as n_goals:
        return _evaluate_per_task(model, env, n_goals or n_eval_episodes, deterministic, task_names)


def _evaluate_per_task(
    model: BaseAlgorithm,
    env: VecEnv,
    n_eval_episodes: int,
    deterministic: bool,
    task_names: Sequence[str] | None,
) -> dict[str, dict[str, float]]:
    """:func:`evaluate_per_task` once the protocol is set up."""
    if task_names is None:
        task_names = first_sub_env_attr(env, "task_names")
    n_envs = env.num_envs
    obs = env.reset()
    env_tasks, names = _sub_env_tasks(obs, n_envs, task_names)
    # split each task's episodes between its sub-envs
    targets = np.zeros(n_envs, dtype=int)
    for task in np.unique(env_tasks):
        envs = np.flatnonzero(env_tasks == task)
        targets[envs] = n_eval_episodes // len(envs) + (np.arange(len(envs)) < n_eval_episodes % len(envs))

    counts = np.zeros(n_envs, dtype=int)
    returns, lengths = np.zeros(n_envs), np.zeros(n_envs, dtype=int)
    succeeded: list[float | None] = [None] * n_envs
    episodes: list[list[tuple[float, int, float | None]]] = [[] for _ in range(n_envs)]
    states = None
    episode_starts = np.ones(n_envs, dtype=bool)
    while (counts < targets).any():
        actions, states = model.predict(obs, state=states, episode_start=episode_starts, deterministic=deterministic)
        obs, rewards, dones, infos = env.step(actions)
        returns += rewards
        lengths += 1
        for i in range(n_envs):
            success = episode_success(infos[i])
            if success is not None:
                succeeded[i] = max(succeeded[i] or 0.0, float(success > 0))
            if dones[i]:
                if counts[i] < targets[i]:
                    episodes[i].append((float(returns[i]), int(lengths[i]), succeeded[i]))
                    counts[i] += 1
                returns[i], lengths[i], succeeded[i] = 0.0, 0, None
        episode_starts = dones

    return _per_task_results(env_tasks, names, episodes)


def _sub_env_tasks(obs: Any, n_envs: int, task_names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """
    :param obs: the observation of a VecEnv just reset
    :param n_envs: its number of sub-envs
    :param task_names: names of the task indices, or ``None`` (``task_<i>``)
    :return: the task index of each sub-env (read from ``obs["task_obs"]``) and its task name; without a task index
        (e.g. a continuous task descriptor) each sub-env is its own task ``task_<i>``
    """
    task_obs = np.asarray(obs[TASK_KEY]) if isinstance(obs, dict) and TASK_KEY in obs else None
    if task_obs is not None and task_obs.size == n_envs and np.issubdtype(task_obs.dtype, np.integer):
        env_tasks = task_obs.reshape(n_envs).astype(int)
    else:
        env_tasks, task_names = np.arange(n_envs), None
    return env_tasks, [task_names[t] if task_names is not None else f"task_{t}" for t in env_tasks]


def _env_task_names(env: VecEnv) -> Sequence[str] | None:
    """:return: the ``task_names`` of ``env``'s sub-envs, ``None`` where they have none."""
    return first_sub_env_attr(env, "task_names")


def record_task_episodes(model: BaseAlgorithm, env: VecEnv, deterministic: bool = True) -> dict[str, np.ndarray]:
    """
    Record one episode of every task: the ``rgb_array`` frames of the first sub-env of each task, from the reset to
    the last step before the episode ends (the VecEnv then resets that sub-env).

    :param model: the agent
    :param env: a VecEnv whose sub-envs render frames (``render_mode="rgb_array"``); it is reset first
    :param deterministic: deterministic actions
    :return: ``{task name: (T, H, W, 3) uint8 frames}`` in task index order
    :raises ValueError: if the sub-envs do not render frames
    """
    obs = env.reset()
    env_tasks, names = _sub_env_tasks(obs, env.num_envs, _env_task_names(env))
    chosen: dict[str, int] = {}  # the first sub-env of each task, in task order
    for i in np.argsort(env_tasks, kind="stable"):
        chosen.setdefault(names[i], int(i))
    frames: dict[int, list[np.ndarray]] = {i: [] for i in chosen.values()}
    done: set[int] = set()
    states, episode_starts = None, np.ones(env.num_envs, dtype=bool)
    while len(done) < len(frames):
        images = env.get_images()
        for i in set(frames) - done:
            if images[i] is None:
                raise ValueError(
                    "Evaluation videos need sub-envs that render frames: make the eval env with "
                    "env_kwargs=dict(render_mode='rgb_array')"
                )
            frames[i].append(np.asarray(images[i], dtype=np.uint8))
        actions, states = model.predict(obs, state=states, episode_start=episode_starts, deterministic=deterministic)
        obs, _, dones, _ = env.step(actions)
        done.update(i for i in frames if dones[i])
        episode_starts = dones
    return {name: np.stack(frames[i]) for name, i in chosen.items()}


def _per_task_results(
    env_tasks: np.ndarray, names: list[str], episodes: list[list[tuple[float, int, float | None]]]
) -> dict[str, dict[str, float]]:
    """
    :param env_tasks: the task of each sub-env
    :param names: the task name of each sub-env
    :param episodes: per sub-env, its ``(return, length, success or None)`` episodes
    :return: the result of :func:`evaluate_per_task`
    """
    results: dict[str, dict[str, float]] = {}
    for task in sorted(set(env_tasks.tolist())):
        task_episodes = [episode for i in np.flatnonzero(env_tasks == task) for episode in episodes[i]]
        rewards_, lengths_, successes = zip(*task_episodes, strict=True)
        defined = [s for s in successes if s is not None]
        results[names[int(np.flatnonzero(env_tasks == task)[0])]] = {
            "mean_reward": float(np.mean(rewards_)),
            "std_reward": float(np.std(rewards_)),
            "mean_ep_length": float(np.mean(lengths_)),
            "success_rate": float(np.mean(defined)) if defined else float("nan"),
            "n_episodes": float(len(task_episodes)),
        }
    return results


def summarize(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """
    :param results: per-task results of :func:`evaluate_per_task`
    :return: ``mean_reward`` (mean over tasks of the per-task means), ``mean_ep_length`` and ``success_rate`` (mean
        over the tasks where success is defined; ``nan`` where no task defines it)
    """
    successes = [r["success_rate"] for r in results.values() if not np.isnan(r["success_rate"])]
    return {
        "mean_reward": float(np.mean([r["mean_reward"] for r in results.values()])),
        "mean_ep_length": float(np.mean([r["mean_ep_length"] for r in results.values()])),
        "success_rate": float(np.mean(successes)) if successes else float("nan"),
    }


class MultiTaskEvalCallback(EvalCallback):
    """
    Evaluate a multi-task agent every ``eval_freq`` calls, with exactly ``n_eval_episodes`` deterministic episodes per
    task, on a separate VecEnv with one sub-env per task (e.g. ``make_mt_vec_env(env_id, seed=...)``).

    It logs ``eval/success_rate`` and ``eval/mean_reward`` (means over tasks), ``eval/mean_ep_length``, and
    ``eval/<task_name>/success_rate`` and ``eval/<task_name>/mean_reward`` for every task (mtrl's ``eval/success`` and
    ``eval/..._env_index_i``, mtrl/experiment/multitask.py, evaluate_vec_env_of_tasks). Success is "succeeded at any step of
    the episode". When the env has ``task_splits`` (e.g. HiP-BMDP ``{"train", "interpolation", "extrapolation"}``), each split
    is also reported as ``eval_<split>/success_rate`` and ``eval_<split>/mean_reward``, over the split's tasks in the eval env;
    the ``train`` split is logged as ``eval_base`` like mtrl.

    The best model is the one with the highest mean success rate where the env reports success, and the highest mean
    reward otherwise (SB3's ``EvalCallback`` always uses reward). The latest per-task results are in
    :attr:`last_results` (``{task_name: {"success_rate", "mean_reward", ...}}``), the summaries in
    :attr:`last_summary` and :attr:`last_split_summaries`, and :attr:`last_score` is the value the best model is
    chosen by (e.g. for a tuning objective).

    :param eval_env: the evaluation VecEnv (one sub-env per task)
    :param n_eval_episodes: episodes per task (mtrl's published runs use 1)
    :param eval_freq: evaluate every ``eval_freq`` callback calls (each call is one ``VecEnv.step`` of the training env)
    :param log_path: folder for ``evaluations.npz`` (timesteps, per-task success and reward)
    :param best_model_save_path: folder where ``best_model.zip`` is saved
    :param deterministic: deterministic actions (mtrl: ``tanh(mu)``)
    :param callback_on_new_best: called when a new best model is found
    :param callback_after_eval: called after every evaluation
    :param verbose: 1 prints a line per evaluation
    :param terminate_on_success: end evaluation episodes at success (Meta-World's protocol, see
        :func:`evaluate_per_task`)
    :param one_episode_per_goal: evaluate every goal of every task once instead of ``n_eval_episodes`` per task
    :param video_folder: after each evaluation, record one more deterministic episode of every task
        (:func:`record_task_episodes`; the eval env needs ``render_mode="rgb_array"``) into
        ``<video_folder>/<task>_<timestep>.<video_format>``, and log it to TensorBoard as ``eval/<task>/video`` when the
        logger writes TensorBoard; ``None``: no videos
    :param video_format: ``"mp4"`` or ``"gif"``
    """

    #: what a run checkpoint saves (:mod:`mtsb3.common.resume`): the evaluation history and the best score
    checkpoint_attrs = (
        *EVAL_CALLBACK_ATTRS,
        "evaluations_task_success",
        "evaluations_task_reward",
        "best_score",
        "last_score",
        "last_success_rate",
        "last_results",
        "last_summary",
        "last_split_summaries",
    )

    def __init__(
        self,
        eval_env: VecEnv | gym.Env,
        n_eval_episodes: int = 1,
        eval_freq: int = 10_000,
        log_path: str | None = None,
        best_model_save_path: str | None = None,
        deterministic: bool = True,
        callback_on_new_best: BaseCallback | None = None,
        callback_after_eval: BaseCallback | None = None,
        verbose: int = 1,
        terminate_on_success: bool = False,
        one_episode_per_goal: bool = False,
        video_folder: str | None = None,
        video_format: str = "mp4",
    ):
        if n_eval_episodes < 1:
            raise ValueError(f"n_eval_episodes must be >= 1, got {n_eval_episodes}")
        if video_format not in VIDEO_FORMATS:
            raise ValueError(f"Unsupported video_format {video_format!r}: expected one of {VIDEO_FORMATS}")
        self.video_folder, self.video_format = video_folder, video_format
        super().__init__(
            eval_env,
            callback_on_new_best=callback_on_new_best,
            callback_after_eval=callback_after_eval,
            n_eval_episodes=n_eval_episodes,
            eval_freq=eval_freq,
            log_path=log_path,
            best_model_save_path=best_model_save_path,
            deterministic=deterministic,
            verbose=verbose,
        )
        self.terminate_on_success = terminate_on_success
        self.one_episode_per_goal = one_episode_per_goal
        self.last_results: dict[str, dict[str, float]] = {}
        self.last_summary: dict[str, float] = {}
        self.last_split_summaries: dict[str, dict[str, float]] = {}
        self.last_score = -np.inf
        self.best_score = -np.inf
        self.last_success_rate = float("nan")
        self.evaluations_task_success: list[list[float]] = []
        self.evaluations_task_reward: list[list[float]] = []
        self._continue_training = True

    def _init_callback(self) -> None:
        super()._init_callback()
        check_env_tasks(self.model, self.eval_env)  # fail when training starts, not at the first evaluation

    def _task_splits(self) -> dict[str, list[str]]:
        """:return: ``{split: [task names in the eval env]}``, empty when the env has no ``task_splits``."""
        splits = first_sub_env_attr(self.eval_env, "task_splits")
        task_names = first_sub_env_attr(self.eval_env, "task_names")
        if not splits or task_names is None:
            return {}
        named = {split: [task_names[t] for t in tasks] for split, tasks in splits.items()}
        return {split: [n for n in names if n in self.last_results] for split, names in named.items()}

    def evaluate(self) -> dict[str, dict[str, float]]:
        """Run one evaluation now, log it, and keep the best model; :return: the per-task results."""
        sync_envs_normalization(self.training_env, self.eval_env)
        self.last_results = evaluate_per_task(
            self.model,
            self.eval_env,
            self.n_eval_episodes,
            self.deterministic,
            terminate_on_success=self.terminate_on_success,
            one_episode_per_goal=self.one_episode_per_goal,
        )
        self.last_summary = summarize(self.last_results)
        self.last_split_summaries = {
            split: summarize({name: self.last_results[name] for name in names})
            for split, names in self._task_splits().items()
            if names
        }
        has_success = not np.isnan(self.last_summary["success_rate"])
        self.last_mean_reward = self.last_summary["mean_reward"]
        self.last_success_rate = self.last_summary["success_rate"]
        self.last_score = self.last_success_rate if has_success else self.last_mean_reward

        self.logger.record("eval/mean_reward", self.last_mean_reward)
        self.logger.record("eval/mean_ep_length", self.last_summary["mean_ep_length"])
        if has_success:
            self.logger.record("eval/success_rate", self.last_success_rate)
        for name, result in self.last_results.items():
            self.logger.record(f"eval/{name}/mean_reward", result["mean_reward"])
            if not np.isnan(result["success_rate"]):
                self.logger.record(f"eval/{name}/success_rate", result["success_rate"])
        for split, summary in self.last_split_summaries.items():
            prefix = f"eval_{SPLIT_LOG_NAMES.get(split, split)}"
            self.logger.record(f"{prefix}/mean_reward", summary["mean_reward"])
            if not np.isnan(summary["success_rate"]):
                self.logger.record(f"{prefix}/success_rate", summary["success_rate"])
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        if self.verbose >= 1:
            success = f", success rate {self.last_success_rate:.2f}" if has_success else ""
            print(f"Eval num_timesteps={self.num_timesteps}, mean reward {self.last_mean_reward:.2f}{success}")

        if self.log_path is not None:
            self.evaluations_timesteps.append(self.num_timesteps)
            self.evaluations_task_success.append([r["success_rate"] for r in self.last_results.values()])
            self.evaluations_task_reward.append([r["mean_reward"] for r in self.last_results.values()])
            np.savez(
                self.log_path,
                timesteps=self.evaluations_timesteps,
                task_names=list(self.last_results),
                success_rate=self.evaluations_task_success,
                mean_reward=self.evaluations_task_reward,
            )

        if self.video_folder is not None:
            self.record_videos()
        if self.last_score > self.best_score:
            self.best_score = self.last_score
            self.best_mean_reward = self.last_mean_reward
            if self.best_model_save_path is not None:
                self.model.save(os.path.join(self.best_model_save_path, "best_model"))
            if self.callback_on_new_best is not None:
                self._continue_training = self.callback_on_new_best.on_step()
        return self.last_results

    def record_videos(self) -> dict[str, str]:
        """
        Record one episode of every task into :attr:`video_folder` (and TensorBoard).

        :return: ``{task name: video file}``
        """
        assert self.video_folder is not None
        fps = render_fps(self.eval_env)
        paths = {}
        for name, frames in record_task_episodes(self.model, self.eval_env, self.deterministic).items():
            paths[name] = video_path(self.video_folder, name, self.num_timesteps, self.video_format)
            write_video(paths[name], frames, fps)
            log_video_to_tensorboard(self.logger, f"eval/{name}/video", frames, fps, self.num_timesteps)
        return paths

    def _on_step(self) -> bool:
        continue_training = True
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self._continue_training = True
            self.evaluate()
            self.logger.dump(self.num_timesteps)
            continue_training = self._continue_training
            if self.callback is not None:
                continue_training = continue_training and self._on_event()
        return continue_training
