"""``DMCEnv``: one dm_control suite task, built from a (possibly edited) model XML, as a single-task Gymnasium env."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mtgym.envs.hipbmdp.variants import XMLVariant, import_dm_control


def _finger_spin(module: Any, random: np.random.RandomState) -> Any:
    return module.Spin(random=random)


def _cheetah_run(module: Any, random: np.random.RandomState) -> Any:
    return module.Cheetah(random=random)


def _walker_walk(module: Any, random: np.random.RandomState) -> Any:
    return module.PlanarWalker(move_speed=module._WALK_SPEED, random=random)


#: The suite's own Task classes, constructed the way ``dm_control.suite.<domain>.<task>()`` does.
_TASK_FACTORIES: dict[tuple[str, str], Callable[[Any, np.random.RandomState], Any]] = {
    ("finger", "spin"): _finger_spin,
    ("cheetah", "run"): _cheetah_run,
    ("walker", "walk"): _walker_walk,
}


class DMCEnv(gym.Env[np.ndarray, np.ndarray]):
    """
    A dm_control suite task whose model is one XML variant, following dmc2gym (the base of mtenv's ``DMCWrapper``).

    ## Description

    The model is compiled from ``variant.model_xml(index)``; the physics and task classes are the suite's own
    (``dm_control.suite.<domain>.Physics`` and e.g. ``finger.Spin``), so dynamics, reward and the dm_control episode
    length (1000 control steps for finger-spin, cheetah-run and walker-walk) are the suite's. The env runs the
    steps of ``dm_control.rl.control.Environment`` itself, so that the suite observation is computed once per env
    step instead of once per repeated control step (and never for pixels); trajectories equal ``suite.load``'s.

    ## Action Space

    ``Box(-1, 1, (n_actuators,), float32)``. Actions are mapped linearly to the suite's action bounds and clipped.
    For finger, cheetah and walker the map is the identity and MuJoCo clamps each control to its ``ctrlrange``.

    ## Observation Space

    * ``from_pixels=True``: ``Box(0, 255, (3, height, width), uint8)``, ``physics.render(height, width, camera_id)``
      channels-first.
    * ``from_pixels=False``: ``Box(-inf, inf, (n,), float32)``, the suite's observation dict flattened in its order.

    ## Rewards

    The suite reward, summed over the ``frame_skip`` control steps of one env step (the action is repeated).

    ## Episode End

    The dm_control episode ends after its time limit; this is a truncation (``discount`` stays 1). A step that ends
    with ``discount == 0`` would be a termination, which these tasks never produce.

    ``info`` holds ``"internal_state"`` (the physics state before the step) and ``"discount"``, as in the reference.

    ## Version History

    * v0: Gymnasium port of mtenv's ``DMCWrapper``; seeded through ``reset(seed=...)``.

    :param variant: the task family (which XML element varies)
    :param index: task index; XML variant ``index + 1`` is used
    :param from_pixels: observe rendered pixels instead of the state
    :param height: pixel height
    :param width: pixel width
    :param camera_id: camera used for pixel observations and ``render()``
    :param frame_skip: control steps per env step (the action is repeated and the rewards summed)
    :param seed: seeds the task RNG (initial states) until ``reset(seed=...)`` reseeds it; ``None`` uses OS entropy
    :param render_mode: ``None`` or ``"rgb_array"`` (an ``(height, width, 3)`` frame)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(
        self,
        variant: XMLVariant,
        index: int,
        from_pixels: bool = True,
        height: int = 84,
        width: int = 84,
        camera_id: int = 0,
        frame_skip: int = 2,
        seed: int | None = None,
        render_mode: str | None = None,
    ):
        control = import_dm_control("rl.control")

        if frame_skip < 1:
            raise ValueError(f"frame_skip must be a positive integer, got {frame_skip}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"Unsupported render_mode {render_mode!r}: expected None or 'rgb_array'")
        module = variant.suite_module
        xml, assets = variant.model_xml(index)
        self._physics = physics = module.Physics.from_xml_string(xml, assets)
        physics.legacy_step = True  # as dm_control.rl.control.Environment sets it
        # Keep our own RandomState handle: the task draws initial states from it, and reset(seed=) reseeds it in place.
        self._task_random = np.random.RandomState(seed)
        self._task = _TASK_FACTORIES[(variant.domain, variant.task)](module, self._task_random)
        control_timestep = getattr(module, "_CONTROL_TIMESTEP", None)  # cheetah has none: one physics step
        self._n_sub_steps = 1 if control_timestep is None else control.compute_n_steps(control_timestep, physics.timestep())
        self.control_timestep = physics.timestep() * self._n_sub_steps
        #: dm_control episode length in control steps (``time_limit / control_timestep``): 1000 for all three domains
        self.dmc_episode_steps = round(module._DEFAULT_TIME_LIMIT / self.control_timestep)
        self._elapsed_control_steps = 0
        self.variant = variant
        self.index = index
        self.from_pixels = from_pixels
        self.height, self.width, self.camera_id = height, width, camera_id
        self.frame_skip = frame_skip
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / (self.control_timestep * frame_skip))}

        spec = self._task.action_spec(physics)
        self._action_low = spec.minimum.astype(np.float64)
        self._action_scale = (spec.maximum - spec.minimum).astype(np.float64) / 2.0
        # When the suite's bounds already are [-1, 1] (finger, cheetah, walker) and every actuator is ctrllimited,
        # MuJoCo clamps the control itself, so the mapping and the clip are skipped: they would cost ~10% of a step.
        self._passthrough_actions = bool(
            np.all(spec.minimum == -1.0) and np.all(spec.maximum == 1.0) and np.all(physics.model.actuator_ctrllimited)
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=spec.shape, dtype=np.float32)
        if from_pixels:
            self.observation_space = spaces.Box(0, 255, shape=(3, height, width), dtype=np.uint8)
        else:
            # Each observation entry's slice in the flat vector, in the suite's (ordered) dict order.
            shapes = [np.shape(value) for value in self._task.get_observation(physics).values()]
            sizes = [int(np.prod(shape)) for shape in shapes]
            ends = np.cumsum(sizes).tolist()
            self._obs_slices = [slice(end - size, end) for size, end in zip(sizes, ends, strict=True)]
            self._obs_ravel = any(len(shape) > 1 for shape in shapes)
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(sum(sizes),), dtype=np.float32)

    @property
    def physics(self) -> Any:
        """The dm_control ``Physics`` of this task (``physics.model`` holds the varied parameter)."""
        return self._physics

    @property
    def task(self) -> Any:
        """The dm_control suite ``Task`` (e.g. ``dm_control.suite.finger.Spin``)."""
        return self._task

    def _get_obs(self) -> np.ndarray:
        if self.from_pixels:
            return self._render_frame().transpose(2, 0, 1).copy()
        # Slice assignment into one float32 buffer: about half the cost of np.concatenate on these small dicts.
        obs = np.empty(self.observation_space.shape, dtype=np.float32)
        values = self._task.get_observation(self._physics).values()
        if self._obs_ravel:
            values = [np.ravel(value) for value in values]
        for where, value in zip(self._obs_slices, values, strict=True):
            obs[where] = value
        return obs

    def _render_frame(self) -> np.ndarray:
        return self._physics.render(height=self.height, width=self.width, camera_id=self.camera_id)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._task_random.seed(seed)
        self._elapsed_control_steps = 0
        # dm_control.rl.control.Environment.reset
        with self._physics.reset_context():
            self._task.initialize_episode(self._physics)
        return self._get_obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self._passthrough_actions:
            action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
            action = self._action_low + (action + 1.0) * self._action_scale
        physics, task = self._physics, self._task
        info: dict[str, Any] = {"internal_state": physics.get_state()}  # a new array, not a view
        reward = 0.0
        discount = None
        # dm_control.rl.control.Environment.step, repeated frame_skip times. The suite's observation is computed once,
        # after the last repeat, rather than after every control step: the state is identical, and it saves ~10%.
        for _ in range(self.frame_skip):
            task.before_step(action, physics)
            physics.step(self._n_sub_steps)
            task.after_step(physics)
            reward += task.get_reward(physics)
            self._elapsed_control_steps += 1
            discount = task.get_termination(physics)
            if discount is None and self._elapsed_control_steps >= self.dmc_episode_steps:
                discount = 1.0  # dm_control's time limit: the episode ends without termination
            if discount is not None:
                break
        terminated = discount is not None and discount == 0.0
        truncated = discount is not None and not terminated
        info["discount"] = 1.0 if discount is None else float(discount)
        return self._get_obs(), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self._render_frame()
        return None

    def close(self) -> None:
        self._physics.free()
