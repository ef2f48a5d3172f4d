"""``SampleRandomTask``: draw a new task at every reset."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.core import ActType

from mtgym.core import MTObs
from mtgym.wrappers.multi_task import MultiTask

__all__ = ["SampleRandomTask"]


class SampleRandomTask(MultiTask[ActType]):
    """
    Resample the task on every ``reset`` with the inner env's ``reset_task_state()`` (mtenv/wrappers/), so every episode
    runs a task drawn from the task RNG. A plain MTEnv ``reset`` keeps the task instead.

    The draw happens before the inner reset. On a seeded reset an unseeded task RNG is seeded first (the
    :mod:`mtgym.core` rule), so ``reset(seed=s)`` gives the same task sequence every run. An explicit
    ``reset(options={"task_state": s})`` wins over the draw for that episode. Wrapped around
    :class:`~mtgym.wrappers.NTasks`, the draw is from the fixed task set.

    Example::

        >>> import gymnasium as gym
        >>> import mtgym
        >>> env = SampleRandomTask(gym.make("MT-FiniteBandit-v0"))
        >>> obs, _ = env.reset(seed=0)
        >>> [env.reset()[0]["task_obs"] for _ in range(5)]
        [6, 5, 2, 3, 0]

    Change logs:
     * v0 - Port of mtenv's ``SampleRandomTask``; ``options["task_state"]`` overrides the draw.

    :param env: a multi-task env
    """

    def __init__(self, env: gym.Env[MTObs, ActType]):
        gym.utils.RecordConstructorArgs.__init__(self)
        MultiTask.__init__(self, env)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        if not (options and "task_state" in options):
            self._seed_task_if_unset(seed)
            self.task_env.reset_task_state()
        return super().reset(seed=seed, options=options)
