"""``EnvToMTEnv``: turn a single-task Gymnasium env into an :class:`~mtgym.core.MTEnv`."""

from __future__ import annotations

import copy
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium import spaces
from gymnasium.core import ActType

from mtgym.core import MTEnv, MTObs, TaskObsType

__all__ = ["EnvToMTEnv"]


class EnvToMTEnv(MTEnv[ActType]):
    """
    Make a single-task env multi-task: observations become ``{"env_obs": <inner obs>, "task_obs": get_task_obs()}``
    (mtenv/wrappers/).

    Subclasses define what a task is by implementing ``get_task_state``, ``set_task_state`` and
    ``sample_task_state`` (drawing with ``self.np_random_task``), typically by changing a parameter of ``self.env``.
    ``get_task_obs`` returns a copy of ``self._task_obs`` unless overridden, so ``set_task_state`` may just set that.

    This class is an :class:`~mtgym.core.MTEnv` that *holds* the inner env, like
    :class:`~mtgym.wrappers.MultiEnvWrapper`, not a ``gym.Wrapper``: ``env.unwrapped`` is then the object with the
    task API, which is where :mod:`mtgym.vector` and :mod:`mtsb3` look for it. The inner env is ``self.env``.
    Seeding follows :mod:`mtgym.core`: ``reset(seed=s)`` seeds this env's RNGs and resets the inner env with the
    same ``s``; ``seed_task`` only touches the task RNG. The reference also forwarded every public attribute to the
    inner env; use ``self.env`` for that instead.

    Example::

        >>> import gymnasium as gym
        >>> from gymnasium import spaces
        >>> class GravityCartPole(EnvToMTEnv):
        ...     def get_task_state(self):
        ...         return self.env.unwrapped.gravity
        ...     def set_task_state(self, task_state):
        ...         self.env.unwrapped.gravity = self._task_obs = float(task_state)
        ...     def sample_task_state(self):
        ...         return float(self.np_random_task.uniform(5.0, 15.0))
        >>> env = GravityCartPole(gym.make("CartPole-v1"), spaces.Box(5.0, 15.0, (), dtype=float))
        >>> obs, _ = env.reset(seed=0, options={"task_state": 12.5})
        >>> obs["task_obs"], obs["env_obs"].shape
        (12.5, (4,))

    Change logs:
     * v0 - Port of mtenv's ``EnvToMTEnv`` on the Gymnasium API (no attribute fall-through).

    :param env: the single-task env
    :param task_observation_space: the space of ``task_obs``
    """

    def __init__(self, env: gym.Env[Any, ActType], task_observation_space: spaces.Space):
        self.env = env
        super().__init__(env.action_space, env.observation_space, task_observation_space)
        self.metadata = env.metadata
        self.render_mode = env.render_mode
        self._task_obs: TaskObsType = None

    def get_task_obs(self) -> TaskObsType:
        # a copy: observations must not share objects across calls (Gymnasium's env checker enforces it)
        return copy.deepcopy(self._task_obs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        """
        Seed (see :class:`~mtgym.core.MTEnv`), switch task if ``options["task_state"]`` is given, reset the inner env.

        :param seed: seeds this env's RNGs and the inner env
        :param options: ``{"task_state": s}`` switches task first; other keys go to the inner env
        """
        super().reset(seed=seed, options=options)
        inner_options = {k: v for k, v in options.items() if k != "task_state"} if options else None
        obs, info = self.env.reset(seed=seed, options=inner_options or None)
        return self.make_obs(obs), info

    def step(self, action: ActType) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.make_obs(obs), reward, terminated, truncated, info

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
