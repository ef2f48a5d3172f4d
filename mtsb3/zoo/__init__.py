"""
Adds the mtsb3 algorithms, their presets and Optuna samplers to `RL Zoo3 <https://github.com/DLR-RM/rl-baselines3-zoo>`_.

``rl_zoo3`` patches Gymnasium when it is imported (``rl_zoo3/gym_patches.py``), so only :mod:`mtsb3.zoo.manager` and
:mod:`mtsb3.zoo.enjoy` import it, and :func:`register_zoo` imports them when called: importing :mod:`mtsb3.zoo` has
no side effect. ``scripts/train.py`` and ``scripts/enjoy.py`` call :func:`register_zoo` and then run rl_zoo3's own
``train()`` / ``enjoy()``.

What we add to the zoo, one module each:

* :mod:`~mtsb3.zoo.registry`: the ``--algo`` names (:data:`ZOO_ALGOS`) and which of them this install can run;
* :mod:`~mtsb3.zoo.samplers`: their Optuna samplers and the trial-parameter converter;
* :mod:`~mtsb3.zoo.hyperparams`: zoo-only YAML keys, recipes, merging of ``*_kwargs`` dicts;
* :mod:`~mtsb3.zoo.cli`: command-line defaults and clear errors for ``train.py`` / ``enjoy.py``;
* :mod:`~mtsb3.zoo.env_info`: what the zoo reads from an env id (multi-task? task names, splits);
* :mod:`~mtsb3.zoo.storage`: journal / SQLite / PostgreSQL storages, heartbeats and the exact trial cap;
* :mod:`~mtsb3.zoo.tuning`: the tuning objective (mean success rate over tasks) and its trial callback;
* :mod:`~mtsb3.zoo.manager`: the ``ExperimentManager`` subclass that gives a multi-task env one task per sub-env
  (train and eval), evaluates with ``MultiTaskEvalCallback`` (per-task success in TensorBoard and in
  ``progress.csv``), records the env id, task names and full hyperparameters in the run folder, and tunes the mean
  success rate, on a local file by default or as one worker of a distributed study on a ``postgresql://`` URL;
* :mod:`~mtsb3.zoo.enjoy`: the ``enjoy`` test env, one sub-env per task, with a per-task summary;
* :mod:`~mtsb3.zoo.sweep`: ``scripts/sweep.py``'s grid of methods x envs x seeds as one Optuna study, one cell per
  trial, whose dead workers' cells are re-run and resumed from their run checkpoints (:mod:`mtsb3.common.resume`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mtsb3.zoo.cli import ZooOptions, prepare_enjoy_argv, prepare_train_argv
from mtsb3.zoo.env_info import EnvInfo, env_info
from mtsb3.zoo.hyperparams import ZOO_ONLY_KEYS, _merge_hyperparams, apply_recipe
from mtsb3.zoo.registry import ZOO_ALGOS, ZooAlgo, available_algos, require_zoo, unavailable_algos
from mtsb3.zoo.samplers import (
    NET_ARCHS,
    convert_mtsac_params,
    sample_brc_params,
    sample_cagrad_params,
    sample_distral_params,
    sample_encoder_params,
    sample_famo_params,
    sample_gradnorm_params,
    sample_moore_params,
    sample_mtsac_params,
    sample_paco_params,
    sample_pcgrad_params,
    sample_pixel_params,
    sample_uw_params,
)

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = [
    "NET_ARCHS",
    "ZOO_ALGOS",
    "ZOO_ONLY_KEYS",
    "EnvInfo",
    "ZooAlgo",
    "ZooOptions",
    "_merge_hyperparams",
    "apply_recipe",
    "available_algos",
    "convert_mtsac_params",
    "env_info",
    "evaluation_score",
    "make_experiment_manager_class",
    "make_storage",
    "make_test_env",
    "prepare_enjoy_argv",
    "prepare_train_argv",
    "register_zoo",
    "sample_brc_params",
    "sample_cagrad_params",
    "sample_distral_params",
    "sample_encoder_params",
    "sample_famo_params",
    "sample_gradnorm_params",
    "sample_moore_params",
    "sample_mtsac_params",
    "sample_paco_params",
    "sample_pcgrad_params",
    "sample_pixel_params",
    "sample_uw_params",
    "unavailable_algos",
]

#: names loaded on first use, from modules that import Optuna, SB3 callbacks or rl_zoo3
_LAZY = {
    "make_storage": "mtsb3.zoo.storage",
    "evaluation_score": "mtsb3.zoo.tuning",
    "TrialReportCallback": "mtsb3.zoo.tuning",
    "MTExperimentManager": "mtsb3.zoo.manager",
    "make_experiment_manager_class": "mtsb3.zoo.manager",
    "make_test_env": "mtsb3.zoo.enjoy",
    "PerTaskReport": "mtsb3.zoo.enjoy",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_zoo(options: ZooOptions | None = None) -> dict[str, type[BaseAlgorithm]]:
    """
    Register every available mtsb3 method with rl_zoo3 (``ALGOS``, ``HYPERPARAMS_SAMPLER``, ``HYPERPARAMS_CONVERTER``),
    and make ``rl_zoo3.train.train()`` / ``rl_zoo3.enjoy.enjoy()`` use our ``ExperimentManager`` and test env.
    The zoo's dicts are mutated in place, as rl-zoo's README asks for custom algorithms (``rl_zoo3.ALGOS`` is
    ``rl_zoo3.train.ALGOS``); ``train()`` and ``enjoy()`` have no hook for the manager class and the test env, so those
    two module attributes are replaced (listed in :mod:`mtsb3.common.private_api`).

    :param options: our extra options for the experiment manager
    :return: the registered ``--algo`` names and classes
    """
    require_zoo("optuna", "rl_zoo3")
    import rl_zoo3.enjoy
    import rl_zoo3.train
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS

    from mtsb3.zoo.enjoy import make_test_env
    from mtsb3.zoo.manager import make_experiment_manager_class

    algos = available_algos()
    ALGOS.update(algos)
    for name in algos:
        HYPERPARAMS_SAMPLER[name] = ZOO_ALGOS[name].sampler
        HYPERPARAMS_CONVERTER[name] = convert_mtsac_params
    rl_zoo3.train.ExperimentManager = make_experiment_manager_class(options)
    rl_zoo3.enjoy.create_test_env = make_test_env
    return algos
