"""One Meta-World task as a Gymnasium env: its goal set, float32 observations, seeding and success keys."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mtgym.envs.metaworld.benchmarks import ALL_V3_ENVIRONMENTS, N_GOALS
from mtgym.wrappers.normalize_reward import NormalizeReward

try:
    from metaworld.types import Task
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("Meta-World is not installed: pip install mtgym[metaworld]") from e

GoalMode = Literal["fixed", "resample"]
GOAL_MODES = ("fixed", "resample")
REWARD_FUNCTION_VERSIONS = ("v1", "v2")


class MetaWorldTaskWrapper(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """
    Gives one Meta-World v3 env (``SawyerXYZEnv``) its goal set and a clean Gymnasium contract.

    * **Goals.** At construction it gets the task's :data:`~mtgym.envs.metaworld.benchmarks.N_GOALS` goal
      vectors from ``goals`` (e.g. :func:`~mtgym.envs.metaworld.benchmarks.generate_goals` run on this very env).
      With ``goal_mode="fixed"`` the goal ``fixed_goal_index`` is set once and kept for every episode (mtrl/mtenv);
      with ``"resample"`` a goal is drawn at every reset with the env RNG, as ``np_random.choice(50)`` in Meta-World's
      ``RandomTaskSelectWrapper._set_random_task``. ``reset(options={"goal_index": g})`` sets goal ``g`` for that
      episode instead (e.g. one evaluation episode per goal); the RNG is then not drawn from.
    * **Seeding.** ``SawyerXYZEnv.reset`` ignores ``seed``; here ``reset(seed=s)`` seeds the env (its RNG and
      spaces) through ``env.seed(s)``, so the resampled goals follow the reset seed. ``seed`` seeds it the same way
      at construction, as Meta-World's ``_init_each_env`` does, so plain resets follow Meta-World's goal draws.
    * **Observations** are float32, inside :attr:`observation_space` (the float32 version of the task's own
      observation space, goal visible). Meta-World clips step observations to that space but not reset
      observations; here both are clipped.
    * ``info["success"]`` and ``info["is_success"]`` are floats 0/1 (SB3 reads ``is_success``).
    * **Time limit.** Meta-World's own 500-step ``max_path_length`` is lifted: the registered ``TimeLimit`` cuts
      episodes (150 or 500 steps, or ``gym.make(..., max_episode_steps=n)``), as truncation, never termination.

    :param env: an unwrapped Meta-World v3 env, freshly built
    :param goals: the task's ``(N_GOALS, d)`` goal vectors, or a function of the unwrapped env that returns them
    :param goal_mode: ``"fixed"`` or ``"resample"``
    :param fixed_goal_index: the goal used while ``goal_mode="fixed"`` (and until the first reset otherwise)
    :param seed: seeds the env at construction (``None`` leaves it unseeded)
    """

    def __init__(
        self,
        env: gym.Env,
        goals: np.ndarray | Callable[[Any], np.ndarray],
        goal_mode: GoalMode = "fixed",
        fixed_goal_index: int = 0,
        seed: int | None = None,
    ):
        if goal_mode not in GOAL_MODES:
            raise ValueError(f"Unknown goal_mode {goal_mode!r}: expected one of {GOAL_MODES}")
        if not 0 <= fixed_goal_index < N_GOALS:
            raise ValueError(f"fixed_goal_index must be in [0, {N_GOALS - 1}], got {fixed_goal_index}")
        super().__init__(env)
        mw_env = env.unwrapped
        mw_env.max_path_length = sys.maxsize  # Meta-World raises past it; the TimeLimit above us decides instead
        self.goal_mode = goal_mode
        self.goals = np.asarray(goals(mw_env) if callable(goals) else goals, dtype=np.float64)
        if seed is not None:
            mw_env.seed(seed)
        # Task objects as Meta-World's benchmarks build them; partially_observable=False keeps the goal visible.
        env_cls = type(mw_env)
        self._tasks = [
            Task(mw_env.task_name, pickle.dumps({"rand_vec": goal, "env_cls": env_cls, "partially_observable": False}))
            for goal in self.goals
        ]
        self.goal_index = fixed_goal_index
        mw_env.set_task(self._tasks[fixed_goal_index])
        space = mw_env.sawyer_observation_space  # recomputed by set_task with the goal bounds
        self._obs_low, self._obs_high = space.low, space.high
        self.observation_space = spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), dtype=np.float32)

    @property
    def goal(self) -> np.ndarray:
        """The active goal vector (Meta-World's ``rand_vec``: initial object and/or goal position, by task)."""
        return self.goals[self.goal_index]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """
        Seeds the env if ``seed`` is given, sets ``options["goal_index"]`` or draws a goal under
        ``goal_mode="resample"``, then resets.
        """
        mw_env = self.env.unwrapped
        if seed is not None:
            mw_env.seed(seed)  # type: ignore[attr-defined]
        goal_index = None if options is None else options.get("goal_index")
        if goal_index is not None:
            if isinstance(goal_index, bool) or not isinstance(goal_index, (int, np.integer)) or not 0 <= goal_index < N_GOALS:
                raise ValueError(f"goal_index must be an integer in [0, {N_GOALS - 1}], got {goal_index!r}")
            goal_index = int(goal_index)
        elif self.goal_mode == "resample":
            goal_index = int(mw_env.np_random.choice(len(self._tasks)))
        if goal_index is not None:
            self.goal_index = goal_index
            mw_env.set_task(self._tasks[goal_index])  # type: ignore[attr-defined]
        obs, info = self.env.reset()
        return np.clip(obs, self._obs_low, self._obs_high).astype(np.float32), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Steps the env, casting the observation to float32 and the success flag to float 0/1."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["is_success"] = info["success"] = float(info["success"])
        return obs.astype(np.float32), float(reward), terminated, truncated, info


class SeededNormalizeReward(NormalizeReward):
    """
    :class:`~mtgym.wrappers.normalize_reward.NormalizeReward` whose statistics restart at ``reset(seed=...)``.

    A seeded reset then fixes everything that follows, rewards included (Gymnasium's determinism contract and
    ``check_env``). Training loops seed only the first reset (SB3, Gymnasium vector envs), so within a run the
    statistics persist across episodes, as in mtenv.
    """

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Restarts the statistics (mean 0, var 1) if ``seed`` is given, then resets."""
        if seed is not None:
            self.mean, self.var = 0.0, 1.0
        return super().reset(seed=seed, options=options)


def make_task_env(
    task_name: str,
    goals: np.ndarray | Callable[[Any], np.ndarray],
    goal_mode: GoalMode = "fixed",
    fixed_goal_index: int = 0,
    reward_function_version: str = "v1",
    normalize_reward: bool = True,
    render_mode: str | None = None,
    camera_name: str | None = None,
    width: int = 480,
    height: int = 480,
    seed: int | None = None,
) -> gym.Env:
    """
    Build one task's env: the Meta-World class, :class:`MetaWorldTaskWrapper`, then (optionally) the mtenv reward
    normaliser (:class:`SeededNormalizeReward`), whose statistics are per task env.

    :param task_name: a v3 task name, e.g. ``"reach-v3"``
    :param goals: the task's goal vectors, or a function of the unwrapped env that returns them
    :param goal_mode: ``"fixed"`` or ``"resample"``
    :param fixed_goal_index: the goal kept under ``goal_mode="fixed"``
    :param reward_function_version: ``"v1"`` (original) or ``"v2"`` (Meta-World+)
    :param normalize_reward: divide rewards by their running std (mtenv/envs/metaworld/env.py)
    :param render_mode: ``None``, ``"human"``, ``"rgb_array"`` or ``"depth_array"`` (Meta-World's own modes)
    :param camera_name: a Meta-World camera (e.g. ``"corner"``); ``None`` uses the default free camera
    :param width: render width
    :param height: render height
    :param seed: seeds the env at construction, as Meta-World's ``_init_each_env``
    :return: the task env
    """
    if reward_function_version not in REWARD_FUNCTION_VERSIONS:
        raise ValueError(
            f"Unknown reward_function_version {reward_function_version!r}: expected one of {REWARD_FUNCTION_VERSIONS}"
        )
    env_cls = ALL_V3_ENVIRONMENTS[task_name]
    mw_env = env_cls(
        reward_function_version=reward_function_version,
        render_mode=render_mode,
        camera_name=camera_name,
        width=width,
        height=height,
    )
    env: gym.Env = MetaWorldTaskWrapper(mw_env, goals, goal_mode, fixed_goal_index, seed)
    if normalize_reward:
        env = SeededNormalizeReward(env)
    return env
