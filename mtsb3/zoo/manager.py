"""
The multi-task ``ExperimentManager``: rl-zoo's, with one task per sub-env, per-task evaluation, a richer run folder,
and tuning on the mean success rate with our storages.

This module imports ``rl_zoo3``, which patches Gymnasium on import (``rl_zoo3/gym_patches.py``):
:func:`mtsb3.zoo.register_zoo` imports it when called, ``import mtsb3.zoo`` does not.
"""

from __future__ import annotations

import csv
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import optuna
import yaml
from optuna.trial import TrialState
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER
from rl_zoo3.utils import ALGOS, get_callback_list
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.logger import CSVOutputFormat, HumanOutputFormat, make_output_format
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecTransposeImage,
    is_vecenv_wrapped,
)

from mtgym.versions import get_versions
from mtsb3.common.callbacks import MultiTaskEvalCallback
from mtsb3.common.env_util import make_mt_vec_env
from mtsb3.common.resume import RunCheckpointCallback, latest_checkpoint
from mtsb3.common.rollout_metrics import PerTaskRolloutCallback
from mtsb3.zoo.cli import ZooOptions
from mtsb3.zoo.env_info import env_info
from mtsb3.zoo.hyperparams import ZOO_ONLY_KEYS, _merge_hyperparams, _yaml_safe, apply_recipe, resolve_replay_buffer_class
from mtsb3.zoo.storage import earlier_trials_reach_cap, make_storage, trial_cap_reached
from mtsb3.zoo.tuning import TrialReportCallback


def _vec_env_class(name: str) -> type[VecEnv]:
    """:return: the VecEnv class of a preset's ``vec_env`` key (rl-zoo's ``--vec-env`` choices)"""
    classes: dict[str, type[VecEnv]] = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}
    if name not in classes:
        raise ValueError(f"vec_env must be one of {sorted(classes)} (as rl-zoo's --vec-env), got {name!r}")
    return classes[name]


class _TruthyIndex(int):
    """
    Trial 0 as a ``--trial-id`` that rl-zoo loads: ``ExperimentManager.read_hyperparameters`` loads a stored trial only
    ``if self.trial_id:`` (rl_zoo3/exp_manager.py), which skips trial 0, and it has no smaller hook to override.
    """

    def __bool__(self) -> bool:
        return True


class MTExperimentManager(ExperimentManager):
    """
    rl-zoo's ``ExperimentManager`` for multi-task envs (see the module docstring). Envs that are not MTEnvs keep
    rl-zoo's behaviour, so ``scripts/train.py`` also runs the zoo's own algorithms on plain Gymnasium ids.
    """

    #: our extra options (heartbeats, CLI precedence), set by :func:`make_experiment_manager_class`
    options = ZooOptions()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.env_info = env_info(self.env_name.gym_id, self.env_kwargs)
        self.is_multi_task, self.task_names = self.env_info.is_multi_task, self.env_info.task_names
        self.recipe: str | None = None
        self.checkpoint_buffer = self.options.checkpoint_buffer
        # Meta-World's evaluation protocol (metaworld.evaluation.evaluation), preset keys of the Meta-World+ ids
        self.eval_terminate_on_success = self.eval_one_episode_per_goal = False
        self.checkpointer: RunCheckpointCallback | None = None
        self.resume_from: Path | None = None
        if self.options.run_folder is not None:  # a fixed run folder (sweep cells, resuming a run)
            self.save_path = os.path.normpath(self.options.run_folder)
            self.params_path = os.path.join(self.save_path, self.env_name)
        self.eval_video: str | None = None

    # -- hyperparameters -------------------------------------------------------------------------------------------
    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.trial_id == 0:
            self.trial_id = _TruthyIndex(0)
        return super().read_hyperparameters()

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> tuple:
        hyperparams = dict(hyperparams)
        zoo_keys = {key: hyperparams.pop(key) for key in ZOO_ONLY_KEYS if key in hyperparams}
        self.recipe = zoo_keys.get("recipe")
        # "mp4" or "gif": one evaluation episode per task recorded into <run>/videos (MultiTaskEvalCallback)
        self.eval_video: str | None = zoo_keys.get("eval_video")
        for key, attr, kind in (
            ("eval_episodes", "n_eval_episodes", int),
            ("eval_freq", "eval_freq", int),
            ("checkpoint_buffer", "checkpoint_buffer", bool),
            ("eval_terminate_on_success", "eval_terminate_on_success", bool),
            ("eval_one_episode_per_goal", "eval_one_episode_per_goal", bool),
        ):
            if key in zoo_keys and key not in self.options.cli_keys:
                setattr(self, attr, kind(zoo_keys[key]))
        if "vec_env" in zoo_keys and "vec_env" not in self.options.cli_keys:
            self.vec_env_class = _vec_env_class(zoo_keys["vec_env"])
        n_envs_given = "n_envs" in hyperparams
        hyperparams = resolve_replay_buffer_class(hyperparams)
        hyperparams, env_wrapper, callbacks, vec_env_wrapper = super()._preprocess_hyperparams(hyperparams)
        if self._eval_env_kwargs_args is None:
            # rl-zoo keeps the eval env on the CLI kwargs when env_kwargs come from the YAML; use the same env
            self.eval_env_kwargs = self.env_kwargs
        if self.recipe is not None:
            hyperparams = apply_recipe(self.recipe, zoo_keys.get("recipe_kwargs"), hyperparams)
        if self.is_multi_task and self.task_names is not None and not n_envs_given:
            # one sub-env per (training) task, as mtrl's MetaWorld setup (mtrl/env/builder.py, build_metaworld_vec_env)
            self.n_envs = len(self.env_info.train_tasks or self.task_names)
            if self.verbose > 0:
                print(f"Multi-task env: using {self.n_envs} environments, one per task")
        return hyperparams, env_wrapper, callbacks, vec_env_wrapper

    # -- environments ----------------------------------------------------------------------------------------------
    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
        if not self.is_multi_task:
            return super().create_envs(n_envs, eval_env=eval_env, no_log=no_log)
        # the eval env always has one sub-env per task (finite task sets), whatever --n-eval-envs says; with task
        # splits (HiP-BMDP), training uses the train split and evaluation every split (mtrl's DMC experiments,
        # mtrl/experiment/dmcontrol.py, which evaluates eval_base, eval_interpolation and eval_extrapolation)
        n = None if eval_env and self.task_names is not None else n_envs
        env = make_mt_vec_env(
            self.env_name.gym_id,
            n_envs=n,
            tasks=self.env_info.eval_tasks if eval_env else self.env_info.train_tasks,
            seed=self.seed,
            vec_env_cls=self.vec_env_class,
            env_kwargs=self._eval_env_kwargs() if eval_env else self.env_kwargs,
            wrapper_class=self.env_wrapper,
            monitor_dir=None if eval_env or no_log else self.save_path,
            vec_env_kwargs=self.vec_env_kwargs,
        )
        if self.vec_env_wrapper is not None:
            env = self.vec_env_wrapper(env)
        env = self._maybe_normalize(env, eval_env)
        if self.frame_stack is not None:
            env = VecFrameStack(env, self.frame_stack)
        spaces_ = env.observation_space.spaces.values() if hasattr(env.observation_space, "spaces") else []
        if not is_vecenv_wrapped(env, VecTransposeImage) and any(
            is_image_space(s) and not is_image_space_channels_first(s) for s in spaces_
        ):
            env = VecTransposeImage(env)
        return env

    def _eval_env_kwargs(self) -> dict[str, Any]:
        """The eval env's kwargs; they render ``rgb_array`` frames when evaluation videos are on."""
        if self.eval_video is None:
            return self.eval_env_kwargs
        return {**(self.eval_env_kwargs or {}), "render_mode": "rgb_array"}

    def _eval_callback(self, eval_env: VecEnv, eval_freq: int, log_path: str | None, **kwargs: Any) -> EvalCallback:
        # multi-task: exactly n_eval_episodes deterministic episodes per task, per-task logging
        kwargs.update(
            n_eval_episodes=self.n_eval_episodes, eval_freq=eval_freq, log_path=log_path, deterministic=self.deterministic_eval
        )
        if not self.is_multi_task:
            return EvalCallback(eval_env, **kwargs)
        if self.eval_video is not None and log_path is not None:
            kwargs.update(video_folder=os.path.join(log_path, "videos"), video_format=self.eval_video)
        return MultiTaskEvalCallback(
            eval_env,
            terminate_on_success=self.eval_terminate_on_success,
            one_episode_per_goal=self.eval_one_episode_per_goal,
            **kwargs,
        )

    def create_callbacks(self) -> None:
        eval_freq = self.eval_freq
        self.eval_freq = -1  # rl-zoo's EvalCallback is replaced by ours below
        super().create_callbacks()
        self.eval_freq = eval_freq
        if self.optimize_hyperparameters:
            return
        eval_callback = None
        if self.eval_freq > 0:
            self.eval_freq = max(self.eval_freq // self.n_envs, 1)
            if self.verbose > 0:
                print("Creating test environment")
            eval_env = self.create_envs(self.n_eval_envs, eval_env=True)
            eval_callback = self._eval_callback(
                eval_env, self.eval_freq, self.save_path, best_model_save_path=self.save_path, verbose=self.verbose
            )
            self.callbacks.append(eval_callback)
        if self.is_multi_task:
            self.callbacks.append(PerTaskRolloutCallback(self.task_names))
        self._add_checkpointer(eval_callback)

    def _add_checkpointer(self, eval_callback: EvalCallback | None) -> None:
        """A run checkpoint after every evaluation (or every ``--checkpoint-freq`` timesteps), and at the end."""
        freq = self.options.checkpoint_freq
        if freq == 0:
            return
        save_freq = (self.eval_freq if eval_callback is not None else 0) if freq is None else max(freq // self.n_envs, 1)
        # wait at most one episode for a boundary of every sub-env (then the resume is exact)
        max_wait = gym.spec(self.env_name.gym_id).max_episode_steps or 1000
        self.checkpointer = RunCheckpointCallback(
            self.save_path,
            save_freq,
            keep=self.options.keep_checkpoints,
            save_buffer=self.checkpoint_buffer,
            callbacks=[cb for cb in self.callbacks if cb is eval_callback or isinstance(cb, PerTaskRolloutCallback)],
            eval_env=None if eval_callback is None else eval_callback.eval_env,
            best_model_path=None if eval_callback is None else os.path.join(self.save_path, "best_model.zip"),
            max_wait=max_wait,
            verbose=self.verbose,
        )
        self.callbacks.append(self.checkpointer)

    # -- resuming --------------------------------------------------------------------------------------------------
    def setup_experiment(self) -> tuple[BaseAlgorithm, dict[str, Any]] | None:
        if self.options.run_folder is not None and not self.optimize_hyperparameters:
            self.resume_from = latest_checkpoint(self.save_path)
            # rl-zoo's continue-training path calls _load_pretrained_agent (below) instead of the constructor
            self.continue_training = self.continue_training or self.resume_from is not None
        return super().setup_experiment()

    def _load_pretrained_agent(self, hyperparams: dict[str, Any], env: VecEnv) -> BaseAlgorithm:
        if self.resume_from is None or self.checkpointer is None:
            return super()._load_pretrained_agent(hyperparams, env)
        model = self.checkpointer.resume(
            ALGOS[self.algo], env, device=self.device, tensorboard_log=self.tensorboard_log, verbose=self.verbose
        )
        assert model is not None
        return model

    # -- run folder ------------------------------------------------------------------------------------------------
    def _save_config(self, saved_hyperparams: dict[str, Any]) -> None:
        super()._save_config(saved_hyperparams)
        algo_cls = ALGOS[self.algo]
        info = {
            "env_id": self.env_name.gym_id,
            "task_names": self.task_names,
            "algo": self.algo,
            "algo_class": f"{algo_cls.__module__}.{algo_cls.__qualname__}",
            "recipe": self.recipe,
            "seed": self.seed,
            "n_envs": self.n_envs,
            "n_timesteps": self.n_timesteps,
            "n_eval_episodes_per_task": self.n_eval_episodes,
            "env_kwargs": _yaml_safe(self.env_kwargs),
            "hyperparameters": _yaml_safe(self._hyperparams),
            "versions": get_versions(),
        }
        with open(os.path.join(self.params_path, "run.yml"), "w") as f:
            yaml.safe_dump(info, f, sort_keys=False)

    def learn(self, model: BaseAlgorithm) -> None:
        # stdout (+ TensorBoard with -tb) as rl-zoo, plus progress.csv in the run folder for plot_results.py
        resumed = self.resume_from is not None
        progress = Path(self.save_path) / "progress.csv"
        kept_rows = _progress_rows(progress, model.num_timesteps) if resumed else []
        logger = configure_logger(self.verbose, self.tensorboard_log, type(model).__name__, reset_num_timesteps=not resumed)
        csv_format = make_output_format("csv", self.save_path)
        assert isinstance(csv_format, CSVOutputFormat)
        for row in kept_rows:  # a resumed run continues progress.csv from its checkpoint
            csv_format.write(row, dict.fromkeys(row))
        logger.output_formats.append(csv_format)
        for output in logger.output_formats:
            if isinstance(output, HumanOutputFormat):
                output.max_length = 60  # per-task keys (rollout/<task>/success_rate) must not collide when truncated
        model.set_logger(logger)
        if resumed:
            self._learn_remainder(model)
        else:
            super().learn(model)

    def _learn_remainder(self, model: BaseAlgorithm) -> None:
        """rl-zoo's ``learn()`` for a resumed model: the timestep counters continue, and only the remainder is trained."""
        kwargs: dict[str, Any] = {"callback": self.callbacks} if self.callbacks else {}
        if self.log_interval != -1:  # rl-zoo: -1 is SB3's default, < -1 no logging
            kwargs["log_interval"] = self.log_interval if self.log_interval > -1 else None
        try:
            model.learn(max(self.n_timesteps - model.num_timesteps, 0), reset_num_timesteps=False, **kwargs)
        except KeyboardInterrupt:
            pass
        finally:
            if self.callbacks:
                self.callbacks[0].on_training_end()
            assert model.env is not None
            model.env.close()

    # -- tuning ----------------------------------------------------------------------------------------------------
    # rl-zoo's objective() builds its own TrialEvalCallback (reward only) and replaces *_kwargs dicts instead of merging
    # them, and hyperparameters_optimization() builds the storage inline, with no hook for either: both are overridden.
    def objective(self, trial: optuna.Trial) -> float:
        if self.max_total_trials is not None and earlier_trials_reach_cap(trial, self.max_total_trials):
            print(f"Trial {trial.number} not run: the study already has {self.max_total_trials} trials (--max-total-trials)")
            trial.set_user_attr("surplus", True)
            self._stop = True
            return float("nan")  # Optuna stores a NaN objective as FAILED, which the cap does not count
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        additional_args = {"using_her_replay_buffer": False, "her_kwargs": {}}
        sampled = HYPERPARAMS_SAMPLER[self.algo](trial, self.n_actions, self.n_envs, additional_args)
        return self._train_trial(trial, _merge_hyperparams(self._hyperparams, sampled))

    def _train_trial(self, trial: optuna.Trial, kwargs: dict[str, Any]) -> float:
        """Train one trial's model, evaluating it ``n_evaluations`` times; :return: the last evaluation's score."""
        env = self.create_envs(self.n_envs, no_log=True)
        model = ALGOS[self.algo](
            env=env, tensorboard_log=None, seed=None, verbose=max(self.verbose - 1, 0), device=self.device, **kwargs
        )
        eval_env = self.create_envs(self.n_eval_envs, eval_env=True)
        eval_freq = max(int(self.n_timesteps / self.n_evaluations) // self.n_envs, 1)
        path = None
        if self.optimization_log_path is not None:
            path = os.path.join(self.optimization_log_path, f"trial_{trial.number}")
        reporter = TrialReportCallback(trial)
        eval_callback = self._eval_callback(eval_env, eval_freq, path, best_model_save_path=path, callback_after_eval=reporter)
        callbacks = [*get_callback_list({"callback": self.specified_callbacks}), eval_callback]
        try:
            model.learn(self.n_timesteps, callback=callbacks)
        except (AssertionError, ValueError) as e:
            # as rl-zoo: random hyperparameters can give NaNs; prune instead of failing the study
            print(f"Trial {trial.number} pruned: {e}")
            raise optuna.exceptions.TrialPruned() from e
        finally:
            model.env.close()
            eval_env.close()
        if reporter.is_pruned:
            raise optuna.exceptions.TrialPruned()
        if reporter.last_score is None:
            raise RuntimeError(f"trial {trial.number} ran no evaluation (n_timesteps={self.n_timesteps})")
        return reporter.last_score

    def hyperparameters_optimization(self) -> None:
        """rl-zoo's loop with our storage (heartbeats), an exact ``--max-total-trials`` cap and a pandas report."""
        if self.verbose > 0:
            print("Optimizing hyperparameters")
        self.tensorboard_log = None
        storage = make_storage(self.storage, self.options) if self.storage is not None else None
        study = optuna.create_study(
            sampler=self._create_sampler(self.sampler),
            pruner=self._create_pruner(self.pruner),
            storage=storage,
            study_name=self.study_name,
            load_if_exists=True,
            direction="maximize",
        )
        if "command" not in study.user_attrs:
            study.set_user_attr("command", " ".join(sys.orig_argv))
            study.set_user_attr("env_id", self.env_name.gym_id)
            study.set_user_attr("task_names", self.task_names)
        try:
            if self.max_total_trials is None:
                study.optimize(self.objective, n_trials=self.n_trials, n_jobs=self.n_jobs, gc_after_trial=True)
            else:
                # one trial at a time, so that the cap is checked (race-free, see objective) before each
                self._stop = False
                wait_s = self.options.heartbeat_interval
                while not self._stop and not trial_cap_reached(study, storage, self.max_total_trials, wait_s):
                    study.optimize(self.objective, n_trials=1, gc_after_trial=True)
        except KeyboardInterrupt:
            pass
        self._report(study)

    def _report(self, study: optuna.Study) -> None:
        trials = study.get_trials(deepcopy=False)
        print(f"Number of trials in the study: {len(trials)}")
        states = {s.name: sum(t.state == s for t in trials) for s in TrialState}
        print("Trial states: " + ", ".join(f"{k}={v}" for k, v in states.items() if v))
        try:
            best = study.best_trial
        except ValueError:
            print("No completed trial yet")
            return
        print(f"Best trial: {best.number}, value: {best.value}")
        print("Params:")
        for key, value in best.params.items():
            print(f"    {key}: {value}")
        report_name = (
            f"report_{self.env_name}_{self.n_trials}-trials-{self.n_timesteps}-{self.sampler}-{self.pruner}_{int(time.time())}"
        )
        log_path = os.path.join(self.log_folder, self.algo, report_name)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        study.trials_dataframe().to_csv(f"{log_path}.csv")
        if self.verbose:
            print(f"Writing report to {log_path}.csv")


def _progress_rows(path: Path, num_timesteps: int) -> list[dict[str, str]]:
    """:return: the non-empty cells of the rows of ``progress.csv`` logged up to ``num_timesteps`` (a checkpoint)"""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = []
    for row in rows:
        step = row.get("time/total_timesteps") or ""
        if step and float(step) > num_timesteps:
            continue
        kept.append({key: value for key, value in row.items() if value not in ("", None)})
    return kept


def make_experiment_manager_class(options: ZooOptions | None = None) -> type[MTExperimentManager]:
    """
    :param options: our extra options (heartbeats, CLI precedence)
    :return: the ``ExperimentManager`` subclass for multi-task envs
    """
    MTExperimentManager.options = options or ZooOptions()
    return MTExperimentManager
