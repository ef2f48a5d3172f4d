"""Checkpoint helpers: atomic file writes, global RNG snapshots and the task metadata of a multi-task env."""

from __future__ import annotations

import io
import os
import pathlib
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv


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
    try:
        yield str(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


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
    env_id = task_names = None
    try:
        spec = env.get_attr("spec", [0])[0]
        env_id = None if spec is None else spec.id
    except AttributeError:
        pass
    try:
        names = env.get_attr("task_names", [0])[0]
        task_names = None if names is None else [str(name) for name in names]
    except AttributeError:
        pass
    return env_id, task_names
