"""``MT-TwoGoalMaze-v0``: find the box whose colour is written on the west wall (mtenv's MPTE maze,
mtenv/envs/mpte/two_goal_maze_env.py)."""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces

from mtgym.core import MTEnv, MTObs, check_task_index
from mtgym.wrappers.env_to_mtenv import EnvToMTEnv

try:
    import pyglet

    # miniworld opens an OpenGL context when an env is built; headless pyglet renders through EGL without a display.
    # This only takes effect if pyglet.window has not been imported yet.
    pyglet.options["headless"] = True
    from miniworld.entity import Box
    from miniworld.miniworld import MiniWorldEnv
except ImportError as e:
    raise ImportError("MT-TwoGoalMaze-v0 needs Farama miniworld: pip install mtgym[maze]") from e

__all__ = ["MTTwoGoalMazeEnv", "TwoGoalMazeEnv", "build_two_goal_maze_env"]

#: Goal index -> box colour. The west room's wall texture tells the agent which one is the goal.
GOAL_COLORS = ("blue", "red")
GOAL_WALL_TEXTURES = ("wood_planks", "slime")

TURN_LEFT, TURN_RIGHT, MOVE_FORWARD = 0, 1, 2
TURN_DEGREES = 45.0
FORWARD_STEP = 0.51
#: Reaching this distance to a box (centre to centre, on the floor plane) ends the episode.
REACH_DISTANCE = 2.0
#: Headings (``atan2`` of the direction vector) in this open interval face the west wall: the "informative look".
HINT_HEADING = (-1.7, -1.5)
IMAGE_SIZE = 64
MAX_AGENT_PLACEMENTS = 1000


class TwoGoalMazeEnv(MiniWorldEnv):
    """
    The single-task miniworld maze behind :class:`MTTwoGoalMazeEnv`; ``goal`` (0 = blue box, 1 = red box) is set from
    outside and takes effect at the next ``reset``.

    ## Description
    A brick main room ``x ∈ [-size_x, size_x]``, ``z ∈ [-size_y, size_y]`` is open on all four sides to 1-unit strip
    rooms: north (cardboard), south (lava), east (metal grill) and west, whose wall texture encodes the goal (wood
    planks for blue, slime for red). A blue and a red box are placed at random in the main room. The agent starts
    in the main room, facing one of the 8 headings ``k·π/4 - π``, at least 2 units from both boxes. Layout and start
    are drawn with ``self.np_random``.

    ## Action Space
    ``Discrete(3)``: 0 turns +45°, 1 turns -45°, 2 moves forward 0.51 (blocked by walls and boxes).

    ## Observation Space
    * ``obs_type="xy"`` (default): ``Box((4,), float32)`` ``[x / size_x · 2.1 - 1, z / size_y · 2.1 - 1, θ, hint]``,
      the reference's scaling, with ``θ = atan2(dir_x, dir_z)``. ``hint`` is 0 after ``reset``; after a step it is
      +1 (red) or -1 (blue) when ``θ ∈ (-1.7, -1.5)``, i.e. the agent faces the west wall, and 0 otherwise (always
      0 with ``empty_mu``). The bounds are the floor plan's. No camera image is rendered in this mode.
    * ``obs_type="image"``: the agent's ``64x64`` RGB camera view, ``uint8`` ``(64, 64, 3)``.

    ## Rewards
    +1 and ``terminated`` when the goal box is within 2 units, -1 and ``terminated`` when the other box is; the
    second check runs last, so -1 wins if both hold. 0 otherwise. ``info["success"]`` / ``info["is_success"]`` say
    whether the goal box was reached, ``info["total_reward"]`` is the episode's return so far.

    ## Version History
    * v0: port of mtenv's ``TwoGoalMazeEnv``. The reference's ``env_obs`` was ``{"obs", "total_reward"}``; here it
      is the observation alone and the running return moves to ``info``. The reference's image mode returned
      60x80 floats in [-1, 1] under a declared ``(64, 64)`` space; here the image is ``uint8`` and matches its space.
      The reference appended the agent to the entity list on every placement retry; here it is placed once.

    :param size_x: half-width of the main room (x)
    :param size_y: half-depth of the main room (z)
    :param obs_type: ``"xy"`` or ``"image"``
    :param empty_mu: hide the hint (the task is then not identifiable from observations)
    :param render_mode: ``None`` or ``"rgb_array"`` (a top-down view); there is no window in headless mode
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        size_x: float = 3,
        size_y: float = 3,
        obs_type: str = "xy",
        empty_mu: bool = False,
        render_mode: str | None = None,
    ):
        if obs_type not in ("xy", "image"):
            raise ValueError(f"obs_type must be 'xy' or 'image', got {obs_type!r}")
        if not (size_x > 0 and size_y > 0):
            raise ValueError(f"size_x and size_y must be > 0, got {size_x}, {size_y}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array' (miniworld runs headless), got {render_mode!r}")
        self.size_x, self.size_y = size_x, size_y
        self.obs_type = obs_type
        self.empty_mu = empty_mu
        self.goal = 0
        self.total_reward = 0.0
        # miniworld prints "Falling back to num_samples=..." for each frame buffer when the GL driver (EGL/Mesa here)
        # supports fewer MSAA samples than it asks for. That is expected and not actionable, so keep stdout clean.
        with contextlib.redirect_stdout(io.StringIO()):
            # the TimeLimit of the registered id ends episodes; the base class's own step limit is never used
            super().__init__(
                max_episode_steps=2**31 - 1,
                obs_width=IMAGE_SIZE,
                obs_height=IMAGE_SIZE,
                window_width=256,
                window_height=256,
                render_mode=render_mode,
                view="top",
            )
        self.action_space = spaces.Discrete(3)
        if obs_type == "xy":
            x_hi, z_hi = (size_x + 1) / size_x * 2.1 - 1, (size_y + 1) / size_y * 2.1 - 1
            x_lo, z_lo = -(size_x + 1) / size_x * 2.1 - 1, -(size_y + 1) / size_y * 2.1 - 1
            self.observation_space = spaces.Box(
                low=np.array([x_lo, z_lo, -math.pi, -1.0], dtype=np.float32),
                high=np.array([x_hi, z_hi, math.pi, 1.0], dtype=np.float32),
                dtype=np.float32,
            )
        else:
            self.observation_space = spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)

    # -- world ---------------------------------------------------------------------------------------------------------
    def _gen_world(self) -> None:
        sx, sy = self.size_x, self.size_y
        main = self.add_rect_room(min_x=-sx, max_x=sx, min_z=-sy, max_z=sy, wall_tex="brick_wall")
        north = self.add_rect_room(min_x=-sx, max_x=sx, min_z=sy, max_z=sy + 1, wall_tex="cardboard")
        south = self.add_rect_room(min_x=-sx, max_x=sx, min_z=-sy - 1, max_z=-sy, wall_tex="lava")
        west = self.add_rect_room(min_x=-sx - 1, max_x=-sx, min_z=-sy, max_z=sy, wall_tex=GOAL_WALL_TEXTURES[self.goal])
        east = self.add_rect_room(min_x=sx, max_x=sx + 1, min_z=-sy, max_z=sy, wall_tex="metal_grill")
        for room in (north, south):
            self.connect_rooms(main, room, min_x=-sx, max_x=sx)
        for room in (west, east):
            self.connect_rooms(main, room, min_z=-sy, max_z=sy)
        self.boxes = [Box(color=color) for color in GOAL_COLORS]
        for box in self.boxes:
            self.place_entity(box, room=main)
        heading = int(self.np_random.integers(8)) * (math.pi / 4) - math.pi
        for _ in range(MAX_AGENT_PLACEMENTS):
            self.place_agent(room=main, dir=heading)
            if min(self._box_distance(box) for box in self.boxes) >= REACH_DISTANCE:
                return
            self.entities.remove(self.agent)
        raise RuntimeError(f"Could not place the agent {REACH_DISTANCE} units away from both boxes: use a larger maze")

    def _box_distance(self, box: Box) -> float:
        return float(math.hypot(box.pos[0] - self.agent.pos[0], box.pos[2] - self.agent.pos[2]))

    # -- observations --------------------------------------------------------------------------------------------------
    def render_obs(self, frame_buffer: Any = None) -> np.ndarray | None:
        # The base class renders the agent camera on every reset and step. "xy" observations never use that image,
        # so skip it (renders into an explicit frame buffer, e.g. render(), still happen).
        if frame_buffer is None and self.obs_type == "xy":
            return None
        return super().render_obs(frame_buffer)

    def _heading(self) -> float:
        direction = self.agent.dir_vec
        return math.atan2(direction[0], direction[2])

    def _observation(self, hint: float) -> np.ndarray:
        if self.obs_type == "image":
            return super().render_obs()
        x = self.agent.pos[0] / self.size_x * 2.1 - 1.0
        z = self.agent.pos[2] / self.size_y * 2.1 - 1.0
        return np.array([x, z, self._heading(), hint], dtype=np.float32)

    # -- gymnasium API -------------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        self.total_reward = 0.0
        return self._observation(hint=0.0), {"total_reward": 0.0}

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"Invalid action {action!r}: expected 0 (turn left), 1 (turn right) or 2 (forward)")
        self.step_count += 1
        if action == MOVE_FORWARD:
            self.move_agent(FORWARD_STEP, 0.0)
        else:
            self.turn_agent(TURN_DEGREES if action == TURN_LEFT else -TURN_DEGREES)
        reward, terminated = 0.0, False
        if self._box_distance(self.boxes[self.goal]) < REACH_DISTANCE:
            reward, terminated = 1.0, True
        if self._box_distance(self.boxes[1 - self.goal]) < REACH_DISTANCE:
            reward, terminated = -1.0, True
        hint = 0.0
        if HINT_HEADING[0] < self._heading() < HINT_HEADING[1] and not self.empty_mu:
            hint = 1.0 if self.goal == 1 else -1.0
        self.total_reward += reward
        success = reward > 0
        info = {"success": float(success), "is_success": success, "total_reward": self.total_reward}
        return self._observation(hint), reward, terminated, False, info


class MTTwoGoalMazeEnv(EnvToMTEnv[int]):
    """
    :class:`TwoGoalMazeEnv` as a multi-task env: the task is the goal box, 0 (blue) or 1 (red).

    The task state and ``task_obs`` are the goal index and the task space is ``Discrete(2)`` (the reference declared
    ``Discrete(1)`` while emitting ``[g]``, README, "Differences from mtrl and mtenv"). With ``empty_mu`` the task observation
    is always 0.

    **Every reset draws a new goal** with the task RNG (the reference's behaviour: the agent has to read the goal from
    the west wall), unless ``options["task_state"]`` fixes it for that episode. With
    ``resample_task_on_reset=False`` a plain reset keeps the task instead, as for every other MTEnv, and
    ``initial_task_state`` is the task of every episode until changed.

    Seeding: the goal is part of the episode's initial state, so ``reset(seed=s)`` reseeds the task RNG with ``s``
    before drawing it, and equal seeds give equal episodes, goal included (what Gymnasium's ``check_env`` and SB3
    expect). A plain ``reset()`` continues the stream. Once ``seed_task`` has been called, the task RNG belongs to
    the caller and seeded resets leave it alone (the decoupled streams of :class:`~mtgym.core.MTEnv`). ``task_seed``
    seeds it at construction, so an env that is never seeded draws the reference's goal sequence.

    :param env: the miniworld maze
    :param task_seed: the initial seed of the task RNG
    :param initial_task_state: the goal before the first reset
    :param resample_task_on_reset: draw a goal at every reset (reference behaviour)
    """

    def __init__(
        self,
        env: TwoGoalMazeEnv,
        task_seed: int | None = None,
        initial_task_state: int = 0,
        resample_task_on_reset: bool = True,
    ):
        super().__init__(env, spaces.Discrete(len(GOAL_COLORS)))
        self.task_names = [f"goal_{color}" for color in GOAL_COLORS]
        self.resample_task_on_reset = resample_task_on_reset
        self.set_task_state(initial_task_state)
        self._task_seed_by_user = False
        MTEnv.seed_task(self, task_seed)

    def seed_task(self, seed: int | None = None) -> list[int]:
        """
        Seed the task RNG; seeded resets no longer reseed it afterwards.

        :param seed: the task seed; ``None`` draws one from OS entropy
        :return: ``[seed used]``
        """
        self._task_seed_by_user = True
        return super().seed_task(seed)

    @property
    def n_tasks(self) -> int:
        """Number of tasks (goal boxes)."""
        return len(self.task_names)

    def get_task_obs(self) -> int:
        return 0 if self.env.empty_mu else self.env.goal

    def get_task_state(self) -> int:
        return self.env.goal

    def set_task_state(self, task_state: int) -> None:
        """
        Set the goal; the west wall changes at the next ``reset``.

        :param task_state: 0 (blue box) or 1 (red box)
        :raises ValueError: for any other value
        """
        self.env.goal = check_task_index(task_state, self.n_tasks)

    def sample_task_state(self) -> int:
        return int(self.np_random_task.integers(self.n_tasks))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        if seed is not None and not self._task_seed_by_user:
            # MTEnv.seed_task directly: this is not the caller taking over the stream. It also marks the task RNG as
            # seeded, so MTEnv.reset does not reseed it after the draw below.
            MTEnv.seed_task(self, seed)
        if self.resample_task_on_reset and not (options and "task_state" in options):
            self.reset_task_state()
        return super().reset(seed=seed, options=options)


def build_two_goal_maze_env(
    size_x: float = 3,
    size_y: float = 3,
    task_seed: int | None = 169,
    obs_type: str = "xy",
    empty_mu: bool = False,
    initial_task_state: int = 0,
    resample_task_on_reset: bool = True,
    render_mode: str | None = None,
) -> MTTwoGoalMazeEnv:
    """
    The entry point of ``MT-TwoGoalMaze-v0`` (registered with ``size_x=3, size_y=3, task_seed=169`` and a 200-step
    ``TimeLimit``, which the reference declared but never enforced). The reference's unused ``n_tasks`` is dropped.

    Example::

        >>> import gymnasium as gym
        >>> import mtgym
        >>> env = gym.make("MT-TwoGoalMaze-v0")
        >>> obs, info = env.reset(seed=0)
        >>> obs["env_obs"].shape, env.observation_space["task_obs"]
        ((4,), Discrete(2))

    :param size_x: half-width of the main room
    :param size_y: half-depth of the main room
    :param task_seed: the initial seed of the task RNG (see :class:`MTTwoGoalMazeEnv`)
    :param obs_type: ``"xy"`` (4-D vector, no rendering) or ``"image"`` (64x64 RGB camera)
    :param empty_mu: hide the goal from ``task_obs`` and the hint
    :param initial_task_state: the goal before the first reset (accepted for one-task-per-sub-env vectorisation)
    :param resample_task_on_reset: draw a new goal at every reset (reference behaviour)
    :param render_mode: ``None`` or ``"rgb_array"``
    """
    maze = TwoGoalMazeEnv(size_x=size_x, size_y=size_y, obs_type=obs_type, empty_mu=empty_mu, render_mode=render_mode)
    return MTTwoGoalMazeEnv(
        maze, task_seed=task_seed, initial_task_state=initial_task_state, resample_task_on_reset=resample_task_on_reset
    )
