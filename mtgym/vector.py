"""One-task-per-sub-env vector construction, shared by ``gym.make_vec`` and :func:`mtsb3.make_mt_vec_env`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from mtgym.core import check_count, check_task_index

#: ``metadata`` key of an env class whose workers must not be forked (see :func:`async_start_method`)
FORK_SAFE_KEY = "fork_safe"


def async_start_method(env_id: str) -> str | None:
    """
    The default start method of ``env_id``'s ``"async"`` workers.

    A forked worker inherits the parent's EGL/OpenGL state: once the parent has rendered (e.g. made and reset a pixel
    HiP-BMDP env), the first render in the worker hangs. Env classes whose ``metadata[FORK_SAFE_KEY]`` is ``False``
    therefore get ``"forkserver"`` workers, which start from a clean process (SB3's ``SubprocVecEnv`` default). The
    others keep the platform default, so scripts without an ``if __name__ == "__main__"`` guard keep working.

    :param env_id: a registered id
    :return: ``"forkserver"``, or ``None`` for the platform default
    """
    entry_point = gym.spec(env_id).entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    return None if getattr(creator, "metadata", {}).get(FORK_SAFE_KEY, True) else "forkserver"


def count_tasks(env_id: str, env_kwargs: dict[str, Any] | None = None) -> int | None:
    """
    :return: the number of tasks of ``env_id`` (``None`` when the task set is continuous, e.g. MT-CartPole physics).
        Builds one probe env; lazy multi-task envs only build their initial task for it.
    """
    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        return getattr(env.unwrapped, "n_tasks", None)
    finally:
        env.close()


def _make_task_env(env_id: str, env_kwargs: dict[str, Any], wrappers: Sequence[Callable[[gym.Env], gym.Env]] = ()) -> gym.Env:
    env = gym.make(env_id, **env_kwargs)
    for wrapper in wrappers:
        env = wrapper(env)
    return env


def task_env_fns(
    env_id: str,
    num_envs: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    tasks: Sequence[int] | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] = (),
) -> list[Callable[[], gym.Env]]:
    """
    Picklable constructors, one per sub-env; sub-env ``i`` runs task ``tasks[i % len(tasks)]``.

    :param env_id: a registered id
    :param num_envs: number of sub-envs; ``None`` gives one per task
    :param env_kwargs: passed to ``gym.make``
    :param tasks: task indices to cycle through (e.g. a train split); ``None`` means all tasks
    :param wrappers: applied to each sub-env, innermost first
    :raises ValueError: if ``num_envs`` is not a positive integer, or ``None`` for an env without a finite task set,
        or a task is not an integer index in range
    """
    env_kwargs = dict(env_kwargs or {})
    if num_envs is not None:
        check_count(num_envs, "num_envs")
    n_tasks = count_tasks(env_id, env_kwargs)
    if n_tasks is None:
        if tasks is not None:
            raise ValueError(f"{env_id} has no finite task set, so `tasks` cannot select task indices")
        if num_envs is None:
            raise ValueError(f"{env_id} has no finite task set: pass the number of sub-envs explicitly")
        return [functools.partial(_make_task_env, env_id, env_kwargs, tuple(wrappers)) for _ in range(num_envs)]
    if tasks is not None and not len(tasks):
        raise ValueError(f"Invalid tasks {tasks!r} for {env_id}: expected a non-empty list of indices in [0, {n_tasks - 1}]")
    tasks = list(range(n_tasks)) if tasks is None else [check_task_index(t, n_tasks, "`tasks` entry") for t in tasks]
    num_envs = len(tasks) if num_envs is None else num_envs
    return [
        functools.partial(_make_task_env, env_id, {**env_kwargs, "initial_task_state": tasks[i % len(tasks)]}, tuple(wrappers))
        for i in range(num_envs)
    ]


def make_task_vector_env(
    env_id: str,
    num_envs: int = 1,
    vector_strategy: str = "sync",
    tasks: Sequence[int] | None = None,
    context: str | None = None,
    **env_kwargs: Any,
) -> gym.vector.VectorEnv:
    """
    The ``vector_entry_point`` of every mtgym id: ``gym.make_vec(id, num_envs=N)`` gives sub-env ``i`` the task
    ``i mod n_tasks``.

    Example::

        >>> import gymnasium as gym, mtgym
        >>> envs = gym.make_vec("MT-FiniteBandit-v0", num_envs=3, vector_strategy="async")
        >>> envs.reset(seed=0)[0]["task_obs"].tolist()
        [0, 1, 2]

    :param env_id: bound by the registration
    :param num_envs: number of sub-envs
    :param vector_strategy: ``"sync"`` (:class:`~gymnasium.vector.SyncVectorEnv`) or ``"async"``
    :param tasks: task indices to cycle through; ``None`` means all tasks
    :param context: the ``multiprocessing`` start method of the ``"async"`` workers; ``None`` picks
        :func:`async_start_method`
    :param env_kwargs: passed to each sub-env's ``gym.make``
    """
    if vector_strategy not in ("sync", "async"):
        raise ValueError(f"Unknown vector_strategy {vector_strategy!r}: expected 'sync' or 'async'")
    env_fns = task_env_fns(env_id, num_envs, env_kwargs, tasks)
    if vector_strategy == "sync":
        return gym.vector.SyncVectorEnv(env_fns)
    return gym.vector.AsyncVectorEnv(env_fns, context=context or async_start_method(env_id))
