"""The four HiP-BMDP multi-task families (mtenv/envs/hipbmdp/env.py): ten dm_control XML variants each, one lazily built env
per task."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from mtgym.core import MTObs
from mtgym.envs.hipbmdp.dmc_env import DMCEnv
from mtgym.envs.hipbmdp.variants import (
    CHEETAH_TORSO_LENGTH,
    FINGER_SIZE,
    TASK_SPLITS,
    WALKER_FRICTION,
    WALKER_LEN,
    XMLVariant,
)
from mtgym.versions import check_simulators
from mtgym.wrappers.frame_stack import FrameStack
from mtgym.wrappers.multi_env import MultiEnvWrapper
from mtgym.wrappers.sticky_observation import StickyObservation

#: mtrl's ``sticky_observation_cfg`` defaults for these envs (mtenv/envs/hipbmdp/env.py); ``should_use`` is off by default.
STICKY_OBSERVATION_DEFAULTS: dict[str, Any] = {"should_use": False, "sticky_probability": 0.1, "last_k": 1}


def _sticky_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(STICKY_OBSERVATION_DEFAULTS)
    if unknown:
        valid = sorted(STICKY_OBSERVATION_DEFAULTS)
        raise ValueError(f"Unknown sticky_observation_cfg keys {sorted(unknown)}: expected a subset of {valid}")
    return {**STICKY_OBSERVATION_DEFAULTS, **cfg}


def select_variants(variant: XMLVariant, xml_file_ids: Sequence[str] | None) -> list[int]:
    """
    The reference's ``build(xml_file_ids=...)`` (mtenv/envs/hipbmdp/env.py): task ``i`` runs XML variant ``xml_file_ids[i]``.

    :param variant: the family
    :param xml_file_ids: a subset of ``variant.task_names`` in any order, or ``None`` for all ten in order
    :return: the variant index (``0`` for ``"{name}_1"``) of each task
    :raises ValueError: for an empty list, an unknown id or a repeated one
    """
    names = variant.task_names
    if xml_file_ids is None:
        return list(range(len(names)))
    ids = [xml_file_ids] if isinstance(xml_file_ids, str) else list(xml_file_ids)
    unknown = [i for i in ids if i not in names]
    if not ids or unknown or len(set(ids)) != len(ids):
        raise ValueError(
            f"xml_file_ids must be distinct ids of {names} (at least one), got {ids}"
            + (f"; unknown: {unknown}" if unknown else "")
        )
    return [names.index(i) for i in ids]


def make_task_env(
    variant: XMLVariant,
    index: int,
    from_pixels: bool,
    height: int,
    width: int,
    camera_id: int,
    frame_skip: int,
    frame_stack: int,
    sticky_observation_cfg: Mapping[str, Any],
    seed: int | None,
    render_mode: str | None,
) -> gym.Env:
    """
    One task of a family, composed as in the reference's ``build_dmc_env``:
    ``DMCEnv -> FrameStack (pixels only) -> StickyObservation (if enabled) -> TimeLimit``.

    The time limit is ``ceil(1000 / frame_skip)`` env steps (the dm_control episode of 1000 control steps), so it
    truncates exactly where dm_control's own episode ends.
    """
    env: gym.Env = DMCEnv(variant, index, from_pixels, height, width, camera_id, frame_skip, seed, render_mode)
    if from_pixels and frame_stack > 1:
        env = FrameStack(env, frame_stack)
    if sticky_observation_cfg["should_use"]:
        env = StickyObservation(env, sticky_observation_cfg["sticky_probability"], sticky_observation_cfg["last_k"])
    return TimeLimit(env, max_episode_steps=math.ceil(env.unwrapped.dmc_episode_steps / frame_skip))


class HiPBMDPEnv(MultiEnvWrapper):
    """
    Base class of the HiP-BMDP families: ten tasks, task ``i`` is the dm_control task on XML variant ``i + 1``.

    Subclasses set :attr:`variant`. See :class:`FingerSpinVarySizeEnv` for the full description.

    :param from_pixels: observe ``frame_stack`` stacked RGB frames instead of the flattened state
    :param height: pixel height
    :param width: pixel width
    :param camera_id: camera of the pixel observations and of ``render()``
    :param frame_skip: control steps per env step ("action repeat"; rewards are summed)
    :param frame_stack: number of stacked frames (pixels only)
    :param sticky_observation_cfg: ``{"should_use", "sticky_probability", "last_k"}``; missing keys take mtrl's
        defaults ``(False, 0.1, 1)``
    :param seed: the reference's ``build(seed=...)``: if given, the first ``reset()`` without a seed is
        ``reset(seed=seed)``, which seeds every task env, the sticky observations and the task RNG. The usual
        Gymnasium way, ``reset(seed=...)``, takes precedence
    :param initial_task_state: the task active (and built) at construction; 1 as in the reference's ``build``
    :param render_mode: ``None`` or ``"rgb_array"``
    :param xml_file_ids: the XML variants to run, as the reference's ids (``["size_4", "size_5"]``), in task-index order;
        ``None`` runs all ten in order (:func:`select_variants`). ``task_splits`` then names positions in this list
    :param visualize_reward: must be ``False``: the reference's option colours the bodies by reward, which makes
        dm_control's pixel rendering fail (mtenv's ``DMCWrapper`` asserts it is off for pixel observations)
    """

    variant: ClassVar[XMLVariant]
    # fork_safe: a worker forked after the parent rendered hangs in EGL (see mtgym.vector.async_start_method)
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 25, "fork_safe": False}

    def __init__(
        self,
        from_pixels: bool = True,
        height: int = 84,
        width: int = 84,
        camera_id: int = 0,
        frame_skip: int = 2,
        frame_stack: int = 3,
        sticky_observation_cfg: Mapping[str, Any] | None = None,
        seed: int | None = None,
        initial_task_state: int = 1,
        render_mode: str | None = None,
        xml_file_ids: Sequence[str] | None = None,
        visualize_reward: bool = False,
    ):
        if visualize_reward:
            raise ValueError(
                "visualize_reward=True is not supported: it colours the bodies by reward, which breaks dm_control's pixel "
                "rendering (mtenv's DMCWrapper asserts it is off for pixel observations); use visualize_reward=False"
            )
        self.variant_indices = select_variants(self.variant, xml_file_ids)
        check_simulators("dmc")  # before dm_control is first imported (lazily, by the task envs)
        if not isinstance(frame_skip, int) or frame_skip < 1:
            raise ValueError(f"frame_skip must be a positive integer, got {frame_skip!r}")
        if not isinstance(frame_stack, int) or frame_stack < 1:
            raise ValueError(f"frame_stack must be a positive integer, got {frame_stack!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"Unsupported render_mode {render_mode!r}: expected None or 'rgb_array'")
        sticky = _sticky_config(sticky_observation_cfg)
        env_fns = [
            functools.partial(
                make_task_env,
                self.variant,
                i,
                from_pixels,
                height,
                width,
                camera_id,
                frame_skip,
                frame_stack,
                sticky,
                None,  # seeded by reset(seed=...) through MultiEnvWrapper
                render_mode,
            )
            for i in self.variant_indices
        ]
        self.from_pixels = from_pixels
        self.frame_skip = frame_skip
        self._initial_seed = seed
        task_names = [self.variant.task_names[i] for i in self.variant_indices]
        super().__init__(env_fns, task_names, initial_task_state, render_mode)
        dmc_env = self.active_env.unwrapped
        #: episode length in env steps: dm_control's episode, ``ceil(1000 / frame_skip)``
        self.max_episode_steps = math.ceil(dmc_env.dmc_episode_steps / frame_skip)
        self.metadata = {**self.metadata, "render_fps": dmc_env.metadata["render_fps"]}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        if seed is None and self._initial_seed is not None:
            seed = self._initial_seed
        self._initial_seed = None
        return super().reset(seed=seed, options=options)

    @property
    def task_splits(self) -> dict[str, list[int]]:
        """
        Task indices of the ``"train"``, ``"interpolation"`` and ``"extrapolation"`` splits (mtrl's Finger split,
        applied to every family by the same rule: the two middle values are interpolation, the two outer ones
        extrapolation; tasks 0 and 1 are in no split).
        """
        # the split of each variant, at its position in xml_file_ids (all ten by default: the positions are the variants)
        position = {variant: i for i, variant in enumerate(self.variant_indices)}
        return {name: [position[v] for v in indices if v in position] for name, indices in TASK_SPLITS.items()}

    @property
    def task_parameters(self) -> list[float]:
        """The varied physical value of each task (mtenv/envs/hipbmdp/env.py), in task order."""
        return [self.variant.values[i] for i in self.variant_indices]

    @property
    def physics(self) -> Any:
        """The dm_control ``Physics`` of the active task (built if needed)."""
        return self.active_env.unwrapped.physics

    def read_task_parameter(self) -> float:
        """:return: the varied value of the active task as compiled by MuJoCo (read back from ``physics.model``)."""
        return self.variant.read(self.physics)


_COMMON_DOC = """
    ## Action Space

    ``Box(-1, 1, (n_actuators,), float32)``, mapped linearly to the suite's actuator range.

    ## Observation Space

    ``Dict(env_obs=..., task_obs=Discrete(10))``, where ``task_obs`` is the task index.

    * Pixels (default): ``env_obs`` is ``Box(0, 255, (3 * frame_stack, height, width), uint8)``: ``frame_stack``
      RGB frames from camera 0, channels first, oldest first; ``(9, 84, 84)`` by default. The reference declared the
      bounds ``[0, 1]`` with a ``uint8`` dtype (README, "Differences from mtrl and mtenv"); we declare the true ``[0, 255]``.
    * ``from_pixels=False``: ``env_obs`` is the suite's observation dict flattened to ``float32``.

    ## Rewards

    The dm_control suite reward of the task, summed over the ``frame_skip`` (default 2) repeated control steps.

    ## Starting State

    The suite's random initial state, drawn from the task's RNG; ``reset(seed=s)`` seeds each task env with a seed
    derived from ``(s, task index)``. A plain ``reset()`` keeps the current task.

    ## Episode End

    Truncation after ``ceil(1000 / frame_skip)`` steps (500 by default), where dm_control's 1000-control-step
    episode ends. There is no termination.

    ## Arguments

    See :class:`HiPBMDPEnv`. ``sticky_observation_cfg={"should_use": True, "sticky_probability": p, "last_k": k}``
    applies :class:`~mtgym.wrappers.sticky_observation.StickyObservation` after frame stacking. Rendering is headless:
    ``MUJOCO_GL`` defaults to ``egl`` when no display is present.

    ## Splits

    ``env.unwrapped.task_splits`` is ``{"train": [3, 4, 7, 8], "interpolation": [5, 6], "extrapolation": [2, 9]}``.
    """

_HISTORY_DOC = """
    ## Version History

    * v0: Gymnasium port of mtenv's ``hipbmdp`` build; XML variants generated at run time from the installed
      dm_control; pixel bounds fixed; working sticky observations; Gymnasium seeding.
    """


class FingerSpinVarySizeEnv(HiPBMDPEnv):
    __doc__ = (
        """
    Finger-Spin with ten finger touch-sensor sizes (``MT-HiPBMDP-Finger-Spin-vary-size-v0``).

    ## Description

    dm_control ``finger``/``spin``. Task ``i`` (XML ``size_{i+1}``) sets the x radius of the ellipsoid sites of the
    ``finger`` default class (the ``touchtop``/``touchbottom`` touch-sensor sites) to ``0.025 * (i + 1)``, i.e.
    0.025 ... 0.25 (task 0 is the stock model). The sites change what the touch sensors report.
    The split is mtrl's ``dmcontrol-finger-spin-distribution-v0``: train radii 0.100, 0.125, 0.200, 0.225;
    interpolation 0.150, 0.175; extrapolation 0.075, 0.250.
    """
        + _COMMON_DOC
        + _HISTORY_DOC
    )
    variant = FINGER_SIZE


class CheetahRunVaryTorsoLengthEnv(HiPBMDPEnv):
    __doc__ = (
        """
    Cheetah-Run with ten torso lengths (``MT-HiPBMDP-Cheetah-Run-vary-torso-length-v0``).

    ## Description

    dm_control ``cheetah``/``run``. Task ``i`` (XML ``torso_length_{i+1}``) sets the torso capsule to
    ``fromto="-L 0 0 L 0 0"`` with ``L = 0.5 + 0.1 * i``, i.e. 0.5 ... 1.4 (task 0 is the stock model). The legs stay
    attached at x = +-0.5 and the total mass stays 14 (``settotalmass``), so a longer torso shifts mass to the torso.
    Splits by the Finger rule: train L = 0.8, 0.9, 1.2, 1.3; interpolation 1.0, 1.1; extrapolation 0.7, 1.4.
    """
        + _COMMON_DOC
        + _HISTORY_DOC
    )
    variant = CHEETAH_TORSO_LENGTH


class WalkerWalkVaryFrictionEnv(HiPBMDPEnv):
    __doc__ = (
        """
    Walker-Walk with ten friction coefficients (``MT-HiPBMDP-Walker-Walk-vary-friction-v0``).

    ## Description

    dm_control ``walker``/``walk``. Task ``i`` (XML ``friction_{i+1}``) sets the sliding friction of the default
    geom, which every walker geom and the floor inherit, to ``0.7 + 0.1 * i``, i.e. 0.7 ... 1.6 (task 0 is the
    stock model). Splits by the Finger rule: train 1.0, 1.1, 1.4, 1.5; interpolation 1.2, 1.3; extrapolation 0.9, 1.6.
    """
        + _COMMON_DOC
        + _HISTORY_DOC
    )
    variant = WALKER_FRICTION


class WalkerWalkVaryLenEnv(HiPBMDPEnv):
    __doc__ = (
        """
    Walker-Walk with ten left-foot lengths (``MT-HiPBMDP-Walker-Walk-vary-len-v0``).

    ## Description

    dm_control ``walker``/``walk``. Task ``i`` (XML ``len_{i+1}``) sets the half-length of the **left** foot capsule
    only to ``0.08 + 0.01 * i``, i.e. 0.08 ... 0.17; the stock 0.10 is task 2. Splits by the Finger rule: train
    0.11, 0.12, 0.15, 0.16; interpolation 0.13, 0.14; extrapolation 0.10, 0.17.
    """
        + _COMMON_DOC
        + _HISTORY_DOC
    )
    variant = WALKER_LEN
