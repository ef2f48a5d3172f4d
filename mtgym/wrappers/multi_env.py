"""``MultiEnvWrapper``: one :class:`~mtgym.core.MTEnv` over N single-task envs, built lazily."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from mtgym.core import FiniteTaskEnv, MTObs, check_task_index


def derive_seed(seed: int, index: int) -> int:
    """
    :return: a well-mixed 32-bit seed for sub-env ``index`` from a base ``seed``, so sub-envs never share a stream.
    """
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class MultiEnvWrapper(FiniteTaskEnv):
    """
    Holds one constructor per task and builds each env on first use (mtenv/wrappers/).

    The task state and ``task_obs`` are the index of the active env. ``reset`` and ``step`` act on the active env only.
    ``reset(seed=s)`` seeds the active env with a seed derived from ``(s, index)``, and every other env gets its own
    derived seed on its first reset after that. Unlike the reference, envs built later are therefore seeded too.

    Example::

        >>> import gymnasium as gym
        >>> env = MultiEnvWrapper([lambda: gym.make("CartPole-v1"), lambda: gym.make("CartPole-v1")], ["a", "b"])
        >>> obs, info = env.reset(seed=0, options={"task_state": 1})
        >>> obs["task_obs"], env.n_built  # task 0 was built at construction, task 1 on first use
        (1, 2)

    :param env_fns: one zero-argument constructor per task
    :param task_names: the task names, in the same order
    :param initial_task_state: the task active (and built) at construction
    :param render_mode: passed through as this env's ``render_mode``; the sub-envs should be built with the same one
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        task_names: Sequence[str],
        initial_task_state: int = 0,
        render_mode: str | None = None,
    ):
        if len(env_fns) != len(task_names):
            raise ValueError(f"Got {len(env_fns)} env constructors for {len(task_names)} task names")
        self._env_fns = list(env_fns)
        self._envs: list[gym.Env | None] = [None] * len(env_fns)
        self._pending_seed: list[int | None] = [None] * len(env_fns)
        self.render_mode = render_mode
        # validated before indexing the constructors, so a bad state gets the task API's error, not a TypeError
        index = check_task_index(initial_task_state, len(env_fns))
        first = self._get_env(index)
        super().__init__(first.action_space, first.observation_space, list(task_names), index)

    @property
    def n_built(self) -> int:
        """Number of sub-envs built so far."""
        return sum(env is not None for env in self._envs)

    @property
    def active_env(self) -> gym.Env:
        """The env of the active task (built if needed)."""
        return self._get_env(self._task_index)

    def _get_env(self, index: int) -> gym.Env:
        env = self._envs[index]
        if env is None:
            env = self._envs[index] = self._env_fns[index]()
        return env

    def set_task_state(self, task_state: int) -> None:
        super().set_task_state(task_state)
        self._get_env(self._task_index)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        if seed is not None:
            self._pending_seed = [self._task_env_seed(seed, i) for i in range(self.n_tasks)]
        index = self._task_index
        sub_seed, self._pending_seed[index] = self._pending_seed[index], None
        obs, info = self.active_env.reset(seed=sub_seed, options=self._task_env_options(options))
        return self.make_obs(obs), info

    def _task_env_seed(self, seed: int, index: int) -> int:
        """:return: the seed of task ``index``'s env at its next reset after ``reset(seed=seed)``."""
        return derive_seed(seed, index)

    def _task_env_options(self, options: dict[str, Any] | None) -> dict[str, Any] | None:
        """:return: the reset options passed on to the active task's env (none by default)."""
        return None

    def step(self, action: Any) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.active_env.step(action)
        return self.make_obs(obs), reward, terminated, truncated, info

    def render(self) -> Any:
        return self.active_env.render()

    def close(self) -> None:
        for env in self._envs:
            if env is not None:
                env.close()
