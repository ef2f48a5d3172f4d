"""Meta-World task sets: benchmark task lists (in Meta-World's order) and per-task goal generation."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

try:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3, MT25_V3, MT50_V3
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("Meta-World is not installed: pip install mtgym[metaworld]") from e

#: Goals (``rand_vec`` variants) per task, as Meta-World's ``_N_GOALS``.
N_GOALS = 50

#: The task names of each benchmark, in Meta-World's order (also the index of ``task_obs``). ``MT1`` is any one task.
BENCHMARK_TASKS: dict[str, list[str]] = {
    "MT10": list(MT10_V3),
    "MT25": list(MT25_V3),
    "MT50": list(MT50_V3),
}

#: Meta-World's ``task_id`` of each v3 task: its position in ``ALL_V3_ENVIRONMENTS``. Our per-task seeds are keyed by
#: it, so a task has the same goals whichever benchmark it is part of.
TASK_IDS: dict[str, int] = {name: i for i, name in enumerate(ALL_V3_ENVIRONMENTS)}

#: The default task of ``MT-MetaWorld-MT1-v0`` (the reference used ``pick-place-v1``).
DEFAULT_MT1_TASK = "pick-place-v3"


def benchmark_task_names(benchmark: str, task_name: str | None = None) -> list[str]:
    """
    :param benchmark: ``"MT1"``, ``"MT10"``, ``"MT25"`` or ``"MT50"``
    :param task_name: the task of ``MT1`` (default ``pick-place-v3``); must be ``None`` for the other benchmarks
    :return: the benchmark's task names in Meta-World's order
    :raises ValueError: for an unknown benchmark or task name
    """
    if benchmark == "MT1":
        task_name = DEFAULT_MT1_TASK if task_name is None else task_name
        if task_name not in ALL_V3_ENVIRONMENTS:
            raise ValueError(f"Unknown Meta-World task {task_name!r}: expected one of {list(ALL_V3_ENVIRONMENTS)}")
        return [task_name]
    if benchmark not in BENCHMARK_TASKS:
        raise ValueError(f"Unknown Meta-World benchmark {benchmark!r}: expected one of {['MT1', *BENCHMARK_TASKS]}")
    if task_name is not None:
        raise ValueError(f"task_name is only used by the MT1 benchmark, got task_name={task_name!r} for {benchmark}")
    return list(BENCHMARK_TASKS[benchmark])


def task_goal_seeds(task_seed: int, task_name: str) -> tuple[int, int]:
    """
    The per-task draws of the task RNG, seeded from ``(task_seed, Meta-World task_id)``.

    Meta-World's ``MT10(seed)`` seeds one global stream for all tasks, and its vector env gives every sub-env the same
    seed, so all tasks pick the same goal index at each reset. Here every task has its own stream instead.

    :param task_seed: the seed of the task set
    :param task_name: a v3 task name
    :return: ``(goal_seed, fixed_goal_index)``: the seed that generates the task's :data:`N_GOALS` goals, and the
        goal kept for every episode when ``goal_mode="fixed"`` (mtrl's one ``random.choice`` per task)
    """
    rng = np.random.default_rng([task_seed, TASK_IDS[task_name]])
    return int(rng.integers(2**32)), int(rng.integers(N_GOALS))


def generate_goals(env: Any, seed: int | None = None, n_goals: int = N_GOALS, state: dict | None = None) -> np.ndarray:
    """
    Generate one task's goal vectors exactly as Meta-World's ``_make_tasks`` does, for this task only.

    Meta-World seeds the global NumPy RNG, unfreezes the env's ``rand_vec``, resets ``n_goals`` times and keeps each
    ``_last_rand_vec``; ``metaworld.MT1(task_name, seed=seed)`` yields the same vectors. Unlike ``MT50()``, which does
    this for all 50 tasks in one go (~36 s), this builds nothing: it reuses the task's own env. During generation the
    hand reset (2 x 50 physics steps per reset, and no RNG draws) is skipped, which makes it several times faster
    without changing the vectors. The global RNG state is restored afterwards, as Meta-World does.

    :param env: the unwrapped Meta-World env of the task (``SawyerXYZEnv``); it must be reset before it is used
    :param seed: the seed of the task's goals (see :func:`task_goal_seeds`); ignored when ``state`` is given
    :param n_goals: number of goals
    :param state: a global-RNG state (``np.random.get_state(legacy=False)``) to start from instead of ``seed``; it is
        updated in place to the state after the draws (how a benchmark's stream continues into its next task)
    :return: ``(n_goals, d)`` goal vectors (``rand_vec``: the initial object position and/or the goal position, by task)
    :raises RuntimeError: if the draws are not all distinct (Meta-World asserts the same)
    """
    saved = np.random.get_state()
    render_mode = env.render_mode
    if state is None:
        np.random.seed(seed)
    else:
        np.random.set_state(state)
    env._freeze_rand_vec = False
    env._set_task_called = True
    env._set_task_inner()  # v3 tasks have no task kwargs besides task_id, which Meta-World deletes too
    # One physics step instead of 50 per hand reset: the state stays well defined for ``reset_model``, and the
    # physics never touches the RNG, so the goal stream is unchanged.
    env._reset_hand = functools.partial(type(env)._reset_hand, env, steps=1)
    env.render_mode = None  # a "human" env would otherwise draw a frame per reset
    try:
        goals = []
        for _ in range(n_goals):
            env.reset()
            goals.append(np.array(env._last_rand_vec, dtype=np.float64))
        if state is not None:
            state.update(np.random.get_state(legacy=False))
    finally:
        del env._reset_hand
        env.render_mode = render_mode
        env._freeze_rand_vec = True
        np.random.set_state(saved)
    goals_array = np.stack(goals)
    if np.unique(goals_array, axis=0).shape[0] != n_goals:
        raise RuntimeError(f"Only generated {np.unique(goals_array, axis=0).shape[0]} unique goals for {env.task_name}")
    return goals_array


#: Per process: ``(task names, seed) -> [(goals, global-RNG state after them)]`` for a benchmark's first tasks.
_BENCHMARK_STREAMS: dict[tuple[tuple[str, ...], int], list[tuple[np.ndarray, dict]]] = {}


def benchmark_goals(task_names: tuple[str, ...], seed: int, task_index: int, env: Any | None = None) -> np.ndarray:
    """
    The goals of task ``task_index`` in ``metaworld.MT10(seed)`` (or ``MT1``/``MT25``/``MT50``), without building the
    benchmark.

    Meta-World's ``_make_tasks`` seeds the global RNG once and draws the 50 goals of every task in benchmark order
    from that one stream, so a task's goals depend on how many draws the tasks before it made (their reset code
    redraws until the object and goal are apart, so that count is only known by running it). The stream is replayed
    task by task and kept per process: the task's own ``env`` is reused when given, and only earlier tasks not yet
    replayed are built, once, just for their draws (~0.2 s each). A vector env that builds its tasks in order (one
    sub-env per task) thus builds no extra model at all; a lone env of MT50's last task builds the 49 before it once.

    :param task_names: the benchmark's tasks in its order (:func:`benchmark_task_names`); one task gives
        ``metaworld.MT1``'s goals
    :param seed: the benchmark seed (``metaworld.MT10(seed=seed)``, ``gym.make_vec("Meta-World/MT10", seed=seed)``)
    :param task_index: the task's index in the benchmark
    :param env: the unwrapped Meta-World env of that task, reused to draw its goals; ``None`` builds one
    :return: ``(N_GOALS, d)`` goal vectors, in Meta-World's order
    """
    stream = _BENCHMARK_STREAMS.setdefault((tuple(task_names), int(seed)), [])
    while len(stream) <= task_index:
        index = len(stream)
        if stream:
            state = dict(stream[-1][1])
        else:
            np_state = np.random.get_state()
            np.random.seed(seed)
            state = np.random.get_state(legacy=False)
            np.random.set_state(np_state)
        own = env if index == task_index and env is not None else None
        task_env = own if own is not None else ALL_V3_ENVIRONMENTS[task_names[index]]()
        try:
            goals = generate_goals(task_env, state=state)
        finally:
            if own is None:
                task_env.close()
        stream.append((goals, state))
    return stream[task_index][0]
