"""Multi-task SB3 ``VecEnv`` construction: one sub-env per task."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from mtgym.core import check_count
from mtgym.vector import task_env_fns


class _MonitorWrapper:
    """Picklable ``Monitor`` + user wrapper, as SB3's ``make_vec_env`` applies them (Monitor innermost)."""

    def __init__(
        self,
        monitor_dir: str | None,
        wrapper_class: Callable[..., gym.Env] | None,
        wrapper_kwargs: dict[str, Any],
    ):
        self.monitor_dir = monitor_dir
        self.wrapper_class = wrapper_class
        self.wrapper_kwargs = wrapper_kwargs

    def __call__(self, env: gym.Env) -> gym.Env:
        path = None
        if self.monitor_dir is not None:
            os.makedirs(self.monitor_dir, exist_ok=True)
            finite = getattr(env.unwrapped, "n_tasks", None) is not None
            prefix = f"task{env.unwrapped.get_task_state()}" if finite else "env"
            # several sub-envs may share a task (round robin), so the file name also needs a unique part
            path = os.path.join(self.monitor_dir, f"{prefix}-{uuid.uuid4().hex[:8]}")
        env = Monitor(env, filename=path, info_keywords=("is_success",) if path else ())
        if self.wrapper_class is not None:
            env = self.wrapper_class(env, **self.wrapper_kwargs)
        return env


def first_sub_env_attr(env: VecEnv, name: str) -> Any:
    """
    :param env: a VecEnv
    :param name: an attribute of its sub-envs
    :return: sub-env 0's ``name``, or ``None`` where the sub-envs lack it (asked with ``has_attr`` first: reading a
        missing attribute through ``get_attr`` kills a ``SubprocVecEnv`` worker)
    """
    return env.get_attr(name, [0])[0] if env.has_attr(name) else None


def make_mt_vec_env(
    env_id: str,
    n_envs: int | None = None,
    seed: int | None = 0,
    vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    wrapper_class: Callable[..., gym.Env] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
    tasks: Sequence[int] | None = None,
) -> VecEnv:
    """
    Like SB3's ``make_vec_env``, but sub-env ``i`` runs task ``tasks[i % len(tasks)]``.

    Every sub-env is wrapped in ``Monitor`` (then ``wrapper_class``) and seeded with ``seed + i``, so sub-envs never
    share a seed.

    :param env_id: a registered mtgym id
    :param n_envs: number of sub-envs; ``None`` gives one per task
    :param seed: base seed; ``None`` leaves the envs unseeded
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
    :param env_kwargs: passed to ``gym.make``
    :param wrapper_class: an extra wrapper for each sub-env
    :param wrapper_kwargs: its kwargs
    :param monitor_dir: where ``Monitor`` writes ``task<i>.monitor.csv``; ``None`` keeps episode stats in memory only
    :param vec_env_kwargs: passed to the ``VecEnv`` constructor
    :param tasks: task indices to cycle through (e.g. ``env.unwrapped.task_splits["train"]``); ``None`` means all
    :return: the vectorised environment
    """
    if n_envs is not None:
        check_count(n_envs, "n_envs")
    wrapper = _MonitorWrapper(monitor_dir, wrapper_class, wrapper_kwargs or {})
    env_fns = task_env_fns(env_id, n_envs, env_kwargs, tasks, wrappers=(wrapper,))
    vec_env = (vec_env_cls or DummyVecEnv)(env_fns, **(vec_env_kwargs or {}))
    if seed is not None:
        vec_env.seed(seed)  # sub-env i is seeded with seed + i at the next reset
    return vec_env
