"""``NTasks``: restrict a multi-task env to a fixed set of ``n_tasks`` sampled task states."""

from __future__ import annotations

import copy

import gymnasium as gym
from gymnasium.core import ActType

from mtgym.core import MTObs, TaskStateType
from mtgym.wrappers.multi_task import MultiTask

__all__ = ["NTasks"]


def check_n_tasks(n_tasks: int) -> int:
    """:return: ``n_tasks`` as ``int``. :raises ValueError: unless it is an integer ``>= 1``."""
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 1:
        raise ValueError(f"n_tasks must be an integer >= 1, got {n_tasks!r}")
    return int(n_tasks)


class NTasks(MultiTask[ActType]):
    """
    Turn a multi-task env with a large (e.g. continuous) task distribution into one with ``n_tasks`` fixed tasks
    (mtenv/wrappers/).

    The first time a task set is needed (:meth:`sample_task_state`, or :attr:`tasks`), ``n_tasks`` task states are
    drawn with the inner env's ``sample_task_state`` and cached. From then on :meth:`sample_task_state` returns one of
    them, chosen uniformly. Both draws use the stack's task RNG (see :class:`~mtgym.wrappers.MultiTask`), so seed it
    with ``seed_task`` or a seeded ``reset`` first to get the same task set every run. The task state stays the
    inner env's; :meth:`set_task_state` accepts any inner state.

    Example::

        >>> import gymnasium as gym
        >>> import mtgym
        >>> env = NTasks(gym.make("MT-Bandit-v0"), n_tasks=3)
        >>> _ = env.seed_task(0)
        >>> drawn = {tuple(env.sample_task_state()) for _ in range(50)}
        >>> len(drawn), len(env.tasks)
        (3, 3)

    Change logs:
     * v0 - Port of mtenv's ``NTasks``; ``n_tasks < 1`` raises ``ValueError`` at construction (the reference failed
       later, inside ``randint``).

    :param env: a multi-task env
    :param n_tasks: the size of the task set, ``>= 1``
    """

    def __init__(self, env: gym.Env[MTObs, ActType], n_tasks: int):
        n_tasks = check_n_tasks(n_tasks)
        gym.utils.RecordConstructorArgs.__init__(self, n_tasks=n_tasks)
        MultiTask.__init__(self, env)
        self.n_tasks = n_tasks
        self._tasks: list[TaskStateType] | None = None

    @property
    def tasks(self) -> list[TaskStateType]:
        """The cached task states, drawn from the inner env on first access."""
        if self._tasks is None:
            self._tasks = [self.task_env.sample_task_state() for _ in range(self.n_tasks)]
        return self._tasks

    def sample_task_state(self) -> TaskStateType:
        """:return: one of the cached task states, chosen uniformly with the task RNG."""
        return copy.deepcopy(self.tasks[int(self.np_random_task.integers(self.n_tasks))])
