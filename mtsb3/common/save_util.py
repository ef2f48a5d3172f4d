"""Checkpoint helpers: atomic file writes, global RNG snapshots and the task metadata of a multi-task env."""

from __future__ import annotations

import glob
import importlib
import io
import json
import os
import pathlib
import random
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.save_util import save_to_pkl
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.vec_env import VecEnv

from mtgym.versions import get_versions, warn_if_simulators_differ
from mtsb3.common.env_util import first_sub_env_attr

SelfCheckpointed = TypeVar("SelfCheckpointed", bound="MultiTaskCheckpointMixin")


@contextmanager
def atomic_path(path: str | pathlib.Path, suffix: str) -> Iterator[str]:
    """
    Yield a temporary path next to ``path``; on success it replaces ``path`` with ``os.replace`` (atomic on POSIX),
    so a crash mid-write never leaves a truncated checkpoint behind.

    :param path: the final path; like SB3, ``.<suffix>`` is appended when it has no suffix
    :param suffix: the file suffix, without the dot (``"zip"``, ``"pkl"``)
    """
    final = pathlib.Path(path)
    if final.suffix == "":
        final = final.with_suffix(f".{suffix}")
    final.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name keeps the suffix so SB3's writers do not append another one
    tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:12]}.tmp.{suffix}")
    started = time.time()
    try:
        yield str(tmp)
        os.replace(tmp, final)
        _remove_stale_temporaries(final, suffix, started)
    finally:
        if tmp.exists():
            tmp.unlink()


def _remove_stale_temporaries(final: pathlib.Path, suffix: str, before: float) -> None:
    """
    Remove the temporary files of earlier saves of ``final`` that were killed before their ``os.replace``.

    Only files last written before this save started are removed, so a concurrent save of the same path keeps its file.
    """
    for stale in final.parent.glob(f".{glob.escape(final.stem)}.{'[0-9a-f]' * 12}.tmp.{suffix}"):
        try:
            if stale.stat().st_mtime < before:
                stale.unlink()
        except FileNotFoundError:  # removed by another process meanwhile
            pass


def atomic_write(path: str | pathlib.Path | io.BufferedIOBase, suffix: str, write: Callable[[Any], None]) -> None:
    """
    Call ``write(target)`` on a temporary file and move it to ``path`` atomically; file objects are written directly.

    :param path: the destination (a path or a file object)
    :param suffix: the file suffix, without the dot
    :param write: the writer, e.g. SB3's ``save_to_pkl`` bound to an object
    """
    if isinstance(path, (str, os.PathLike)):
        with atomic_path(path, suffix) as tmp:
            write(tmp)
    else:
        write(path)


def get_rng_state() -> dict[str, Any]:
    """:return: the state of the global RNGs that SB3 training draws from (Python, NumPy, torch CPU and CUDA)."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": th.get_rng_state()}
    if th.cuda.is_available():
        state["torch_cuda"] = th.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """:param state: a snapshot from :func:`get_rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])
    if "torch_cuda" in state and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["torch_cuda"])


def describe_tasks(env: VecEnv | None) -> tuple[str | None, list[str] | None]:
    """
    :param env: a (multi-task) VecEnv, or ``None``
    :return: the env id of its first sub-env and its task names in task-index order (``None`` where unknown)
    """
    if env is None:
        return None, None
    spec = first_sub_env_attr(env, "spec")
    names = first_sub_env_attr(env, "task_names")
    return None if spec is None else spec.id, None if names is None else [str(name) for name in names]


def check_env_tasks(model: Any, env: VecEnv) -> None:
    """
    Check that ``env`` has the tasks of ``model`` in the same order: per-task heads, parameters and evaluation names
    are indexed by task.

    :param model: an algorithm; models that record no ``task_names`` (e.g. plain SB3 ones) are not checked
    :param env: the env to use the model on
    :raises ValueError: if ``env`` has other task names, or the same ones in another order
    """
    env_id, task_names = describe_tasks(env)
    saved, saved_env_id = getattr(model, "task_names", None), getattr(model, "env_id", None)
    if saved is None or task_names is None or task_names == saved:
        return
    if sorted(task_names) == sorted(saved):
        raise ValueError(
            f"The env has the model's tasks in another order: task index i means {task_names} in the env but "
            f"{saved} in the model (saved with env {saved_env_id!r}), so per-task heads and alphas would be mixed up"
        )
    raise ValueError(f"The env ({env_id!r}) has tasks {task_names}, the model was trained on {saved_env_id!r} with {saved}")


def _check_saved_by(path: str | pathlib.Path | io.BufferedIOBase, cls: type) -> None:
    """
    Refuse a checkpoint written by an unrelated algorithm class, before SB3 fails on it with a ``KeyError`` or an
    ``AttributeError`` (the policies of MTSAC and Distral have different modules and optimizers).

    :param path: the checkpoint passed to ``load``; file objects and checkpoints without the record are not checked
    :param cls: the class whose ``load`` was called
    :raises ValueError: if the checkpoint records a class that is neither a subclass nor a base of ``cls``
    """
    if not isinstance(path, (str, os.PathLike)):
        return
    candidates = [pathlib.Path(path), pathlib.Path(f"{os.fspath(path)}.zip")]  # SB3 appends .zip when missing
    try:
        with zipfile.ZipFile(next(p for p in candidates if p.is_file())) as archive:
            saved_by = json.loads(archive.read("data")).get("_saved_by")
    except (StopIteration, OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return  # SB3's load reports a missing or broken file
    if not isinstance(saved_by, str):
        return
    module, _, qualname = saved_by.partition(":")
    try:
        saved_cls = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError):
        saved_cls = None
    if saved_cls is None or not (issubclass(cls, saved_cls) or issubclass(saved_cls, cls)):
        name = qualname if saved_cls is not None else saved_by
        raise ValueError(f"{path} was saved by {name}, not {cls.__name__}: load it with {name}.load(...)")


class MultiTaskCheckpointMixin:
    """
    Checkpoints for multi-task off-policy algorithms (put it before the SB3 class: ``class MTSAC(MultiTaskCheckpointMixin,
    SAC)``).

    * ``save`` and ``save_replay_buffer`` write atomically (temporary file + ``os.replace``), so a crash mid-save never
      leaves a truncated checkpoint, and ``save`` stores the global RNG states.
    * The env id and the task names, in task-index order, are saved with the model (``env_id``, ``task_names``,
      set by :meth:`_record_tasks` at construction); ``load`` and ``set_env`` refuse an env whose tasks differ or come
      in another order, since per-task heads and parameters are indexed by task.
    * The versions of the packages a result depends on (:func:`mtgym.versions.get_versions`) are saved as
      ``package_versions``; ``load`` warns when the simulators (metaworld, mujoco, dm_control) differ from the
      installed ones, since Meta-World and DeepMind Control results are not comparable across physics versions.
    * ``load(..., resume=True)`` restores the RNG states, so ``load_replay_buffer`` + ``learn(...,
      reset_num_timesteps=False)`` on the same live env continue the run exactly.
    """

    env_id: str | None
    task_names: list[str] | None
    package_versions: dict[str, str | None]
    _rng_state: dict[str, Any] | None
    _saved_by: str | None

    def _record_tasks(self) -> None:
        """Record the env id and task names of ``self.env`` (call in ``__init__``, after the SB3 constructor)."""
        self.env_id, self.task_names = describe_tasks(self.env)  # type: ignore[attr-defined]
        self.package_versions = get_versions()
        self._rng_state = self._saved_by = None

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """
        Save the model like SB3, atomically (temporary file + ``os.replace``), with the global RNG states.

        :param path: where to save (``.zip`` is appended when there is no suffix)
        :param exclude: names of parameters that should be excluded in addition to the default ones
        :param include: names of parameters that might be excluded but should be included anyway
        """
        self._rng_state = get_rng_state()
        self.package_versions = get_versions()
        self._saved_by = f"{type(self).__module__}:{type(self).__qualname__}"
        try:
            atomic_write(path, "zip", lambda target: super(MultiTaskCheckpointMixin, self).save(target, exclude, include))
        finally:
            self._rng_state = self._saved_by = None

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """
        Save the replay buffer as a pickle file, atomically.

        :param path: where to save (``.pkl`` is appended when there is no suffix)
        """
        buffer = self.replay_buffer  # type: ignore[attr-defined]
        assert buffer is not None, "The replay buffer is not defined"
        atomic_write(path, "pkl", lambda target: save_to_pkl(target, buffer, self.verbose))  # type: ignore[attr-defined]

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfCheckpointed],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        resume: bool = False,
        **kwargs: Any,
    ) -> SelfCheckpointed:
        """
        Load a model like SB3's ``load``, and check that ``env`` has the task names in the saved order.

        :param resume: continue the saved run: keep the saved last observation (no env reset, so pass the same live
            env) and restore the global RNG states of the save. Then ``load_replay_buffer`` and
            ``learn(..., reset_num_timesteps=False)`` continue the run exactly.
        :raises ValueError: if ``env`` has other task names, or the same ones in another order, or if the checkpoint was
            saved by another algorithm class (e.g. a Distral checkpoint loaded with ``MTSAC.load``)
        The other parameters are those of ``BaseAlgorithm.load``.
        """
        _check_saved_by(path, cls)
        model = super().load(  # type: ignore[misc]
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset and not resume,
            **kwargs,
        )
        warn_if_simulators_differ(getattr(model, "package_versions", None), f"The checkpoint {path}")
        if model.env is not None:
            check_env_tasks(model, model.env)
        if resume:
            if model._rng_state is None:
                raise ValueError(f"{path} holds no RNG state: not saved by {cls.__name__}.save, so it cannot be resumed")
            set_rng_state(model._rng_state)
        model._rng_state = model._saved_by = None
        return model

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """Like SB3's ``set_env``; also checks that ``env`` has the model's tasks in the same order."""
        super().set_env(env, force_reset)  # type: ignore[misc]
        assert self.env is not None  # type: ignore[attr-defined]
        check_env_tasks(self, self.env)  # type: ignore[attr-defined]
