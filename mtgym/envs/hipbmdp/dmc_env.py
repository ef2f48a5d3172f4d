"""``DMCEnv``: one dm_control suite task, built from a (possibly edited) model XML, as a single-task Gymnasium env."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mtgym.envs.hipbmdp.variants import XMLVariant


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
    length (1000 control steps for finger-spin, cheetah-run and walker-walk) are the suite's.

    ## Action Space

    ``Box(-1, 1, (n_actuators,), float32)``. Actions are mapped linearly to the suite's action bounds (the identity
    for these three domains) and clipped.

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
        from dm_control.rl import control

        if frame_skip < 1:
            raise ValueError(f"frame_skip must be a positive integer, got {frame_skip}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"Unsupported render_mode {render_mode!r}: expected None or 'rgb_array'")
        module = variant.suite_module
        xml, assets = variant.model_xml(index)
        physics = module.Physics.from_xml_string(xml, assets)
        # Keep our own RandomState handle: the task draws initial states from it, and reset(seed=) reseeds it in place.
        self._task_random = np.random.RandomState(seed)
        task = _TASK_FACTORIES[(variant.domain, variant.task)](module, self._task_random)
        self._dmc = control.Environment(
            physics,
            task,
            time_limit=module._DEFAULT_TIME_LIMIT,
            control_timestep=getattr(module, "_CONTROL_TIMESTEP", None),
        )
        self.variant = variant
        self.index = index
        self.from_pixels = from_pixels
        self.height, self.width, self.camera_id = height, width, camera_id
        self.frame_skip = frame_skip
        self.render_mode = render_mode
        #: dm_control episode length in control steps (``time_limit / control_timestep``)
        self.dmc_episode_steps = round(module._DEFAULT_TIME_LIMIT / self._dmc.control_timestep())
        self.metadata = {**self.metadata, "render_fps": round(1.0 / (self._dmc.control_timestep() * frame_skip))}

        spec = self._dmc.action_spec()
        self._action_low = spec.minimum.astype(np.float64)
        self._action_scale = (spec.maximum - spec.minimum).astype(np.float64) / 2.0
        self.action_space = spaces.Box(-1.0, 1.0, shape=spec.shape, dtype=np.float32)
        if from_pixels:
            self.observation_space = spaces.Box(0, 255, shape=(3, height, width), dtype=np.uint8)
        else:
            dim = sum(int(np.prod(s.shape)) for s in self._dmc.observation_spec().values())
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32)

    @property
    def physics(self) -> Any:
        """The dm_control ``Physics`` of this task (``physics.model`` holds the varied parameter)."""
        return self._dmc.physics

    @property
    def dmc_env(self) -> Any:
        """The wrapped ``dm_control.rl.control.Environment``."""
        return self._dmc

    def _get_obs(self, time_step: Any) -> np.ndarray:
        if self.from_pixels:
            return self._render_frame().transpose(2, 0, 1).copy()
        return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in time_step.observation.values()])

    def _render_frame(self) -> np.ndarray:
        return self._dmc.physics.render(height=self.height, width=self.width, camera_id=self.camera_id)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._task_random.seed(seed)
        time_step = self._dmc.reset()
        return self._get_obs(time_step), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        action = self._action_low + (action + 1.0) * self._action_scale
        info: dict[str, Any] = {"internal_state": self._dmc.physics.get_state().copy()}
        reward = 0.0
        for _ in range(self.frame_skip):
            time_step = self._dmc.step(action)
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        terminated = bool(time_step.last() and time_step.discount == 0.0)
        truncated = bool(time_step.last() and not terminated)
        info["discount"] = time_step.discount
        return self._get_obs(time_step), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self._render_frame()
        return None

    def close(self) -> None:
        self._dmc.close()
