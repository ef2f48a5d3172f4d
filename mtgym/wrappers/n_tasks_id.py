"""``NTasksId``: :class:`~mtgym.wrappers.NTasks` whose task state and ``task_obs`` are the task's index."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium import spaces
from gymnasium.core import ActType

from mtgym.core import ENV_KEY, TASK_KEY, MTObs, check_task_index
from mtgym.wrappers.n_tasks import NTasks

__all__ = ["NTasksId"]


class NTasksId(NTasks[ActType]):
    """
    Like :class:`~mtgym.wrappers.NTasks`, but the task state is the integer id ``i`` of ``tasks[i]`` and ``task_obs``
    is that id, with space ``Discrete(n_tasks)`` (mtenv/wrappers/). An env with a continuous task distribution thereby
    becomes a finite-task env, which is what per-task alphas, multi-head policies and one-hot task encoders need.

    No task needs to be chosen at construction: on the first ``reset``, if no task was set yet, task
    ``initial_task_state`` is applied. The task set is drawn when first needed, from the stack's task RNG, so a seeded
    first ``reset`` (or ``seed_task``) fixes it. ``set_task_state(i)`` and ``reset(options={"task_state": i})`` build
    the set if needed (the reference required it to exist already). An id outside ``[0, n_tasks)`` raises
    ``ValueError``.

    Example::

        >>> import gymnasium as gym
        >>> import mtgym
        >>> env = NTasksId(gym.make("MT-Bandit-v0"), n_tasks=4)
        >>> env.observation_space["task_obs"]
        Discrete(4)
        >>> obs, _ = env.reset(seed=0, options={"task_state": 2})
        >>> obs["task_obs"], bool((env.task_env.get_task_state() == env.tasks[2]).all())
        (2, True)

    Change logs:
     * v0 - Port of mtenv's ``NTasksId``; the task set is built on demand and the id is validated.

    :param env: a multi-task env
    :param n_tasks: the number of tasks, ``>= 1``
    :param initial_task_state: the id applied at the first ``reset`` if no task was set before
    """

    def __init__(self, env: gym.Env[MTObs, ActType], n_tasks: int, initial_task_state: int = 0):
        gym.utils.RecordConstructorArgs.__init__(self, n_tasks=n_tasks, initial_task_state=initial_task_state)
        NTasks.__init__(self, env, n_tasks)
        self._initial_task_state = check_task_index(initial_task_state, self.n_tasks)
        self._task_id: int | None = None
        self.observation_space = spaces.Dict(
            {ENV_KEY: env.observation_space[ENV_KEY], TASK_KEY: spaces.Discrete(self.n_tasks)}
        )

    def get_task_obs(self) -> int:
        if self._task_id is None:
            raise RuntimeError("No task is set: call reset() or set_task_state() first")
        return self._task_id

    def get_task_state(self) -> int:
        return self.get_task_obs()

    def set_task_state(self, task_state: int) -> None:
        """
        :param task_state: the task id, in ``[0, n_tasks)``
        :raises ValueError: if the id is out of range
        """
        task_id = check_task_index(task_state, self.n_tasks)
        self.task_env.set_task_state(self.tasks[task_id])
        self._task_id = task_id

    def sample_task_state(self) -> int:
        """:return: a task id drawn uniformly with the task RNG."""
        return int(self.np_random_task.integers(self.n_tasks))

    def _with_id(self, obs: MTObs) -> MTObs:
        return {ENV_KEY: obs[ENV_KEY], TASK_KEY: self._task_id}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        if self._task_id is None and not (options and "task_state" in options):
            self._seed_task_if_unset(seed)
            self.set_task_state(self._initial_task_state)
        obs, info = super().reset(seed=seed, options=options)
        return self._with_id(obs), info

    def step(self, action: ActType) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._with_id(obs), reward, terminated, truncated, info
