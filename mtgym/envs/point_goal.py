"""A tiny continuous multi-task env for fast learning checks: a point mass that must reach a task-specific goal."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces

from mtgym.core import FiniteTaskEnv, MTObs, check_action


class MTPointGoal(FiniteTaskEnv):
    """
    A 2-D point that must reach one of ``n_tasks`` goals spread on a circle.

    ## Description
    The agent starts near the origin; task ``i`` places its goal at angle ``2πi / n_tasks`` on a circle of radius
    ``goal_radius``. The goal is *not* in ``env_obs``, so the agent must read the task from ``task_obs``: this is
    the smallest setting in which multi-task conditioning matters, and it trains in seconds (the learning tests of
    every mtsb3 algorithm use it).

    ## Action Space
    ``Box(-1, 1, (2,))``: a velocity, scaled by 0.1 per step.

    ## Observation Space
    ``env_obs``: ``Box(-2, 2, (2,))`` position. ``task_obs``: ``Discrete(n_tasks)``.

    ## Rewards
    Minus the distance to the goal. ``info["success"]`` (and ``is_success``) is 1.0 within ``0.1`` of the goal.

    ## Episode End
    Truncated by the registered ``max_episode_steps`` (30); never terminated.

    :param n_tasks: number of goals
    :param goal_radius: radius of the goal circle
    :param initial_task_state: the task active after construction
    """

    def __init__(self, n_tasks: int = 4, goal_radius: float = 1.0, initial_task_state: int = 0):
        super().__init__(
            spaces.Box(-1.0, 1.0, (2,), dtype=np.float32),
            spaces.Box(-2.0, 2.0, (2,), dtype=np.float32),
            [f"goal_{i}" for i in range(n_tasks)],
            initial_task_state,
        )
        angles = 2 * np.pi * np.arange(n_tasks) / n_tasks
        self.goals = (goal_radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)
        self._pos = np.zeros(2, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        self._pos = self.np_random.uniform(-0.1, 0.1, 2).astype(np.float32)
        return self.make_obs(self._pos.copy()), {}

    def step(self, action: np.ndarray) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        check_action(self.action_space, action)  # a NaN would make every later observation and reward NaN
        self._pos = np.clip(self._pos + 0.1 * np.clip(action, -1.0, 1.0), -2.0, 2.0).astype(np.float32)
        distance = float(np.linalg.norm(self._pos - self.goals[self._task_index]))
        success = float(distance < 0.1)
        return self.make_obs(self._pos.copy()), -distance, False, False, {"success": success, "is_success": success}
