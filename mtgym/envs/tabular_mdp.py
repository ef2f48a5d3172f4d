"""Tabular MDPs whose reward and transition tables are the task (mtenv/envs/tabular_mdp/tmdp.py)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces

from mtgym.core import MTEnv, MTObs, TaskNotSetError, check_action


class TMDP(MTEnv[int]):
    """
    A tabular MDP with ``n_states`` states and ``n_actions`` actions whose task state is the pair ``(R, T)``.

    ## Description
    ``R[s, a]`` is the probability of reward 1 and ``T[s, a, s']`` the transition probability. Subclasses define
    how tasks are sampled (:class:`UniformTMDP`).

    ## Action Space
    ``Discrete(n_actions)``.

    ## Observation Space
    ``env_obs``: ``Box(0, 1, (n_states + 1,))``, the one-hot state followed by the last reward.
    ``task_obs``: ``Box(0, 1, (S·A + S·A·S,))``, ``flatten(R)`` then ``flatten(T)``.

    ## Episode End
    Never terminates; the registered id has no time limit (as the reference), so pass ``max_episode_steps`` to
    ``gym.make`` when training.

    :param n_states: number of states
    :param n_actions: number of actions
    """

    def __init__(self, n_states: int, n_actions: int):
        if n_states < 1 or n_actions < 1:
            raise ValueError(f"n_states and n_actions must be >= 1, got {n_states} and {n_actions}")
        self.n_states, self.n_actions = n_states, n_actions
        task_size = n_states * n_actions * (1 + n_states)
        super().__init__(
            spaces.Discrete(n_actions),
            spaces.Box(0.0, 1.0, (n_states + 1,), dtype=np.float32),
            spaces.Box(0.0, 1.0, (task_size,), dtype=np.float32),
        )
        self._task: tuple[np.ndarray, np.ndarray] | None = None
        self._state = 0

    def get_task_obs(self) -> np.ndarray:
        r, t = self.get_task_state()
        return np.concatenate([r.ravel(), t.ravel()]).astype(np.float32)

    def get_task_state(self) -> tuple[np.ndarray, np.ndarray]:
        if self._task is None:
            raise TaskNotSetError()
        return self._task

    def set_task_state(self, task_state: tuple[np.ndarray, np.ndarray]) -> None:
        s, a = self.n_states, self.n_actions
        expected = f"expected a pair (R, T) with R of shape {(s, a)} and T of shape {(s, a, s)}"
        try:
            r, t = (np.asarray(x, dtype=np.float64) for x in task_state)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Invalid task state {task_state!r}: {expected}") from e
        if r.shape != (s, a) or t.shape != (s, a, s):
            raise ValueError(f"Invalid task state: {expected}")
        # written so that NaN fails every comparison
        if not np.all((r >= 0) & (r <= 1)) or not np.all(t >= 0) or not np.allclose(t.sum(-1), 1.0):
            raise ValueError("Invalid task state: R must hold probabilities and each T[s, a] must sum to 1")
        self._task = (r, t)

    def sample_task_state(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError("TMDP has no task distribution; use UniformTMDP")

    def _env_obs(self, reward: float) -> np.ndarray:
        obs = np.zeros(self.n_states + 1, dtype=np.float32)
        obs[self._state], obs[-1] = 1.0, reward
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        if self._task is None:
            self.reset_task_state()
        self._state = int(self.np_random.integers(self.n_states))
        return self.make_obs(self._env_obs(0.0)), {}

    def step(self, action: int) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        check_action(self.action_space, action)
        r, t = self.get_task_state()
        reward = float(self.np_random.random() < r[self._state, action])
        self._state = int(self.np_random.choice(self.n_states, p=t[self._state, action]))
        return self.make_obs(self._env_obs(reward)), reward, False, False, {}


class UniformTMDP(TMDP):
    """
    A :class:`TMDP` whose tasks draw ``R ~ U(0, 1)`` and ``T = softmax(N(0, 1) logits)`` over ``s'``, with the task RNG.

    :param n_states: number of states
    :param n_actions: number of actions
    """

    def __init__(self, n_states: int = 4, n_actions: int = 5):
        super().__init__(n_states, n_actions)

    def sample_task_state(self) -> tuple[np.ndarray, np.ndarray]:
        rng = self.np_random_task
        s, a = self.n_states, self.n_actions
        r = rng.random((s, a))
        logits = rng.standard_normal((s, a, s))
        t = np.exp(logits - logits.max(-1, keepdims=True))
        return r, t / t.sum(-1, keepdims=True)
