"""One-task-per-sub-env vector construction, shared by ``gym.make_vec`` and :func:`mtsb3.make_mt_vec_env`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from mtgym.core import check_count, check_task_index
from mtgym.wrappers.flatten_task_observation import FlattenTaskObservation

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
    # an env registered with a ``vector_index`` kwarg (the Meta-World+ ids) is told its place, to undo seed + i
    indexed = "vector_index" in gym.spec(env_id).kwargs
    return [
        functools.partial(
            _make_task_env,
            env_id,
            {**env_kwargs, "initial_task_state": tasks[i % len(tasks)], **({"vector_index": i} if indexed else {})},
            tuple(wrappers),
        )
        for i in range(num_envs)
    ]


def make_task_vector_env(
    env_id: str,
    num_envs: int | None = None,
    vector_strategy: str | None = None,
    tasks: Sequence[int] | None = None,
    *,
    seed: int | None = None,
    use_one_hot: bool = False,
    terminate_on_success: bool | None = None,
    autoreset_mode: gym.vector.AutoresetMode | str | None = None,
    vectorization_mode: str | None = None,
    context: str | None = None,
    **env_kwargs: Any,
) -> gym.vector.VectorEnv:
    """
    The ``vector_entry_point`` of every mtgym id: ``gym.make_vec(id, num_envs=N)`` gives sub-env ``i`` the task
    ``i mod n_tasks``, and ``gym.make_vec(id)`` one sub-env per task.

    It takes the arguments of Meta-World's own ``gym.make_vec("Meta-World/MT10", ...)`` (``seed``, ``use_one_hot``,
    ``terminate_on_success``, ``vector_strategy``, ``autoreset_mode``; ``reward_function_version`` and
    ``max_episode_steps`` go to each sub-env like any env kwarg). Gymnasium's ``make_vec`` passes ``num_envs=1``
    when none is given, so ``num_envs=1`` means one sub-env per task (Meta-World ignores ``num_envs`` altogether);
    ``tasks=[i]`` gives a single sub-env. ``gym.make_vec(id, vectorization_mode="sync")`` bypasses this entry point
    (Gymnasium then makes ``num_envs`` copies of one task): choose the strategy with ``vector_strategy``.

    Example::

        >>> import gymnasium as gym, mtgym
        >>> envs = gym.make_vec("MT-FiniteBandit-v0", num_envs=3, vector_strategy="async")
        >>> envs.reset(seed=0)[0]["task_obs"].tolist()
        [0, 1, 2]

    :param env_id: bound by the registration
    :param num_envs: number of sub-envs; ``None`` or 1: one per task (one, for an env without a finite task set)
    :param vector_strategy: ``"sync"`` (:class:`~gymnasium.vector.SyncVectorEnv`, the default) or ``"async"``
    :param tasks: task indices to cycle through; ``None`` means all tasks
    :param seed: passed to each sub-env (Meta-World ids: the benchmark seed, see
        :class:`~mtgym.envs.metaworld.env.MetaWorldMTEnv`)
    :param use_one_hot: flatten each observation into ``env_obs`` followed by the one-hot task
        (:class:`~mtgym.wrappers.FlattenTaskObservation`), as Meta-World's ``OneHotWrapper``
    :param terminate_on_success: passed to each sub-env when given (Meta-World ids)
    :param autoreset_mode: the vector env's autoreset mode (Gymnasium's default when ``None``; Meta-World's vector
        envs use ``"SameStep"``)
    :param vectorization_mode: another name for ``vector_strategy`` (Gymnasium's)
    :param context: the ``multiprocessing`` start method of the ``"async"`` workers; ``None`` picks
        :func:`async_start_method`
    :param env_kwargs: passed to each sub-env's ``gym.make``
    """
    if vectorization_mode is not None and vector_strategy is not None and vectorization_mode != vector_strategy:
        raise ValueError(f"vector_strategy={vector_strategy!r} and vectorization_mode={vectorization_mode!r} disagree")
    vector_strategy = vector_strategy or vectorization_mode or "sync"
    vector_cls = {"sync": gym.vector.SyncVectorEnv, "async": gym.vector.AsyncVectorEnv}.get(vector_strategy)
    if vector_cls is None:
        raise ValueError(f"Unknown vector_strategy {vector_strategy!r}: expected 'sync' or 'async'")
    if seed is not None:
        env_kwargs["seed"] = seed
    if terminate_on_success is not None:
        env_kwargs["terminate_on_success"] = terminate_on_success
    if num_envs == 1 and count_tasks(env_id, env_kwargs) is not None:
        num_envs = None
    wrappers = (FlattenTaskObservation,) if use_one_hot else ()
    vector_kwargs: dict[str, Any] = {}
    if autoreset_mode is not None:
        vector_kwargs["autoreset_mode"] = gym.vector.AutoresetMode(autoreset_mode)
    if vector_strategy == "async":
        vector_kwargs["context"] = context or async_start_method(env_id)
    return vector_cls(task_env_fns(env_id, num_envs, env_kwargs, tasks, wrappers), **vector_kwargs)
