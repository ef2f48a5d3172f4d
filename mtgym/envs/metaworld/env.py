"""``MetaWorldMTEnv``: the Meta-World MT benchmarks as one lazily built multi-task env."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal, SupportsFloat

import numpy as np
from gymnasium import spaces

from mtgym.core import ENV_KEY, MTObs, check_task_index
from mtgym.envs.metaworld.benchmarks import benchmark_goals, benchmark_task_names, generate_goals, task_goal_seeds
from mtgym.envs.metaworld.task_env import GOAL_MODES, REWARD_FUNCTION_VERSIONS, GoalMode, make_task_env
from mtgym.wrappers.multi_env import MultiEnvWrapper

#: Indices of the goal position in the 39-d Meta-World observation (its last three entries).
GOAL_SLICE = slice(36, 39)

GoalSet = Literal["per_task", "benchmark"]
GOAL_SETS = ("per_task", "benchmark")


def _check_options(
    num_copies_per_env: int,
    goal_mode: str,
    reward_function_version: str,
    render_mode: str | None,
    render_modes: list[str],
    goal_set: str,
) -> int:
    """Check :class:`MetaWorldMTEnv`'s choices before anything is built. :return: the number of copies per task."""
    if isinstance(num_copies_per_env, bool) or not isinstance(num_copies_per_env, (int, np.integer)) or num_copies_per_env < 1:
        raise ValueError(f"num_copies_per_env must be a positive integer, got {num_copies_per_env!r}")
    if goal_mode not in GOAL_MODES:
        raise ValueError(f"Unknown goal_mode {goal_mode!r}: expected one of {GOAL_MODES}")
    if reward_function_version not in REWARD_FUNCTION_VERSIONS:
        raise ValueError(
            f"Unknown reward_function_version {reward_function_version!r}: expected one of {REWARD_FUNCTION_VERSIONS}"
        )
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"Unknown render_mode {render_mode!r}: expected one of {render_modes}")
    if goal_set not in GOAL_SETS:
        raise ValueError(f"Unknown goal_set {goal_set!r}: expected one of {GOAL_SETS}")
    return int(num_copies_per_env)


class MetaWorldMTEnv(MultiEnvWrapper):
    """
    A Meta-World v3 multi-task benchmark (MT1, MT10, MT25 or MT50) as a :class:`~mtgym.core.FiniteTaskEnv`.

    ## Description
    One sub-env per task, built on first use (:class:`~mtgym.wrappers.multi_env.MultiEnvWrapper`): constructing an
    MT50 env builds only the initial task's MuJoCo model and goals (about 0.3 s), never the whole benchmark
    (``metaworld.MT50()`` takes about 36 s). The task state and ``task_obs`` are the task index, in Meta-World's
    benchmark order (:attr:`task_names`). A plain ``reset()`` keeps the task;
    ``reset(options={"task_state": i})`` switches to task ``i``.

    **Goals.** Every task has Meta-World's 50 goal variants (``rand_vec``), from one of two goal sets:

    * ``goal_set="per_task"`` (mtrl protocol): each task has its own task RNG, seeded from
      ``(task_seed, Meta-World task_id)`` (:func:`~mtgym.envs.metaworld.benchmarks.task_goal_seeds`), which generates
      its goals exactly as ``metaworld.MT1(task, seed)`` would; a task has the same goals in MT10 and MT50.
    * ``goal_set="benchmark"`` (Meta-World+ protocol): the goals of ``metaworld.MT10(seed=task_seed)`` (or MT25/MT50),
      which draws all tasks from one stream (:func:`~mtgym.envs.metaworld.benchmarks.benchmark_goals`), without
      building the benchmark.

    The goals depend on ``task_seed`` only (not on reset seeds), so train and eval envs built with the same kwargs
    share them, as mtrl shares its ``env_id_to_task_map``.

    * ``goal_mode="fixed"`` (mtrl protocol): one goal per task (its task RNG's draw) is set once and kept.
    * ``goal_mode="resample"`` (Meta-World+ protocol): at every reset a goal is drawn from the 50 with the task
      env's RNG, as Meta-World's ``RandomTaskSelectWrapper``. ``reset(options={"goal_index": g})`` or
      :meth:`set_goal_sequence` choose the goals instead.

    **Seeding.** Under ``goal_set="per_task"``, ``reset(seed=s)`` seeds the task env with a seed derived from
    ``(s, task index)``. Under ``goal_set="benchmark"`` it seeds it with ``s - vector_index``: Meta-World's vector env
    seeds every sub-env with the same seed, so all sub-envs draw the same goal index at each reset, and a vector env
    seeding its sub-env ``i`` with ``s + i`` (Gymnasium's and SB3's convention) thus gets Meta-World's draws.
    ``seed=s`` at construction seeds every task env with ``s`` as Meta-World's ``_init_each_env`` does, so that
    ``gym.make_vec(id, seed=s)`` followed by plain resets draws the goals of ``gym.make_vec("Meta-World/MT10", seed=s)``.

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
    Meta-World tasks never terminate, unless ``terminate_on_success=True`` (or
    :meth:`toggle_terminate_on_success`, Meta-World's name), which terminates an episode at its first success step
    as Meta-World's ``AutoTerminateOnSuccessWrapper``. Episodes are truncated by the registered time limit.

    ## Version History
    * v0 (mtrl protocol): one fixed goal per task, 150 steps, v1 reward, reward normalisation on. Differences from
      mtenv: Meta-World v3 physics and tasks (``*-v3``, 39-d obs); per-task seeds; MT1 shows the goal (the reference
      built ``ML1`` for MT1, which hides it: README, "Differences from mtrl and mtenv"); the default initial task is 0
      (the reference used 1); MT50 is in Meta-World v3's order.
    * ``MT-MetaWorldPlus-*-v0`` (Meta-World+ protocol): the official benchmark's goal set and goal draws, 500 steps,
      v2 reward, no normalisation.

    :param benchmark: ``"MT1"``, ``"MT10"``, ``"MT25"`` or ``"MT50"``
    :param task_name: the task of ``MT1`` (default ``pick-place-v3``)
    :param goal_mode: ``"fixed"`` or ``"resample"``
    :param goal_set: ``"per_task"`` (each task's own goal stream) or ``"benchmark"`` (Meta-World's one stream)
    :param reward_function_version: ``"v1"`` or ``"v2"``
    :param normalize_reward: divide each task env's rewards by their running std
    :param task_seed: seed of the task set (the goals of every task and the fixed goal); ``None`` draws one
    :param seed: Meta-World's ``seed`` argument: when given, it is the ``task_seed`` and it seeds every task env at
        construction
    :param terminate_on_success: end an episode (``terminated=True``) at its first success step
    :param vector_index: this env's index in a vector env (set by :func:`~mtgym.vector.make_task_vector_env`); see
        "Seeding"
    :param initial_task_state: the task active (and built) at construction
    :param render_mode: ``None``, ``"rgb_array"`` or ``"depth_array"`` (use ``MUJOCO_GL=egl`` headless)
    :param camera_name: a Meta-World camera such as ``"corner"``; ``None`` uses the default free camera
    :param width: render width
    :param height: render height
    :param num_copies_per_env: ``k`` independent env slots per task, in a row (mtenv's ``num_copies_per_env``,
        mtenv/envs/metaworld/env.py): task index ``i`` runs task ``i // k`` of the benchmark, with that task's goals and
        its own reward statistics; with ``k > 1`` the slots are named ``"{task}_{copy}"``
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
        seed: int | None = None,
        terminate_on_success: bool = False,
        vector_index: int = 0,
        goal_set: GoalSet = "per_task",
        initial_task_state: int = 0,
        render_mode: str | None = None,
        camera_name: str | None = None,
        width: int = 480,
        height: int = 480,
        num_copies_per_env: int = 1,
    ):
        task_names = benchmark_task_names(benchmark, task_name)
        self.num_copies_per_env = copies = _check_options(
            num_copies_per_env, goal_mode, reward_function_version, render_mode, self.metadata["render_modes"], goal_set
        )
        check_task_index(initial_task_state, len(task_names) * copies)  # before anything is built
        _check_seed("vector_index", vector_index)
        if seed is not None:
            task_seed = _check_seed("seed", seed)
        if task_seed is None:
            task_seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.benchmark = benchmark
        self.goal_mode = goal_mode
        self.goal_set = goal_set
        self.task_seed = _check_seed("task_seed", task_seed)
        self.vector_index = int(vector_index)
        self.terminate_on_success = bool(terminate_on_success)
        self._goal_queue: list[int] = []
        env_fns = []
        # mtenv repeats each task k times in a row: slot i runs task i // k (each slot its own env and reward statistics)
        for index, name in (pair for pair in enumerate(task_names) for _ in range(copies)):
            goal_seed, fixed_goal_index = task_goal_seeds(self.task_seed, name)
            if goal_set == "benchmark":
                goals = functools.partial(benchmark_goals, tuple(task_names), self.task_seed, index)
            else:
                goals = functools.partial(generate_goals, seed=goal_seed)
            env_fns.append(
                functools.partial(
                    make_task_env,
                    name,
                    goals,
                    goal_mode,
                    fixed_goal_index,
                    reward_function_version,
                    normalize_reward,
                    render_mode,
                    camera_name,
                    width,
                    height,
                    seed,
                )
            )
        slot_names = task_names if copies == 1 else [f"{name}_{c}" for name in task_names for c in range(copies)]
        super().__init__(env_fns, slot_names, initial_task_state, render_mode)
        if len(slot_names) > 1:
            env_space = self.observation_space[ENV_KEY]
            low, high = env_space.low.copy(), env_space.high.copy()
            low[GOAL_SLICE], high[GOAL_SLICE] = -np.inf, np.inf
            self.observation_space[ENV_KEY] = spaces.Box(low, high, dtype=np.float32)

    @property
    def goal_index(self) -> int:
        """Index (in ``[0, 50)``) of the active task's current goal."""
        return self.active_env.get_wrapper_attr("goal_index")

    @property
    def n_goals(self) -> int:
        """Number of goal variants of the active task (Meta-World's 50)."""
        return len(self.active_env.get_wrapper_attr("goals"))

    @property
    def goal(self) -> np.ndarray:
        """The active task's current goal vector (Meta-World's ``rand_vec``)."""
        return self.active_env.get_wrapper_attr("goal")

    def toggle_terminate_on_success(self, on: bool) -> None:
        """Meta-World's switch (``AutoTerminateOnSuccessWrapper``): end episodes at their first success step or not."""
        self.terminate_on_success = bool(on)

    def set_goal_sequence(self, goal_indices: Sequence[int] | None) -> None:
        """
        Use these goals, in order, at the next resets (e.g. one evaluation episode per goal); once they are used up,
        or after ``set_goal_sequence(None)``, goals follow ``goal_mode`` again. No goal RNG draw is made meanwhile.

        :param goal_indices: goal indices in ``[0, 50)``, or ``None`` to clear the sequence
        """
        self._goal_queue = [] if goal_indices is None else [int(g) for g in goal_indices]

    def step(self, action: Any) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Steps the active task; with ``terminate_on_success`` a success step terminates the episode."""
        obs, reward, terminated, truncated, info = super().step(action)
        if self.terminate_on_success:
            terminated = info["success"] == 1.0
        return obs, reward, terminated, truncated, info

    def _task_env_seed(self, seed: int, index: int) -> int:
        if self.goal_set == "per_task":
            return super()._task_env_seed(seed, index)
        if seed < self.vector_index:
            raise ValueError(
                f"Sub-env {self.vector_index} got reset seed {seed}: under goal_set='benchmark' a sub-env seed is "
                "base seed + sub-env index (so that every sub-env draws Meta-World's goals), and the base seed is >= 0"
            )
        return seed - self.vector_index

    def _task_env_options(self, options: dict[str, Any] | None) -> dict[str, Any] | None:
        goal_index = None if options is None else options.get("goal_index")
        if goal_index is None and self._goal_queue:
            goal_index = self._goal_queue.pop(0)
        return None if goal_index is None else {"goal_index": goal_index}


def _check_seed(name: str, value: Any) -> int:
    """:return: ``value`` as an int; :raises ValueError: unless it is a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
