"""
The state of a training run that a model checkpoint does not hold: the sub-envs' RNGs and counters, the callbacks'
histories, and a compact copy of the replay buffer. :mod:`mtsb3.common.resume` writes them into run checkpoints.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

#: the largest array (elements) or list kept as env state; bigger ones are observations or assets, not counters
MAX_STATE_SIZE = 4096
_SCALARS = (bool, int, float, str, type(None), np.generic)
#: the history of SB3's ``EvalCallback`` (``MultiTaskEvalCallback`` adds its own, see ``checkpoint_attrs``)
EVAL_CALLBACK_ATTRS = (
    "evaluations_timesteps",
    "evaluations_results",
    "evaluations_length",
    "evaluations_successes",
    "best_mean_reward",
    "last_mean_reward",
)


def _is_small_state(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype != object and value.size <= MAX_STATE_SIZE
    if isinstance(value, (list, tuple)):
        return len(value) <= MAX_STATE_SIZE and all(isinstance(v, _SCALARS) for v in value)
    return False


def _walk_envs(env: gym.Env, path: str = "env") -> Iterator[tuple[str, gym.Env]]:
    """Yield ``(path, env)`` for ``env``, the envs it wraps and the envs it holds (lists and dicts of task envs)."""
    yield path, env
    for name, value in vars(env).items():
        if isinstance(value, gym.Env):
            yield from _walk_envs(value, f"{path}.{name}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, gym.Env):
                    yield from _walk_envs(item, f"{path}.{name}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, gym.Env):
                    yield from _walk_envs(item, f"{path}.{name}[{key!r}]")


def _object_state(obj: Any) -> dict[str, Any]:
    """:return: the RNG states and the small scalar/array attributes of ``obj``"""
    state: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.random.Generator):
            state[name] = ("generator", copy.deepcopy(value.bit_generator.state))
        elif isinstance(value, np.random.RandomState):
            state[name] = ("random_state", value.get_state())
        elif _is_small_state(value):
            state[name] = ("value", copy.deepcopy(value))
    return state


def _set_object_state(obj: Any, state: dict[str, Any]) -> None:
    for name, (kind, value) in state.items():
        current = getattr(obj, name, None)
        if kind == "generator":
            # in place: the wrappers of an env may share its generator
            if not isinstance(current, np.random.Generator):
                current = np.random.Generator(getattr(np.random, value["bit_generator"])())
                setattr(obj, name, current)
            current.bit_generator.state = value
        elif kind == "random_state":
            if not isinstance(current, np.random.RandomState):
                current = np.random.RandomState()
                setattr(obj, name, current)
            current.set_state(value)
        elif current is None or _is_small_state(current):  # never replace a live object by a saved None
            setattr(obj, name, copy.deepcopy(value))


def local_sub_envs(venv: VecEnv) -> list[gym.Env] | None:
    """:return: the sub-envs of ``venv`` when they live in this process (``DummyVecEnv``), else ``None``"""
    base = venv.unwrapped
    return list(base.envs) if isinstance(base, DummyVecEnv) else None


def get_env_state(venv: VecEnv) -> dict[str, Any] | None:
    """
    The state of a VecEnv that survives a reset: for every env object of every sub-env (wrappers, task envs), its RNG
    states (the dynamics RNG ``np_random`` and the task RNG ``np_random_task``) and its small counters and statistics
    (e.g. the running reward std of Meta-World's mtrl protocol); and ``VecNormalize`` statistics. Physics and
    observations are not saved: the sub-envs are reset from these RNGs when the run resumes
    (:func:`set_env_state`).

    :param venv: the env; its sub-envs must live in this process (``DummyVecEnv``)
    :return: the state, or ``None`` for sub-envs in other processes (``SubprocVecEnv``)
    """
    envs = local_sub_envs(venv)
    if envs is None:
        return None
    state: dict[str, Any] = {"sub_envs": [{path: _object_state(obj) for path, obj in _walk_envs(env)} for env in envs]}
    normalize = _find_vec_normalize(venv)
    if normalize is not None:
        state["vec_normalize"] = copy.deepcopy(
            {"obs_rms": normalize.obs_rms, "ret_rms": normalize.ret_rms, "returns": normalize.returns}
        )
    return state


def set_env_state(venv: VecEnv, state: dict[str, Any]) -> list[str]:
    """
    Restore a state of :func:`get_env_state` into a VecEnv built like the saved one (same id, kwargs and number of
    sub-envs). Reset ``venv`` once before (to use up its seeds), and again after (to start episodes from the restored
    RNGs).

    :param venv: the env
    :param state: the saved state
    :return: the paths of saved env objects that ``venv`` lacks (their state could not be restored)
    :raises ValueError: if ``venv`` has another number of sub-envs, or they live in other processes
    """
    envs = local_sub_envs(venv)
    if envs is None:
        raise ValueError("Cannot restore the env state: the sub-envs live in other processes (use DummyVecEnv)")
    if len(envs) != len(state["sub_envs"]):
        raise ValueError(f"The env has {len(envs)} sub-envs, the checkpoint {len(state['sub_envs'])}")
    missing = []
    for i, (env, saved) in enumerate(zip(envs, state["sub_envs"], strict=True)):
        live = dict(_walk_envs(env))
        for path, obj_state in saved.items():
            if path in live:
                _set_object_state(live[path], obj_state)
            else:
                missing.append(f"sub-env {i}: {path}")
    normalize = _find_vec_normalize(venv)
    if normalize is not None and "vec_normalize" in state:
        for name, value in state["vec_normalize"].items():
            setattr(normalize, name, copy.deepcopy(value))
    return missing


def _find_vec_normalize(venv: VecEnv) -> VecNormalize | None:
    while not isinstance(venv, VecNormalize):
        if not hasattr(venv, "venv"):
            return None
        venv = venv.venv
    return venv


def pack_buffer(buffer: ReplayBuffer) -> ReplayBuffer:
    """
    A shallow copy of ``buffer`` whose storage arrays keep only the filled rows: SB3 pickles the whole capacity, most of
    which is empty early in a run. :func:`unpack_buffer` undoes it.

    :param buffer: an SB3 replay buffer (arrays of ``buffer_size`` rows, or dicts of them)
    :return: the copy to pickle
    """
    packed = copy.copy(buffer)
    rows = buffer.buffer_size if buffer.full else buffer.pos
    truncated = []

    def is_storage(value: Any) -> bool:
        return isinstance(value, np.ndarray) and value.ndim > 0 and value.shape[0] == buffer.buffer_size

    for name, value in vars(buffer).items():
        if is_storage(value):
            setattr(packed, name, value[:rows].copy())
            truncated.append(name)
        elif isinstance(value, dict) and value and all(is_storage(v) for v in value.values()):
            setattr(packed, name, {k: v[:rows].copy() for k, v in value.items()})
            truncated.append(name)
    packed._mtsb3_packed = truncated  # type: ignore[attr-defined]
    return packed


def unpack_buffer(packed: ReplayBuffer) -> ReplayBuffer:
    """:return: the buffer of :func:`pack_buffer` with its storage arrays back at full capacity"""

    def grow(array: np.ndarray) -> np.ndarray:
        full = np.zeros((packed.buffer_size, *array.shape[1:]), dtype=array.dtype)
        full[: len(array)] = array
        return full

    for name in vars(packed).pop("_mtsb3_packed", []):
        value = getattr(packed, name)
        setattr(packed, name, {k: grow(v) for k, v in value.items()} if isinstance(value, dict) else grow(value))
    return packed


def get_callback_state(callback: BaseCallback) -> dict[str, Any]:
    """
    :param callback: a callback; its ``n_calls``, and the attributes it lists in ``checkpoint_attrs`` (SB3's
        ``EvalCallback``: its evaluation history) are saved
    :return: the state
    """
    default = EVAL_CALLBACK_ATTRS if isinstance(callback, EvalCallback) else ()
    names = ("n_calls", *getattr(callback, "checkpoint_attrs", default))
    return {name: copy.deepcopy(getattr(callback, name)) for name in names if hasattr(callback, name)}


def set_callback_state(callback: BaseCallback, state: dict[str, Any]) -> None:
    """:param state: from :func:`get_callback_state` of the same kind of callback"""
    for name, value in state.items():
        setattr(callback, name, copy.deepcopy(value))
