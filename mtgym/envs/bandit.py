"""Multi-armed bandits as multi-task envs (mtenv's examples/), registered here."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces

from mtgym.core import TASK_KEY, FiniteTaskEnv, MTEnv, MTObs, TaskNotSetError, check_action, task_state_array


class MTBanditEnv(MTEnv[int]):
    """
    An ``n_arms`` Bernoulli bandit whose task is the vector of arm probabilities.

    ## Description
    The task state and ``task_obs`` are the probability vector. :meth:`sample_task_state` draws it uniformly with the
    task RNG. ``env_obs`` is always ``[0.0]``; reward is 1 with the pulled arm's probability. Episodes never terminate
    (the registered id truncates at 100 steps).

    ## Action Space
    ``Discrete(n_arms)``.

    ## Observation Space
    ``Dict(env_obs=Box(0, 1, (1,)), task_obs=Box(0, 1, (n_arms,)))``.

    ## Version History
    * v0: port of mtenv's ``MTBanditEnv``; a task is sampled at the first seeded reset if none was set (the reference
      raised ``RuntimeError`` on step before reset).

    :param n_arms: number of arms
    """

    def __init__(self, n_arms: int = 5):
        if n_arms < 1:
            raise ValueError(f"n_arms must be >= 1, got {n_arms}")
        super().__init__(
            spaces.Discrete(n_arms),
            spaces.Box(0.0, 1.0, (1,), dtype=np.float32),
            spaces.Box(0.0, 1.0, (n_arms,), dtype=np.float32),
        )
        self.n_arms = n_arms
        self.reward_probability: np.ndarray | None = None

    def get_task_obs(self) -> np.ndarray:
        if self.reward_probability is None:
            raise TaskNotSetError()
        return self.reward_probability.copy()

    def get_task_state(self) -> np.ndarray:
        return self.get_task_obs()

    def set_task_state(self, task_state: Any) -> None:
        expected = f"{self.n_arms} arm probabilities in [0, 1]"
        probs = task_state_array(task_state, expected)
        if probs.shape != (self.n_arms,) or not np.all((probs >= 0) & (probs <= 1)):  # NaN fails both comparisons
            raise ValueError(f"Invalid task state: expected {expected}, got {task_state!r}")
        self.reward_probability = probs

    def sample_task_state(self) -> np.ndarray:
        return self.np_random_task.random(self.n_arms).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        if self.reward_probability is None:
            self.reset_task_state()
        return self.make_obs(np.zeros(1, dtype=np.float32)), {}

    def _pull(self, action: int) -> float:
        if self.reward_probability is None:
            raise TaskNotSetError("Call reset() before step()")
        check_action(self.action_space, action)
        return float(self.np_random.random() < self.reward_probability[int(action)])

    def step(self, action: int) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        reward = self._pull(action)
        return self.make_obs(np.zeros(1, dtype=np.float32)), reward, False, False, {}


class FiniteMTBanditEnv(MTBanditEnv):
    """
    A bandit over ``n_tasks`` fixed probability vectors: the task state is the index, ``task_obs`` the vector.

    The vectors are drawn once at construction from a generator seeded with 0, as in the reference, so every
    instance has the same task set.

    :param n_tasks: number of tasks
    :param n_arms: number of arms
    :param initial_task_state: the task active after construction
    """

    def __init__(self, n_tasks: int = 10, n_arms: int = 5, initial_task_state: int = 0):
        super().__init__(n_arms)
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
        self.tasks = np.random.default_rng(0).random((n_tasks, n_arms)).astype(np.float32)
        self.task_names = [f"task_{i}" for i in range(n_tasks)]
        self.observation_space[TASK_KEY] = spaces.Discrete(n_tasks)
        self._task_index = 0
        self.set_task_state(initial_task_state)

    # the finite task API (index as task state and task_obs) is FiniteTaskEnv's, over the probability vectors
    n_tasks = FiniteTaskEnv.n_tasks
    get_task_obs = FiniteTaskEnv.get_task_obs  # type: ignore[assignment]
    get_task_state = FiniteTaskEnv.get_task_state  # type: ignore[assignment]
    sample_task_state = FiniteTaskEnv.sample_task_state  # type: ignore[assignment]

    def set_task_state(self, task_state: int) -> None:
        FiniteTaskEnv.set_task_state(self, task_state)  # type: ignore[arg-type]
        self.reward_probability = self.tasks[self._task_index]
