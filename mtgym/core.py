"""The multi-task environment interface: a Gymnasium ``Env`` with a task API and a separate task RNG."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding

ActType = TypeVar("ActType")
TaskStateType = Any
TaskObsType = Any
MTObs = dict[str, Any]

#: key of the task part of a multi-task observation
TASK_KEY = "task_obs"
#: key of the environment part of a multi-task observation
ENV_KEY = "env_obs"


class TaskNotSetError(ResetNeeded, RuntimeError):
    """
    ``step`` or a task getter was called before any task was set, e.g. after a ``reset`` that failed on a bad task
    state (Gymnasium's ``OrderEnforcing`` counts a failed reset as done). It is Gymnasium's ``ResetNeeded``, and a
    ``RuntimeError`` as this error always was.
    """

    def __init__(self, message: str = "No task is set: call reset(), set_task_state() or reset_task_state() first"):
        super().__init__(message)


def task_state_array(task_state: Any, expected: str) -> np.ndarray:
    """
    :param task_state: a task state given as numbers (a vector, a table)
    :param expected: what a valid task state is, for the error message
    :return: ``task_state`` as a ``float32`` array
    :raises ValueError: if it is not numeric at all (``None``, a string, a ragged list, ...)
    """
    try:
        return np.asarray(task_state, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Invalid task state {task_state!r}: expected {expected}") from e


def _is_integer(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def check_task_index(task_state: Any, n_tasks: int, name: str = "task state") -> int:
    """
    Validate an integer task state and return it as a Python ``int``.

    :param task_state: the candidate task index
    :param n_tasks: number of tasks; valid indices are ``0 .. n_tasks - 1``
    :param name: what the value is, for the error message (e.g. ``"task_obs"``)
    :return: the index as ``int``
    :raises ValueError: if ``task_state`` is not an integer in ``[0, n_tasks)``
    """
    if isinstance(task_state, np.ndarray) and task_state.shape == ():
        task_state = task_state.item()
    if not _is_integer(task_state) or not 0 <= task_state < n_tasks:
        raise ValueError(
            f"Invalid {name} {task_state!r}: expected an integer task index in [0, {n_tasks - 1}] ({n_tasks} tasks)"
        )
    return int(task_state)


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """
    Validate a count (sub-envs, experts, modules, ...) and return it as a Python ``int``.

    :param value: the candidate count
    :param name: the argument's name, for the error message
    :param minimum: the smallest valid count
    :return: the count as ``int``
    :raises ValueError: if ``value`` is not an integer ``>= minimum``
    """
    if not _is_integer(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_action(action_space: spaces.Space, action: Any) -> None:
    """
    Reject an action that the env cannot execute, as Gymnasium's classic control envs do.

    A ``Discrete`` action must be one of the space's integers: NumPy would otherwise wrap ``-1`` to the last action.
    A ``Box`` action must have the space's shape and finite values; values outside the bounds are allowed (the env
    clips them), but a NaN would poison every later observation.

    :param action_space: the env's action space
    :param action: the action passed to ``step``
    :raises ValueError: for an invalid action
    """
    if isinstance(action_space, spaces.Discrete):
        if not action_space.contains(action):
            first, last = int(action_space.start), int(action_space.start + action_space.n - 1)
            raise ValueError(f"Invalid action {action!r}: expected an integer in [{first}, {last}]")
    elif isinstance(action_space, spaces.Box):
        array = np.asarray(action)
        if array.shape != action_space.shape or array.dtype.kind not in "iuf" or not np.all(np.isfinite(array)):
            raise ValueError(f"Invalid action {action!r}: expected finite values of shape {action_space.shape}")


class MTEnv(gym.Env[MTObs, ActType], Generic[ActType]):
    """
    A multi-task environment: a Gymnasium env whose observation is ``{"env_obs", "task_obs"}``.

    It follows the MTEnv interface (mtenv/core.py, MTEnv) on the Gymnasium 1.x API. There are two RNGs:

    * the **env RNG** (``self.np_random``) drives dynamics and start states and is seeded by ``reset(seed=...)``;
    * the **task RNG** (``self.np_random_task``) decides which task :meth:`sample_task_state` draws and is seeded by
      :meth:`seed_task`.

    If the task RNG has not been seeded when ``reset(seed=s)`` is first called with a seed, it is seeded with ``s``
    too. This keeps code that only knows about ``reset(seed=...)`` (``check_env``, SB3, rl-zoo) reproducible, while
    :meth:`seed_task` still lets a caller decouple the two streams. Used before any seed, the task RNG is seeded
    from OS entropy, as Gymnasium does for ``np_random``; :meth:`assert_task_seed_is_set` tells the two apart.

    A plain ``reset()`` keeps the current task; ``reset(options={"task_state": s})`` switches to ``s`` first.

    :param action_space: the action space
    :param env_observation_space: the space of ``obs["env_obs"]``
    :param task_observation_space: the space of ``obs["task_obs"]``
    """

    def __init__(self, action_space: spaces.Space, env_observation_space: spaces.Space, task_observation_space: spaces.Space):
        self.action_space = action_space
        self.observation_space = spaces.Dict({ENV_KEY: env_observation_space, TASK_KEY: task_observation_space})
        self._np_random_task: np.random.Generator | None = None
        self._task_seed_explicit = False

    # -- seeding ---------------------------------------------------------------------------------------------------
    @property
    def np_random_task(self) -> np.random.Generator:
        """The task RNG. Like Gymnasium's ``np_random``, it is seeded from OS entropy if used before any seed."""
        if self._np_random_task is None:
            self._np_random_task, _ = seeding.np_random()
        return self._np_random_task

    def seed_task(self, seed: int | None = None) -> list[int]:
        """
        Seed the task RNG (and the ``task_obs`` space), independently of the env RNG.

        :param seed: the task seed; ``None`` draws one from OS entropy
        :return: ``[seed used]``
        """
        self._np_random_task, used = seeding.np_random(seed)
        self._task_seed_explicit = seed is not None
        self.observation_space[TASK_KEY].seed(used)
        return [used]

    def assert_task_seed_is_set(self) -> None:
        """:raises RuntimeError: if neither :meth:`seed_task` nor ``reset(seed=...)`` seeded the task RNG."""
        if not self._task_seed_explicit:
            raise RuntimeError("The task RNG is not seeded: call env.seed_task(seed) or env.reset(seed=seed) first.")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        """
        Seed the env RNG (and, the first time, the task RNG) and switch task if ``options["task_state"]`` is given.

        Subclasses call ``super().reset(seed=seed, options=options)`` first, then reset their own state.
        """
        super().reset(seed=seed)
        if seed is not None and not self._task_seed_explicit:
            self.seed_task(seed)
        if options is not None and "task_state" in options:
            self.set_task_state(options["task_state"])
        return {}, {}

    # -- task API ----------------------------------------------------------------------------------------------------
    def get_task_obs(self) -> TaskObsType:
        """:return: the task observation of the current task (``obs["task_obs"]``)."""
        raise NotImplementedError

    def get_task_state(self) -> TaskStateType:
        """:return: everything needed to recreate the current task with :meth:`set_task_state`."""
        raise NotImplementedError

    def set_task_state(self, task_state: TaskStateType) -> None:
        """
        Switch to a task. Call ``reset`` before stepping again.

        :param task_state: a value returned by :meth:`get_task_state` or :meth:`sample_task_state`
        :raises ValueError: if the task state is invalid
        """
        raise NotImplementedError

    def sample_task_state(self) -> TaskStateType:
        """:return: a task state drawn with the task RNG."""
        raise NotImplementedError

    def reset_task_state(self) -> None:
        """Switch to a task drawn with the task RNG: ``set_task_state(sample_task_state())``."""
        self.set_task_state(self.sample_task_state())

    def make_obs(self, env_obs: Any) -> MTObs:
        """:return: the multi-task observation for ``env_obs`` and the current task."""
        return {ENV_KEY: env_obs, TASK_KEY: self.get_task_obs()}


class FiniteTaskEnv(MTEnv[ActType]):
    """
    An :class:`MTEnv` over a finite, ordered set of named tasks: the task state and ``task_obs`` are the task index.

    :param action_space: the action space
    :param env_observation_space: the space of ``obs["env_obs"]``
    :param task_names: the task names, in benchmark order; ``task_obs`` is ``Discrete(len(task_names))``
    :param initial_task_state: the task active after construction
    """

    def __init__(
        self,
        action_space: spaces.Space,
        env_observation_space: spaces.Space,
        task_names: list[str],
        initial_task_state: int = 0,
    ):
        super().__init__(action_space, env_observation_space, spaces.Discrete(len(task_names)))
        self.task_names = list(task_names)
        self._task_index = check_task_index(initial_task_state, self.n_tasks)

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.task_names)

    @property
    def task_name(self) -> str:
        """Name of the active task."""
        return self.task_names[self._task_index]

    def get_task_obs(self) -> int:
        return self._task_index

    def get_task_state(self) -> int:
        return self._task_index

    def set_task_state(self, task_state: int) -> None:
        self._task_index = check_task_index(task_state, self.n_tasks)

    def sample_task_state(self) -> int:
        return int(self.np_random_task.integers(self.n_tasks))
