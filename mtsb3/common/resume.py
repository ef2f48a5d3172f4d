"""
Crash-safe checkpoints of a whole training run, and resuming from them.

A run checkpoint is one folder ``<run>/checkpoints/step_<num_timesteps>/`` holding

* ``model.zip``: the model (parameters, optimisers, timestep and update counters, last observation);
* ``replay_buffer.pkl``: the replay buffer, filled rows only (off-policy algorithms; optional, see below);
* ``best_model.zip``: the best model so far, when the evaluation callback keeps one;
* ``state.pkl``: the global RNG states (Python, NumPy, torch), the action space's RNG, the sub-envs' RNGs (dynamics and
  task RNG) and counters (:func:`~mtsb3.common.run_state.get_env_state`), the callbacks' state (evaluation history,
  best score, call counters) and the episode statistics of the logger.

It is written under a temporary name and renamed (atomic on POSIX), so a crash never leaves a partial checkpoint; the
last ``keep`` are kept. :class:`RunCheckpointCallback` writes one after every ``save_freq`` calls (the zoo: after every
evaluation), at the next rollout start, i.e. after the gradient steps of that step, when model, buffer and envs agree.

**Exact resume.** Physics is not saved (a MuJoCo state is tens of MB per sub-env), so a resumed run starts new
episodes from the restored env RNGs. When the checkpoint falls on an episode boundary of every sub-env (Meta-World's
fixed-length episodes; the callback waits up to ``max_wait`` steps for one), the uninterrupted run restarts its
episodes the same way at the checkpoint, and a resumed run continues *exactly*: same parameters at the end. Off an
episode boundary, the resumed run restarts the interrupted episodes (close, not identical).

**Buffer size.** The buffer dominates a checkpoint: about ``2 x obs bytes`` per stored transition (observations and
next observations). Proprioceptive Meta-World MT10 (39 float32 + task index) is about 0.36 GB per million transitions;
the pixel presets (3 stacked 84x84 RGB frames, uint8) store 127 KB per transition, 12.7 GB for their full 100k buffer,
in every kept checkpoint. ``save_buffer=False`` (``train.py --no-checkpoint-buffer``, preset key ``checkpoint_buffer: false``)
leaves it out; a resumed run then refills an empty buffer for ``learning_starts`` steps before updating again.
"""

from __future__ import annotations

import os
import pickle
import shutil
import uuid
import warnings
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from mtgym.versions import get_versions
from mtsb3.common.run_state import (
    get_callback_state,
    get_env_state,
    pack_buffer,
    set_callback_state,
    set_env_state,
    unpack_buffer,
)
from mtsb3.common.save_util import get_rng_state, set_rng_state

CHECKPOINT_FOLDER = "checkpoints"
_PREFIX = "step_"


def list_checkpoints(run_folder: str | os.PathLike) -> list[Path]:
    """:return: the complete checkpoints of a run folder, oldest first"""
    root = Path(run_folder) / CHECKPOINT_FOLDER
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def latest_checkpoint(run_folder: str | os.PathLike) -> Path | None:
    """:return: the newest complete checkpoint of a run folder, ``None`` if it has none"""
    checkpoints = list_checkpoints(run_folder)
    return checkpoints[-1] if checkpoints else None


def restart_episodes(model: BaseAlgorithm) -> None:
    """Reset the model's env and make the reset observation the model's last one (new episodes start)."""
    env = model.get_env()
    assert env is not None
    model._last_obs = env.reset()  # type: ignore[assignment]
    model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        model._last_original_obs = vec_normalize.get_original_obs()


def _write_pickle(path: Path, obj: Any) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def _read_pickle(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


class RunCheckpointCallback(BaseCallback):
    """
    Write a run checkpoint (see the module docstring) every ``save_freq`` calls and at the end of training, and resume
    a run from its latest one (:meth:`resume`).

    :param run_folder: the run folder (checkpoints go to ``<run_folder>/checkpoints``)
    :param save_freq: calls (``VecEnv`` steps) between checkpoints; ``0`` writes one at the end of training only
    :param keep: how many checkpoints to keep (the newest)
    :param save_buffer: include the replay buffer
    :param callbacks: the other callbacks whose state is saved (evaluation history, per-task statistics)
    :param eval_env: the evaluation env, whose RNGs are saved too
    :param best_model_path: the ``best_model.zip`` of the evaluation callback, kept with each checkpoint
    :param max_wait: calls to wait after ``save_freq`` for an episode boundary of every sub-env (then the resume is
        exact); after that the checkpoint is written mid-episode
    :param verbose: 1 prints a line per checkpoint
    """

    #: the attributes that a checkpoint saves of this callback
    checkpoint_attrs = ("_due_since",)

    def __init__(
        self,
        run_folder: str | os.PathLike,
        save_freq: int,
        keep: int = 2,
        save_buffer: bool = True,
        callbacks: Sequence[BaseCallback] = (),
        eval_env: VecEnv | None = None,
        best_model_path: str | os.PathLike | None = None,
        max_wait: int = 1000,
        verbose: int = 1,
    ):
        super().__init__(verbose)
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        if save_freq < 0:
            raise ValueError(f"save_freq must be >= 0, got {save_freq}")
        self.run_folder = Path(run_folder)
        self.save_freq, self.keep, self.save_buffer, self.max_wait = save_freq, keep, save_buffer, max_wait
        self.stateful = list(callbacks)
        self.eval_env = eval_env
        self.best_model_path = None if best_model_path is None else Path(best_model_path)
        self._due_since: int | None = None
        self._at_boundary = False
        self._last_saved_step: int | None = None

    def _on_step(self) -> bool:
        if self.save_freq > 0 and self.n_calls % self.save_freq == 0 and self._due_since is None:
            self._due_since = self.n_calls
        self._at_boundary = bool(np.all(self.locals["dones"]))
        return True

    def _on_rollout_start(self) -> None:
        # after the previous step's gradient updates: model, buffer and envs agree
        if self._due_since is not None and (self._at_boundary or self.n_calls - self._due_since >= self.max_wait):
            self.save(self._at_boundary)

    def _on_training_end(self) -> None:
        if self._last_saved_step != self.model.num_timesteps:
            self.save(self._at_boundary)

    def save(self, at_episode_boundary: bool) -> Path:
        """
        Write a checkpoint now. On an episode boundary the training env's episodes are restarted from the saved RNGs
        (as a resumed run does), which makes the resume exact.

        :return: the checkpoint folder
        """
        self._due_since = None
        root = self.run_folder / CHECKPOINT_FOLDER
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"{_PREFIX}{self.model.num_timesteps:012d}"
        tmp = root / f".tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            self._write(tmp, at_episode_boundary)
            if final.exists():  # the same step again (a resumed run): the older copy goes only once the new one is done
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in list_checkpoints(self.run_folder)[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        self._last_saved_step = self.model.num_timesteps
        if self.verbose >= 1:
            kind = "episode boundary" if at_episode_boundary else "mid-episode"
            print(f"Checkpoint at {self.model.num_timesteps} timesteps ({kind}): {final}")
        return final

    def _write(self, folder: Path, at_episode_boundary: bool) -> None:
        model = self.model
        env_state = get_env_state(model.get_env())
        at_episode_boundary = at_episode_boundary and env_state is not None
        if at_episode_boundary:
            restart_episodes(model)
        state = {
            "num_timesteps": model.num_timesteps,
            "at_episode_boundary": at_episode_boundary,
            "rng": get_rng_state(),
            "action_space_rng": model.action_space.np_random.bit_generator.state,
            "env": env_state,
            "eval_env": None if self.eval_env is None else get_env_state(self.eval_env),
            "callbacks": [get_callback_state(cb) for cb in (*self.stateful, self)],
            "ep_info_buffer": None if model.ep_info_buffer is None else list(model.ep_info_buffer),
            "ep_success_buffer": None if model.ep_success_buffer is None else list(model.ep_success_buffer),
            "versions": get_versions(),
        }
        model.save(folder / "model.zip")
        buffer = getattr(model, "replay_buffer", None)
        if self.save_buffer and buffer is not None:
            _write_pickle(folder / "replay_buffer.pkl", pack_buffer(buffer))
        if self.best_model_path is not None and self.best_model_path.is_file():
            shutil.copy2(self.best_model_path, folder / "best_model.zip")
        _write_pickle(folder / "state.pkl", state)  # last: a checkpoint without it is never renamed

    def resume(self, algo_class: type[BaseAlgorithm], env: VecEnv, **load_kwargs: Any) -> BaseAlgorithm | None:
        """
        Load the latest checkpoint of the run folder, if any, and restore the run: model, buffer, env and callback
        state, RNGs. Then ``model.learn(remaining, callback=..., reset_num_timesteps=False)`` continues it.

        :param algo_class: the model's class
        :param env: a new training env, built as the saved one
        :param load_kwargs: passed to ``algo_class.load`` (e.g. ``device``, ``tensorboard_log``)
        :return: the model, or ``None`` when the run folder has no checkpoint
        """
        path = latest_checkpoint(self.run_folder)
        if path is None:
            return None
        state = _read_pickle(path / "state.pkl")
        model = algo_class.load(path / "model.zip", env=env, force_reset=False, **load_kwargs)
        saved_obs = model._last_obs
        env.reset()  # uses up the new env's seeds, which would override the restored RNGs
        self._restore_env(env, state["env"], "training")
        restart_episodes(model)
        if state["at_episode_boundary"] and not _same_obs(saved_obs, model._last_obs):
            warnings.warn(f"The envs restored from {path} start other episodes than the saved run: the resume is not exact")
        self._restore_buffer(model, path)
        if self.eval_env is not None and state["eval_env"] is not None:
            self.eval_env.reset()
            self._restore_env(self.eval_env, state["eval_env"], "evaluation")
        for callback, callback_state in zip((*self.stateful, self), state["callbacks"], strict=True):
            set_callback_state(callback, callback_state)
        for name in ("ep_info_buffer", "ep_success_buffer"):  # the logger's rollout/ means continue
            saved = state[name]
            setattr(model, name, None if saved is None else deque(saved, maxlen=model._stats_window_size))
        model.action_space.np_random.bit_generator.state = state["action_space_rng"]
        if self.best_model_path is not None and (path / "best_model.zip").is_file():
            shutil.copy2(path / "best_model.zip", self.best_model_path)
        set_rng_state(state["rng"])  # last: loading and resetting may draw from the global RNGs
        self._last_saved_step = model.num_timesteps
        if self.verbose >= 1:
            exact = "exactly" if state["at_episode_boundary"] else "restarting the interrupted episodes"
            print(f"Resuming from {path} at {model.num_timesteps} timesteps ({exact})")
        return model

    @staticmethod
    def _restore_env(env: VecEnv, state: dict[str, Any] | None, kind: str) -> None:
        if state is None:
            warnings.warn(f"The checkpoint has no {kind} env state (sub-envs in other processes): its episodes start anew")
            return
        missing = set_env_state(env, state)
        if missing:
            warnings.warn(f"The new {kind} env lacks saved env objects, whose state is lost: {', '.join(missing)}")

    def _restore_buffer(self, model: BaseAlgorithm, path: Path) -> None:
        if getattr(model, "replay_buffer", None) is None:
            return
        if (path / "replay_buffer.pkl").is_file():
            buffer = unpack_buffer(_read_pickle(path / "replay_buffer.pkl"))
            buffer.device = model.device
            model.replay_buffer = buffer  # type: ignore[attr-defined]
        else:
            # saved without buffer: collect learning_starts fresh steps before the updates resume
            model.learning_starts = model.num_timesteps + model.learning_starts  # type: ignore[attr-defined]
            if self.verbose >= 1:
                print(f"{path} has no replay buffer: refilling it until {model.learning_starts} timesteps")  # type: ignore[attr-defined]


def _same_obs(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)
