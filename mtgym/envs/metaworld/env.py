"""``MetaWorldMTEnv``: the Meta-World MT benchmarks as one lazily built multi-task env."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces

from mtgym.core import check_task_index
from mtgym.envs.metaworld.benchmarks import benchmark_task_names, task_goal_seeds
from mtgym.envs.metaworld.task_env import GOAL_MODES, REWARD_FUNCTION_VERSIONS, GoalMode, make_task_env
from mtgym.wrappers.multi_env import MultiEnvWrapper

#: Indices of the goal position in the 39-d Meta-World observation (its last three entries).
GOAL_SLICE = slice(36, 39)


class MetaWorldMTEnv(MultiEnvWrapper):
    """
    A Meta-World v3 multi-task benchmark (MT1, MT10, MT25 or MT50) as a :class:`~mtgym.core.FiniteTaskEnv`.

    ## Description
    One sub-env per task, built on first use (:class:`~mtgym.wrappers.multi_env.MultiEnvWrapper`): constructing an
    MT50 env builds only the initial task's MuJoCo model and goals (about 0.3 s), never the whole benchmark
    (``metaworld.MT50()`` takes about 36 s). The task state and ``task_obs`` are the task index, in Meta-World's
    benchmark order (:attr:`task_names`). A plain ``reset()`` keeps the task;
    ``reset(options={"task_state": i})`` switches to task ``i``.

    **Goals.** Each task has its own task RNG, seeded from ``(task_seed, Meta-World task_id)``
    (:func:`~mtgym.envs.metaworld.benchmarks.task_goal_seeds`). It generates the task's 50 goal variants, exactly as
    ``metaworld.MT1(task, seed)`` would, and draws the task's fixed goal. Meta-World's own ``MT10(seed)`` gives all
    tasks one stream and its vector env gives every sub-env the same seed, so all tasks pick the same goal index.
    The goals depend on ``task_seed`` only (not on reset seeds), so train and eval envs built with the same kwargs
    share them, as mtrl shares its ``env_id_to_task_map``.

    * ``goal_mode="fixed"`` (mtrl protocol): the fixed goal is set once and kept for every reset.
    * ``goal_mode="resample"`` (Meta-World+ protocol): at every reset a goal is drawn from the 50 with the task
      env's RNG, which ``reset(seed=s)`` seeds (with a seed derived from ``(s, task index)``).

    ## Action Space
    ``Box(-1, 1, (4,), float32)``: end-effector xyz displacement and gripper.

    ## Observation Space
    ``Dict(env_obs=Box(39,), float32, task_obs=Discrete(n_tasks))``. ``env_obs`` holds hand position, gripper
    opening, object poses, the previous frame of those 18 values, and the goal position (visible in every
    benchmark, MT1 included). The goal bounds differ per task, so with several tasks the goal entries are declared
    unbounded, like the object entries; MT1 declares its task's exact goal bounds.

    ## Rewards
    ``reward_function_version="v1"`` is the original reward, ``"v2"`` Meta-World+'s 0-10 reward. With
    ``normalize_reward=True`` each task env divides its rewards by their running std (mtenv/envs/metaworld/env.py, alpha =
    0.001, mean not subtracted), with statistics per task env.

    ## Episode End
    Meta-World tasks never terminate. Episodes are truncated by the registered time limit.

    ## Version History
    * v0 (mtrl protocol): one fixed goal per task, 150 steps, v1 reward, reward normalisation on. Differences from
      mtenv: Meta-World v3 physics and tasks (``*-v3``, 39-d obs); per-task seeds; MT1 shows the goal (the reference
      built ``ML1`` for MT1, which hides it: README, "Differences from mtrl and mtenv"); the default initial task is 0 (the
      reference used 1); MT50 is in Meta-World v3's order.
    * v1 (Meta-World+ protocol): a goal drawn from the 50 at every reset, 500 steps, v2 reward, no normalisation.

    :param benchmark: ``"MT1"``, ``"MT10"``, ``"MT25"`` or ``"MT50"``
    :param task_name: the task of ``MT1`` (default ``pick-place-v3``)
    :param goal_mode: ``"fixed"`` or ``"resample"``
    :param reward_function_version: ``"v1"`` or ``"v2"``
    :param normalize_reward: divide each task env's rewards by their running std
    :param task_seed: seed of the task set (the goals of every task and the fixed goal); ``None`` draws one
    :param initial_task_state: the task active (and built) at construction
    :param render_mode: ``None``, ``"rgb_array"`` or ``"depth_array"`` (use ``MUJOCO_GL=egl`` headless)
    :param camera_name: a Meta-World camera such as ``"corner"``; ``None`` uses the default free camera
    :param width: render width
    :param height: render height
    """

    # "human" is left out: ``gym.make(..., render_mode="human")`` then shows the rgb_array frames in a window
    # (Gymnasium's HumanRendering), and headless ``check_env`` can test every declared mode.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 80}

    def __init__(
        self,
        benchmark: str = "MT10",
        task_name: str | None = None,
        goal_mode: GoalMode = "fixed",
        reward_function_version: str = "v1",
        normalize_reward: bool = True,
        task_seed: int | None = 0,
        initial_task_state: int = 0,
        render_mode: str | None = None,
        camera_name: str | None = None,
        width: int = 480,
        height: int = 480,
    ):
        task_names = benchmark_task_names(benchmark, task_name)
        if goal_mode not in GOAL_MODES:
            raise ValueError(f"Unknown goal_mode {goal_mode!r}: expected one of {GOAL_MODES}")
        if reward_function_version not in REWARD_FUNCTION_VERSIONS:
            raise ValueError(
                f"Unknown reward_function_version {reward_function_version!r}: expected one of {REWARD_FUNCTION_VERSIONS}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"Unknown render_mode {render_mode!r}: expected one of {self.metadata['render_modes']}")
        check_task_index(initial_task_state, len(task_names))  # before anything is built
        if task_seed is None:
            task_seed = int(np.random.SeedSequence().generate_state(1)[0])
        if isinstance(task_seed, bool) or not isinstance(task_seed, (int, np.integer)) or task_seed < 0:
            raise ValueError(f"task_seed must be a non-negative integer or None, got {task_seed!r}")
        self.benchmark = benchmark
        self.goal_mode = goal_mode
        self.task_seed = int(task_seed)
        env_fns = []
        for name in task_names:
            goal_seed, fixed_goal_index = task_goal_seeds(self.task_seed, name)
            env_fns.append(
                functools.partial(
                    make_task_env,
                    name,
                    goal_seed,
                    goal_mode,
                    fixed_goal_index,
                    reward_function_version,
                    normalize_reward,
                    render_mode,
                    camera_name,
                    width,
                    height,
                )
            )
        super().__init__(env_fns, task_names, initial_task_state, render_mode)
        if len(task_names) > 1:
            env_space = self.observation_space["env_obs"]
            low, high = env_space.low.copy(), env_space.high.copy()
            low[GOAL_SLICE], high[GOAL_SLICE] = -np.inf, np.inf
            self.observation_space["env_obs"] = spaces.Box(low, high, dtype=np.float32)

    @property
    def goal_index(self) -> int:
        """Index (in ``[0, 50)``) of the active task's current goal."""
        return self.active_env.get_wrapper_attr("goal_index")

    @property
    def goal(self) -> np.ndarray:
        """The active task's current goal vector (Meta-World's ``rand_vec``)."""
        return self.active_env.get_wrapper_attr("goal")
