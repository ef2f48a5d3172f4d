"""Preset handling: the zoo-only YAML keys, merging sampled or recipe hyperparameters, and run.yml serialisation."""

from __future__ import annotations

from typing import Any

import numpy as np

#: YAML keys that only the zoo reads; they are removed before the model constructor is called
ZOO_ONLY_KEYS = (
    "recipe",
    "recipe_kwargs",
    "eval_episodes",
    "eval_freq",
    "eval_terminate_on_success",
    "eval_one_episode_per_goal",
    "checkpoint_buffer",
    "vec_env",
    "eval_video",
)


def _yaml_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _yaml_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def _merge_hyperparams(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``, merging ``*_kwargs`` dicts (and those inside ``policy_kwargs``) one level deeper."""
    merged = dict(base)
    for key, value in update.items():
        both_dicts = isinstance(merged.get(key), dict) and isinstance(value, dict)
        if both_dicts and key.endswith("_kwargs") and key != "policy_kwargs":
            merged[key] = {**merged[key], **value}
        elif both_dicts and key == "policy_kwargs":
            policy_kwargs = dict(merged[key])
            for pk, pv in value.items():
                if pk.endswith("_kwargs") and isinstance(policy_kwargs.get(pk), dict) and isinstance(pv, dict):
                    pv = {**policy_kwargs[pk], **pv}
                policy_kwargs[pk] = pv
            merged[key] = policy_kwargs
        else:
            merged[key] = value
    return merged


def apply_recipe(name: str, recipe_kwargs: dict[str, Any] | None, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """
    Build ``policy_kwargs`` from a named :mod:`mtsb3.recipes` recipe (the YAML keys ``recipe`` and ``recipe_kwargs``),
    so YAML stays plain data while the recipe supplies extractor classes. ``policy_kwargs`` given in the YAML are
    merged on top (``*_kwargs`` dicts one level deep).

    :param name: a key of ``mtsb3.recipes.RECIPES`` (``care``, ``sac_film``, ``soft_modularization``, ...)
    :param recipe_kwargs: passed to the recipe function (sizes, ``task_encoder_kwargs``, ...)
    :param hyperparams: the preprocessed hyperparameters
    :return: the hyperparameters with the recipe's ``policy_kwargs``
    :raises ValueError: naming the available recipes if ``name`` is unknown
    """
    from mtsb3.recipes import recipe

    return _merge_hyperparams({"policy_kwargs": recipe(name, **(recipe_kwargs or {}))}, hyperparams)


def resolve_replay_buffer_class(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """
    Let a preset name mtsb3's replay buffers: rl-zoo ``eval()``\ s a ``replay_buffer_class`` string in its own module,
    which knows SB3's ``HerReplayBuffer`` but not ``TaskBalancedReplayBuffer``. A name of a buffer in
    :mod:`mtsb3.common.buffers` becomes the class; any other value is left to rl-zoo.

    :param hyperparams: the preset's hyperparameters
    :return: the hyperparameters, ``replay_buffer_class`` resolved
    """
    from stable_baselines3.common.buffers import ReplayBuffer

    from mtsb3.common import buffers

    name = hyperparams.get("replay_buffer_class")
    buffer = getattr(buffers, name, None) if isinstance(name, str) else None
    if isinstance(buffer, type) and issubclass(buffer, ReplayBuffer):
        return {**hyperparams, "replay_buffer_class": buffer}
    return hyperparams
