"""The shared task logic of the control envs: a vector μ ∈ [-1, 1]^d mapped to physics parameters."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from mtgym.core import MTEnv, MTObs, TaskNotSetError, check_action, task_state_array


class PhysicsTaskEnv(MTEnv[int]):
    """
    Base of :class:`MTCartPole` and :class:`MTAcrobot`: the task state is a vector ``μ ∈ [-1, 1]^task_dim``
    (``task_obs`` equals it), and the physics parameters are recomputed from it by :meth:`_set_physics`.

    The first reset draws a task with the task RNG if none was set, so a plain ``gym.make(...).reset(seed=s)`` is a
    valid, reproducible episode. The reference recomputes the physics on every step; we do it on every task change,
    which gives the same dynamics.

    :param action_space: the action space
    :param env_observation_space: the space of ``env_obs``
    :param task_dim: dimension of μ
    :param task_state: an initial μ (``None``: sampled at the first reset)
    """

    def __init__(self, action_space: spaces.Space, env_observation_space: spaces.Box, task_dim: int, task_state: Any = None):
        super().__init__(action_space, env_observation_space, spaces.Box(-1.0, 1.0, (task_dim,), dtype=np.float32))
        self.task_dim = task_dim
        self._mu: np.ndarray | None = None
        if task_state is not None:
            self.set_task_state(task_state)

    def get_task_obs(self) -> np.ndarray:
        if self._mu is None:
            raise TaskNotSetError()
        return self._mu.copy()

    def get_task_state(self) -> np.ndarray:
        return self.get_task_obs()

    def _check_step(self, action: Any) -> None:
        """
        :raises TaskNotSetError: before any task is set (a ``step`` after a first ``reset`` that failed)
        :raises ValueError: for an action outside the action space
        """
        if self._mu is None:
            raise TaskNotSetError()
        check_action(self.action_space, action)

    def set_task_state(self, task_state: Any) -> None:
        expected = f"a vector of {self.task_dim} values in [-1, 1]"
        mu = task_state_array(task_state, expected)
        if mu.shape != (self.task_dim,) or not np.all(np.abs(mu) <= 1.0):
            raise ValueError(f"Invalid task state {task_state!r}: expected {expected}")
        self._mu = mu
        self._set_physics(mu)

    def sample_task_state(self) -> np.ndarray:
        return self.np_random_task.uniform(-1.0, 1.0, self.task_dim).astype(np.float32)

    def _set_physics(self, mu: np.ndarray) -> None:
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        if self._mu is None:
            self.reset_task_state()
        return {}, {}
