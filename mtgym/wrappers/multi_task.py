"""``MultiTask``: the base of every wrapper around an :class:`~mtgym.core.MTEnv`; it forwards the task API."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.core import ActType

from mtgym.core import TASK_KEY, MTEnv, MTObs, TaskObsType, TaskStateType

__all__ = ["MultiTask", "find_task_env"]


def find_task_env(env: gym.Env) -> MultiTask | MTEnv:
    """
    :return: the outermost object in ``env``'s wrapper chain that provides the task API: a :class:`MultiTask` wrapper
        or the :class:`~mtgym.core.MTEnv` itself. Plain Gymnasium wrappers (``TimeLimit``, ``OrderEnforcing``, ...)
        in between are skipped.
    :raises ValueError: if there is no :class:`~mtgym.core.MTEnv` in the chain
    """
    current = env
    while True:
        if isinstance(current, (MultiTask, MTEnv)):
            return current
        if not isinstance(current, gym.Wrapper):
            raise ValueError(f"Expected a multi-task env (an mtgym.core.MTEnv, possibly wrapped), got {env}")
        current = current.env


class MultiTask(gym.Wrapper[MTObs, ActType, MTObs, ActType], gym.utils.RecordConstructorArgs):
    """
    Base class for wrappers around a multi-task env (mtenv/wrappers/): it forwards the task API, so that it stays reachable
    from the outermost env.

    Gymnasium 1.x wrappers no longer forward unknown attributes, and ``gym.make`` puts ``TimeLimit``,
    ``OrderEnforcing`` and ``PassiveEnvChecker`` around every env. This wrapper therefore looks up the nearest
    task-API provider below it (:func:`find_task_env`: an inner :class:`MultiTask` or the
    :class:`~mtgym.core.MTEnv`) and forwards ``get_task_obs``, ``get_task_state``, ``set_task_state``,
    ``sample_task_state``, ``seed_task``, ``np_random_task`` and ``assert_task_seed_is_set`` to it. Subclasses override
    the methods whose meaning they change. ``reset_task_state`` is ``set_task_state(sample_task_state())`` evaluated
    on *this* wrapper, so a restricted task set (:class:`~mtgym.wrappers.NTasks`) is honoured by everything above it.

    Seeding follows :mod:`mtgym.core`, with a single task RNG for the whole stack: the MTEnv's ``np_random_task``.
    ``seed_task(s)`` seeds it (and the ``task_obs`` space of every wrapper that declares its own), and the first
    ``reset(seed=s)`` seeds it with ``s`` when it has not been seeded. Every wrapper draws from it in a fixed order, so
    the same seed gives the same tasks. The reference kept a separate pair of RNGs per wrapper, all seeded with the
    same value; with one stream no state can be left unseeded.

    ``reset(options={"task_state": s})`` switches to ``s`` through this wrapper's ``set_task_state`` (so ``s`` means
    what it means at this level, e.g. a task id for :class:`~mtgym.wrappers.NTasksId`), then resets. As in
    :class:`~mtgym.core.MTEnv`, a seeded reset seeds an unseeded task RNG *before* the switch.

    Use ``env.get_wrapper_attr("set_task_state")`` or call the methods on the wrapper itself: ``env.unwrapped``
    is the MTEnv and bypasses every wrapper's task logic.

    Example::

        >>> import gymnasium as gym
        >>> import mtgym
        >>> env = MultiTask(gym.make("MT-FiniteBandit-v0"))
        >>> obs, _ = env.reset(seed=0, options={"task_state": 4})
        >>> obs["task_obs"], env.get_task_state()
        (4, 4)

    Change logs:
     * v0 - Port of mtenv's ``MultiTask``: the task API is forwarded through Gymnasium wrappers, and one task RNG
       is shared by the stack.

    :param env: a multi-task env, possibly inside Gymnasium wrappers
    :raises ValueError: if ``env`` has no :class:`~mtgym.core.MTEnv` inside
    """

    def __init__(self, env: gym.Env[MTObs, ActType]):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.task_env = find_task_env(env)

    # -- task API, forwarded ------------------------------------------------------------------------------------------
    @property
    def np_random_task(self) -> np.random.Generator:
        """The task RNG of the wrapped MTEnv (one stream for the whole stack)."""
        return self.task_env.np_random_task

    def seed_task(self, seed: int | None = None) -> list[int]:
        """
        Seed the task RNG, and this wrapper's ``task_obs`` space if it declares its own.

        :param seed: the task seed; ``None`` draws one from OS entropy
        :return: ``[seed used]``
        """
        used = self.task_env.seed_task(seed)
        if self._observation_space is not None and isinstance(self._observation_space, spaces.Dict):
            if TASK_KEY in self._observation_space.spaces:
                self._observation_space[TASK_KEY].seed(used[0])
        return used

    def assert_task_seed_is_set(self) -> None:
        """:raises RuntimeError: if neither ``seed_task`` nor a seeded ``reset`` has seeded the task RNG."""
        self.task_env.assert_task_seed_is_set()

    def get_task_obs(self) -> TaskObsType:
        """:return: the task observation of the current task."""
        return self.task_env.get_task_obs()

    def get_task_state(self) -> TaskStateType:
        """:return: everything needed to come back to the current task with :meth:`set_task_state`."""
        return self.task_env.get_task_state()

    def set_task_state(self, task_state: TaskStateType) -> None:
        """
        Switch to a task; call ``reset`` before stepping again.

        :param task_state: a task state at this wrapper's level
        :raises ValueError: if the task state is invalid
        """
        self.task_env.set_task_state(task_state)

    def sample_task_state(self) -> TaskStateType:
        """:return: a task state drawn with the task RNG."""
        return self.task_env.sample_task_state()

    def reset_task_state(self) -> None:
        """Switch to a task drawn with the task RNG: ``set_task_state(sample_task_state())`` at this level."""
        self.set_task_state(self.sample_task_state())

    # -- helpers for subclasses --------------------------------------------------------------------------------------
    def _seed_task_if_unset(self, seed: int | None) -> None:
        """Seed the task RNG with ``seed`` unless it is seeded already (the :mod:`mtgym.core` first-reset rule)."""
        if seed is None:
            return
        try:
            self.assert_task_seed_is_set()
        except RuntimeError:
            self.seed_task(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        """
        Switch task if ``options["task_state"]`` is given (at this wrapper's level), then reset the inner env.

        :param seed: seeds the env RNG, and the task RNG if it is unseeded
        :param options: ``{"task_state": s}`` switches task first; other keys go to the inner env
        """
        if options is not None and "task_state" in options:
            options = dict(options)
            self._seed_task_if_unset(seed)
            self.set_task_state(options.pop("task_state"))
        return self.env.reset(seed=seed, options=options or None)
