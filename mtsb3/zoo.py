"""
Adds the mtsb3 algorithms, their presets and Optuna samplers to `RL Zoo3 <https://github.com/DLR-RM/rl-baselines3-zoo>`_.

``rl_zoo3`` patches Gymnasium when it is imported (``rl_zoo3/gym_patches.py``), so this module imports it only inside
functions: importing :mod:`mtsb3.zoo` has no side effect. ``scripts/train.py`` and ``scripts/enjoy.py`` call
:func:`register_zoo` and then run rl_zoo3's own ``train()`` / ``enjoy()``.

What we add to the zoo (style_anchors §7):

* ``ALGOS`` / ``HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` entries for every named method whose class imports
  (:data:`ZOO_ALGOS`);
* an ``ExperimentManager`` subclass (:func:`make_experiment_manager_class`) that gives a multi-task env one task per
  sub-env (train and eval), evaluates with ``MultiTaskEvalCallback`` (per-task success in TensorBoard and in
  ``progress.csv``), records the env id, task names and full hyperparameters in the run folder, tunes the mean
  success rate instead of the reward, and runs Optuna on a local file by default or as one worker of a distributed
  study on a ``postgresql://`` URL, with heartbeats so that a killed worker's trial is marked FAILED.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import numpy as np

if TYPE_CHECKING:
    import optuna
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

#: network sizes the samplers choose from; "mtrl" is the docs recipe (3 x 400, spec §B1.1)
NET_ARCHS: dict[str, list[int]] = {
    "small": [64, 64],
    "medium": [256, 256],
    "big": [400, 400],
    "mtrl": [400, 400, 400],
    "hipbmdp": [1024, 1024],
}

#: YAML keys that only the zoo reads; they are removed before the model constructor is called
ZOO_ONLY_KEYS = ("recipe", "recipe_kwargs", "eval_episodes", "eval_freq")


# ---------------------------------------------------------------------------------------------------------------------
# Optuna samplers: (trial, n_actions, n_envs, additional_args) -> hyperparameters, as rl_zoo3.hyperparams_opt
# ---------------------------------------------------------------------------------------------------------------------
def convert_mtsac_params(sampled: dict[str, Any]) -> dict[str, Any]:
    """
    Turn raw sampled values (``trial.params``) into constructor kwargs; the ``HYPERPARAMS_CONVERTER`` of every
    off-policy family, used again by ``--trial-id`` to retrain from a stored trial.

    :param sampled: ``one_minus_gamma``, ``batch_size_pow``, ``net_arch`` (a :data:`NET_ARCHS` name), ``policy__<key>``
        (into ``policy_kwargs``), ``grad__<key>`` (into ``grad_method_kwargs``) and direct kwargs
    :return: kwargs for the algorithm, with ``policy_kwargs["net_arch"]``
    """
    params = dict(sampled)
    hyperparams: dict[str, Any] = {}
    if "one_minus_gamma" in params:
        hyperparams["gamma"] = 1.0 - params.pop("one_minus_gamma")
    if "batch_size_pow" in params:
        hyperparams["batch_size"] = 2 ** params.pop("batch_size_pow")
    policy_kwargs: dict[str, Any] = {}
    if "net_arch" in params:
        policy_kwargs["net_arch"] = list(NET_ARCHS[params.pop("net_arch")])
    for key in [k for k in params if k.startswith("policy__")]:
        policy_kwargs[key.removeprefix("policy__")] = params.pop(key)
    grad_kwargs = {key.removeprefix("grad__"): params.pop(key) for key in [k for k in params if k.startswith("grad__")]}
    hyperparams.update(params)
    if policy_kwargs:
        hyperparams["policy_kwargs"] = policy_kwargs
    if grad_kwargs:
        hyperparams["grad_method_kwargs"] = grad_kwargs
    return hyperparams


def _sample_sac_core(trial: optuna.Trial, net_archs: Sequence[str] | None, batch_pows: tuple[int, int]) -> dict[str, Any]:
    one_minus_gamma = trial.suggest_float("one_minus_gamma", 1e-3, 0.03, log=True)
    batch_size_pow = trial.suggest_int("batch_size_pow", *batch_pows)
    trial.set_user_attr("gamma", 1.0 - one_minus_gamma)
    trial.set_user_attr("batch_size", 2**batch_size_pow)
    params = {
        "one_minus_gamma": one_minus_gamma,
        "batch_size_pow": batch_size_pow,
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "tau": trial.suggest_float("tau", 1e-3, 0.05, log=True),
    }
    if net_archs is not None:  # None: the network is the recipe's (encoders)
        params["net_arch"] = trial.suggest_categorical("net_arch", list(net_archs))
    return params


def sample_mtsac_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for the MTSAC family (mtsac, mtsac_te, mtmhsac): the SAC core of rl-zoo's ``sample_sac_params``
    (log-scale ``one_minus_gamma``, ``batch_size_pow``, categorical ``net_arch``), with batch sizes and networks in
    the multi-task range (128 to 2048, up to the 3 x 400 docs network).
    """
    return convert_mtsac_params(_sample_sac_core(trial, ["small", "medium", "mtrl"], (7, 11)))


def sample_encoder_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for the task-conditioned encoder family (film, softmod, care): the SAC core without the network size,
    which belongs to the recipe (the sampled kwargs are merged into the preset's, so the recipe's extractor is kept).
    """
    return convert_mtsac_params(_sample_sac_core(trial, None, (7, 11)))


def sample_pcgrad_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for PCGrad (``grad_method`` comes from the preset): the MTSAC core."""
    return convert_mtsac_params(_sample_sac_core(trial, ["medium", "mtrl"], (7, 11)))


def sample_gradnorm_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for GradNorm: the MTSAC core plus the asymmetry ``alpha`` (paper: 0.12 to 3; mtrl: 1.0)."""
    params = _sample_sac_core(trial, ["medium", "mtrl"], (7, 11))
    params["grad__alpha"] = trial.suggest_float("grad__alpha", 0.1, 3.0, log=True)
    return convert_mtsac_params(params)


def sample_cagrad_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for CAGrad: the MTSAC core plus the ball radius ``c`` (the paper uses 0.4 on MT10)."""
    params = _sample_sac_core(trial, ["medium", "mtrl"], (7, 11))
    params["grad__c"] = trial.suggest_float("grad__c", 0.1, 0.9)
    return convert_mtsac_params(params)


def sample_distral_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for Distral: the MTSAC core plus the distillation weight ``distral_alpha`` (spec §B11)."""
    params = _sample_sac_core(trial, ["medium", "mtrl"], (7, 11))
    params["distral_alpha"] = trial.suggest_float("distral_alpha", 0.05, 1.0, log=True)
    return convert_mtsac_params(params)


def sample_pixel_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for the pixel family (sacae, deepmdp, hipbmdp): smaller batches (pixels), up to the 2 x 1024 recipe."""
    return convert_mtsac_params(_sample_sac_core(trial, ["medium", "hipbmdp"], (6, 9)))


class ZooAlgo(NamedTuple):
    """How an ``--algo`` name maps onto mtsb3."""

    #: ``"module:Class"`` of the algorithm
    cls: str
    #: the Optuna sampler of its family
    sampler: Callable[..., dict[str, Any]]
    #: further ``"module:attribute"`` the method needs (e.g. its encoder); the name is offered only if all import
    requires: tuple[str, ...] = ()


#: every named method (spec §B15 and the mtsb3 issues); each has its preset in ``hyperparams/<name>.yml``
ZOO_ALGOS: dict[str, ZooAlgo] = {
    "mtsac": ZooAlgo("mtsb3:MTSAC", sample_mtsac_params),
    "mtsac_te": ZooAlgo("mtsb3:MTSAC", sample_mtsac_params),
    "mtmhsac": ZooAlgo("mtsb3:MTSAC", sample_mtsac_params),
    "film": ZooAlgo("mtsb3:MTSAC", sample_encoder_params, ("mtsb3.recipes:sac_film",)),
    "softmod": ZooAlgo("mtsb3:MTSAC", sample_encoder_params, ("mtsb3.recipes:soft_modularization",)),
    "care": ZooAlgo("mtsb3:MTSAC", sample_encoder_params, ("mtsb3.recipes:care",)),
    "pcgrad": ZooAlgo("mtsb3:MTSAC", sample_pcgrad_params, ("mtsb3.common.gradients:PCGrad",)),
    "gradnorm": ZooAlgo("mtsb3:MTSAC", sample_gradnorm_params, ("mtsb3.common.gradients:GradNorm",)),
    "cagrad": ZooAlgo("mtsb3:MTSAC", sample_cagrad_params, ("mtsb3.common.gradients:CAGrad",)),
    "distral": ZooAlgo("mtsb3.distral:Distral", sample_distral_params),
    "sacae": ZooAlgo("mtsb3.sac_ae:SACAE", sample_pixel_params),
    "deepmdp": ZooAlgo("mtsb3.deepmdp:DeepMDP", sample_pixel_params),
    "hipbmdp": ZooAlgo("mtsb3.hipbmdp:HiPBMDP", sample_pixel_params),
}


def require_zoo(*modules: str) -> None:
    """
    Import the packages of the ``zoo`` extra that a zoo entry point needs (``rl_zoo3``, ``optuna``).

    :param modules: the modules to import
    :raises ImportError: naming the extra, instead of a bare ``ModuleNotFoundError`` from deep inside a command
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ImportError(f'The rl-zoo integration needs {module} ({e}): pip install "mtgym[zoo]"') from e


def _import_attr(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _resolve(name: str) -> tuple[type[BaseAlgorithm] | None, str]:
    spec = ZOO_ALGOS[name]
    try:
        for required in spec.requires:
            _import_attr(required)
        return _import_attr(spec.cls), ""
    except (ImportError, AttributeError) as e:
        return None, f"{type(e).__name__}: {e}"


def available_algos() -> dict[str, type[BaseAlgorithm]]:
    """:return: ``--algo`` name -> class, for every named method whose class (and requirements) import"""
    return {name: cls for name in ZOO_ALGOS if (cls := _resolve(name)[0]) is not None}


def unavailable_algos() -> dict[str, str]:
    """:return: ``--algo`` name -> why it is not available in this install"""
    return {name: why for name in ZOO_ALGOS if _resolve(name)[0] is None and (why := _resolve(name)[1])}


# ---------------------------------------------------------------------------------------------------------------------
# Options of our scripts that rl-zoo's parser does not know
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class ZooOptions:
    """
    Options that ``scripts/train.py`` strips from the command line before rl-zoo parses it.

    :param heartbeat_interval: seconds between Optuna heartbeats of a running trial (RDB storage)
    :param grace_period: seconds without heartbeat after which a RUNNING trial is marked FAILED (default 2 intervals)
    :param retry_failed_trials: re-enqueue a trial whose worker died, at most this many times
    :param cli_keys: the zoo options given explicitly on the command line (they win over our YAML keys)
    """

    heartbeat_interval: int = 60
    grace_period: int | None = None
    retry_failed_trials: int = 0
    cli_keys: set[str] = field(default_factory=set)


def _option_given(argv: Sequence[str], *flags: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv for flag in flags)


def _usage_error(message: str) -> NoReturn:
    """Print ``error: <message>`` to stderr and exit with code 2, as ``argparse`` does for a bad command line."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _check_algo_and_env(argv: list[str]) -> list[str]:
    """Add ``mtgym`` to ``--gym-packages``, import them, and exit with a clear message for an unknown algo or env id."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--algo", default="ppo")
    peek.add_argument("--env", default="CartPole-v1")
    peek.add_argument("--gym-packages", nargs="+", default=[])
    known, _ = peek.parse_known_args(argv)
    argv = list(argv)

    require_zoo("optuna", "rl_zoo3")
    from rl_zoo3.utils import ALGOS  # lazy: rl_zoo3 patches Gymnasium on import

    algos = {**ALGOS, **available_algos()}
    if known.algo not in algos:
        missing = unavailable_algos()
        message = f"unknown algorithm {known.algo!r}."
        if known.algo in missing:
            message = f"algorithm {known.algo!r} is not available in this install ({missing[known.algo]})."
        _usage_error(f"{message} Available algorithms: {', '.join(sorted(algos))}")

    packages = list(known.gym_packages)
    if "mtgym" not in packages:
        packages.append("mtgym")
        if known.gym_packages:
            i = argv.index("--gym-packages")
            argv[i + 1 : i + 1 + len(known.gym_packages)] = packages
        else:
            argv += ["--gym-packages", *packages]
    for package in packages:
        importlib.import_module(package)
    import gymnasium as gym

    env_id = str(known.env)
    if env_id not in gym.registry:
        import difflib

        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        mt_ids = sorted(k for k in gym.registry if k.startswith("MT-"))
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        _usage_error(f"unknown environment id {env_id!r}.{hint} The mtgym ids are: {', '.join(mt_ids)}")
    return argv


def prepare_enjoy_argv(argv: Sequence[str]) -> list[str]:
    """
    Add our defaults to an ``enjoy.py`` command line (``--gym-packages mtgym``, ``-f logs`` instead of rl-zoo's
    ``rl-trained-agents``, which would try to download from the Hugging Face hub, and ``--n-envs <number of tasks>``)
    and check ``--algo``/``--env``.
    """
    argv = _check_algo_and_env(list(argv))
    if not _option_given(argv, "-f", "--folder"):
        argv += ["-f", "logs"]
    if not _option_given(argv, "--n-envs"):
        # one sub-env per task; rl-zoo's single-env printing (n_envs == 1) would fail on several sub-envs
        peek = argparse.ArgumentParser(add_help=False)
        peek.add_argument("--env", default="CartPole-v1")
        info = env_info(peek.parse_known_args(argv)[0].env)
        if info.is_multi_task and info.task_names is not None:
            argv += ["--n-envs", str(len(info.eval_tasks or info.task_names))]
    return argv


def prepare_train_argv(argv: Sequence[str], hyperparams_dir: str | os.PathLike) -> tuple[list[str], ZooOptions]:
    """
    Add our defaults to a ``train.py`` command line and check ``--algo``/``--env`` with clear errors.

    * ``--gym-packages mtgym`` (mtgym is added when other packages are given);
    * ``-conf <hyperparams_dir>/<algo>.yml`` when that file exists;
    * with ``-optimize``: ``--storage <log folder>/<algo>/optuna/<env>.log`` (a journal file) and
      ``--study-name <algo>-<env>`` unless given.

    :param argv: the command line without the program name
    :param hyperparams_dir: where the ``<algo>.yml`` presets live
    :return: the completed command line, and our own options (already removed from it)
    :raises SystemExit: (exit code 2) for an unknown algorithm or env id, with the valid names
    """
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--heartbeat-interval", type=int, default=60)
    ours.add_argument("--grace-period", type=int, default=None)
    ours.add_argument("--retry-failed-trials", type=int, default=0)
    own, rest = ours.parse_known_args(list(argv))
    options = ZooOptions(own.heartbeat_interval, own.grace_period, own.retry_failed_trials)
    if _option_given(rest, "--eval-episodes"):
        options.cli_keys.add("eval_episodes")
    if _option_given(rest, "--eval-freq"):
        options.cli_keys.add("eval_freq")

    rest = _check_algo_and_env(rest)
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--algo", default="ppo")
    peek.add_argument("--env", default="CartPole-v1")
    peek.add_argument("-f", "--log-folder", default="logs")
    peek.add_argument("-optimize", "--optimize-hyperparameters", action="store_true")
    peek.add_argument("--storage", default=None)
    peek.add_argument("--study-name", default=None)
    known, _ = peek.parse_known_args(rest)
    if not _option_given(rest, "-conf", "--conf-file"):
        preset = Path(hyperparams_dir) / f"{known.algo}.yml"
        if preset.is_file():
            rest += ["-conf", str(preset)]
    if known.optimize_hyperparameters:
        if known.storage is None:
            rest += ["--storage", os.path.join(known.log_folder, known.algo, "optuna", f"{known.env}.log")]
        if known.study_name is None:
            rest += ["--study-name", f"{known.algo}-{known.env}"]
    return rest, options


# ---------------------------------------------------------------------------------------------------------------------
# Optuna storage and the tuning objective
# ---------------------------------------------------------------------------------------------------------------------
def make_storage(storage: str, options: ZooOptions | None = None) -> Any:
    """
    Build the Optuna storage for ``--storage``.

    * ``*.log``: a journal file (``JournalFileBackend``; several local processes may share it);
    * ``*.db`` / ``*.sqlite`` paths: SQLite;
    * ``postgresql://...`` (any SQLAlchemy URL): an ``RDBStorage`` with heartbeats, so a worker that dies mid-trial
      leaves its trial RUNNING only until ``grace_period``; the next trial of any worker then marks it FAILED
      (and re-enqueues it if ``retry_failed_trials`` > 0).

    :param storage: a path or URL
    :param options: heartbeat settings
    :return: an Optuna storage object
    """
    require_zoo("optuna")
    import optuna

    options = options or ZooOptions()
    if storage.endswith(".log"):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    if "://" not in storage:
        if not storage.endswith((".db", ".sqlite", ".sqlite3")):
            raise ValueError(f"Unsupported --storage {storage!r}: expected a *.log journal file, a *.db SQLite file or a URL")
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{storage}"
    storage = _postgres_driver(storage)
    callback = _report_stale_trial
    if options.retry_failed_trials > 0:
        callback = optuna.storages.RetryFailedTrialCallback(max_retry=options.retry_failed_trials)
    return optuna.storages.RDBStorage(
        storage,
        engine_kwargs={"pool_pre_ping": True} if not storage.startswith("sqlite") else None,
        heartbeat_interval=options.heartbeat_interval,
        grace_period=options.grace_period,
        heartbeat_stale_trial_callback=callback,
    )


def _postgres_driver(url: str) -> str:
    """
    SQLAlchemy 2.1 maps a plain ``postgresql://`` URL to psycopg 3; with only ``psycopg2`` installed (the ``test``
    extra's ``psycopg2-binary``), name that driver explicitly.
    """
    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is None:
        raise ImportError("A postgresql:// storage needs a PostgreSQL driver: pip install psycopg2-binary (or psycopg)")
    return "postgresql+psycopg2://" + url.removeprefix("postgresql://")


def _report_stale_trial(study: optuna.Study, trial: Any) -> None:
    print(f"Trial {trial.number} of study {study.study_name!r} was marked FAILED: its worker stopped sending heartbeats")


def evaluation_score(eval_callback: Any) -> float:
    """
    The tuning objective from an evaluation callback: the mean success rate over the tasks where success is defined,
    the mean reward where it is not (e.g. DMC).

    :param eval_callback: a ``MultiTaskEvalCallback`` (uses its per-task results) or a plain ``EvalCallback``
    """
    if getattr(eval_callback, "last_results", None):  # MultiTaskEvalCallback: success where defined, else reward
        return float(eval_callback.last_score)
    success_buffer = getattr(eval_callback, "_is_success_buffer", None)
    if success_buffer:
        return float(np.mean(success_buffer))
    return float(eval_callback.last_mean_reward)


class EnvInfo(NamedTuple):
    """What the zoo needs to know about an env id (read from one probe env)."""

    is_multi_task: bool
    task_names: list[str] | None
    #: ``task_splits`` of the env (HiP-BMDP: train / interpolation / extrapolation task indices), or ``None``
    task_splits: dict[str, list[int]] | None
    render_modes: list[str]

    @property
    def train_tasks(self) -> list[int] | None:
        """The tasks to train on: the ``train`` split where there is one, else all (``None``)."""
        return list(self.task_splits["train"]) if self.task_splits and "train" in self.task_splits else None

    @property
    def eval_tasks(self) -> list[int] | None:
        """The tasks to evaluate: every task of a split (in split order) where there are splits, else all (``None``)."""
        if not self.task_splits:
            return None
        return list(dict.fromkeys(t for split in self.task_splits.values() for t in split))


def env_info(env_id: str, env_kwargs: dict[str, Any] | None = None) -> EnvInfo:
    """:return: the :class:`EnvInfo` of ``env_id`` (builds one env; lazy multi-task envs build one task)"""
    import gymnasium as gym

    from mtgym.core import MTEnv

    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        unwrapped = env.unwrapped
        splits = getattr(unwrapped, "task_splits", None)
        return EnvInfo(
            isinstance(unwrapped, MTEnv),
            getattr(unwrapped, "task_names", None),
            {k: [int(t) for t in v] for k, v in splits.items()} if splits else None,
            list(env.metadata.get("render_modes", [])),
        )
    finally:
        env.close()


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


# ---------------------------------------------------------------------------------------------------------------------
# The ExperimentManager subclass
# ---------------------------------------------------------------------------------------------------------------------
@functools.cache
def _manager_class() -> type:  # noqa: C901  (one class body; rl_zoo3 may only be imported in here)
    import optuna
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState
    from rl_zoo3.exp_manager import ExperimentManager
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS, get_callback_list
    from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
    from stable_baselines3.common.logger import make_output_format
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
    from stable_baselines3.common.utils import configure_logger
    from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage, is_vecenv_wrapped

    from mtsb3.common.callbacks import MultiTaskEvalCallback
    from mtsb3.common.env_util import make_mt_vec_env

    class _TruthyIndex(int):
        # rl-zoo loads a stored trial only `if self.trial_id:` (exp_manager.py:359), which skips trial 0
        def __bool__(self) -> bool:
            return True

    class TrialReportCallback(BaseCallback):
        """``callback_after_eval`` of the trial's eval callback: reports :func:`evaluation_score` and prunes."""

        def __init__(self, trial: optuna.Trial):
            super().__init__()
            self.trial = trial
            self.eval_idx = 0
            self.is_pruned = False
            self.last_score: float | None = None

        def _on_step(self) -> bool:
            self.eval_idx += 1
            self.last_score = evaluation_score(self.parent)
            self.trial.report(self.last_score, self.eval_idx)
            if self.trial.should_prune():
                self.is_pruned = True
                return False
            return True

    class MTExperimentManager(ExperimentManager):
        """
        rl-zoo's ``ExperimentManager`` for multi-task envs (see the module docstring). Envs that are not MTEnvs keep
        rl-zoo's behaviour, so ``scripts/train.py`` also runs the zoo's own algorithms on plain Gymnasium ids.
        """

        options = ZooOptions()

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.env_info = env_info(self.env_name.gym_id, self.env_kwargs)
            self.is_multi_task, self.task_names = self.env_info.is_multi_task, self.env_info.task_names
            self.recipe: str | None = None

        # -- hyperparameters ---------------------------------------------------------------------------------------
        def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
            if self.trial_id == 0:
                self.trial_id = _TruthyIndex(0)
            return super().read_hyperparameters()

        def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> tuple:
            hyperparams = dict(hyperparams)
            zoo_keys = {key: hyperparams.pop(key) for key in ZOO_ONLY_KEYS if key in hyperparams}
            self.recipe = zoo_keys.get("recipe")
            for key, attr in (("eval_episodes", "n_eval_episodes"), ("eval_freq", "eval_freq")):
                if key in zoo_keys and key not in self.options.cli_keys:
                    setattr(self, attr, int(zoo_keys[key]))
            n_envs_given = "n_envs" in hyperparams
            hyperparams, env_wrapper, callbacks, vec_env_wrapper = super()._preprocess_hyperparams(hyperparams)
            if self._eval_env_kwargs_args is None:
                # rl-zoo keeps the eval env on the CLI kwargs when env_kwargs come from the YAML; use the same env
                self.eval_env_kwargs = self.env_kwargs
            if self.recipe is not None:
                hyperparams = apply_recipe(self.recipe, zoo_keys.get("recipe_kwargs"), hyperparams)
            if self.is_multi_task and self.task_names is not None and not n_envs_given:
                # one sub-env per (training) task, spec §B2
                self.n_envs = len(self.env_info.train_tasks or self.task_names)
                if self.verbose > 0:
                    print(f"Multi-task env: using {self.n_envs} environments, one per task")
            return hyperparams, env_wrapper, callbacks, vec_env_wrapper

        # -- environments ------------------------------------------------------------------------------------------
        def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
            if not self.is_multi_task:
                return super().create_envs(n_envs, eval_env=eval_env, no_log=no_log)
            # the eval env always has one sub-env per task (finite task sets), whatever --n-eval-envs says; with
            # task splits (HiP-BMDP), training uses the train split and evaluation every split (spec §B2, §B13)
            n = None if eval_env and self.task_names is not None else n_envs
            env = make_mt_vec_env(
                self.env_name.gym_id,
                n_envs=n,
                tasks=self.env_info.eval_tasks if eval_env else self.env_info.train_tasks,
                seed=self.seed,
                vec_env_cls=self.vec_env_class,
                env_kwargs=self.eval_env_kwargs if eval_env else self.env_kwargs,
                wrapper_class=self.env_wrapper,
                monitor_dir=None if eval_env or no_log else self.save_path,
                vec_env_kwargs=self.vec_env_kwargs,
            )
            if self.vec_env_wrapper is not None:
                env = self.vec_env_wrapper(env)
            env = self._maybe_normalize(env, eval_env)
            if self.frame_stack is not None:
                env = VecFrameStack(env, self.frame_stack)
            spaces_ = env.observation_space.spaces.values() if hasattr(env.observation_space, "spaces") else []
            if not is_vecenv_wrapped(env, VecTransposeImage) and any(
                is_image_space(s) and not is_image_space_channels_first(s) for s in spaces_
            ):
                env = VecTransposeImage(env)
            return env

        def _eval_callback(self, eval_env: VecEnv, eval_freq: int, log_path: str | None, **kwargs: Any) -> EvalCallback:
            # multi-task: exactly n_eval_episodes deterministic episodes per task, per-task logging
            callback_cls = MultiTaskEvalCallback if self.is_multi_task else EvalCallback
            return callback_cls(
                eval_env,
                n_eval_episodes=self.n_eval_episodes,
                eval_freq=eval_freq,
                log_path=log_path,
                deterministic=self.deterministic_eval,
                **kwargs,
            )

        def create_callbacks(self) -> None:
            eval_freq = self.eval_freq
            self.eval_freq = -1  # rl-zoo's EvalCallback is replaced by ours below
            super().create_callbacks()
            self.eval_freq = eval_freq
            if self.eval_freq > 0 and not self.optimize_hyperparameters:
                self.eval_freq = max(self.eval_freq // self.n_envs, 1)
                if self.verbose > 0:
                    print("Creating test environment")
                self.callbacks.append(
                    self._eval_callback(
                        self.create_envs(self.n_eval_envs, eval_env=True),
                        self.eval_freq,
                        self.save_path,
                        best_model_save_path=self.save_path,
                        verbose=self.verbose,
                    )
                )

        # -- run folder --------------------------------------------------------------------------------------------
        def _save_config(self, saved_hyperparams: dict[str, Any]) -> None:
            super()._save_config(saved_hyperparams)
            import yaml

            algo_cls = ALGOS[self.algo]
            info = {
                "env_id": self.env_name.gym_id,
                "task_names": self.task_names,
                "algo": self.algo,
                "algo_class": f"{algo_cls.__module__}.{algo_cls.__qualname__}",
                "recipe": self.recipe,
                "seed": self.seed,
                "n_envs": self.n_envs,
                "n_timesteps": self.n_timesteps,
                "n_eval_episodes_per_task": self.n_eval_episodes,
                "env_kwargs": _yaml_safe(self.env_kwargs),
                "hyperparameters": _yaml_safe(self._hyperparams),
            }
            with open(os.path.join(self.params_path, "run.yml"), "w") as f:
                yaml.safe_dump(info, f, sort_keys=False)

        def learn(self, model: BaseAlgorithm) -> None:
            # stdout (+ TensorBoard with -tb) as rl-zoo, plus progress.csv in the run folder for plot_results.py
            logger = configure_logger(self.verbose, self.tensorboard_log, type(model).__name__)
            logger.output_formats.append(make_output_format("csv", self.save_path))
            model.set_logger(logger)
            super().learn(model)

        # -- tuning ------------------------------------------------------------------------------------------------
        def objective(self, trial: optuna.Trial) -> float:
            cap = self.max_total_trials
            if cap is not None:
                # race-free cap: MaxTrialsCallback only checks after a trial, so two workers can both start one more
                counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
                earlier = [t for t in trial.study.get_trials(deepcopy=False, states=counted) if t.number < trial.number]
                if len(earlier) >= cap:
                    print(f"Trial {trial.number} not run: the study already has {cap} trials (--max-total-trials)")
                    trial.set_user_attr("surplus", True)
                    self._stop = True
                    return float("nan")  # Optuna stores a NaN objective as FAILED, which the cap does not count
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
            additional_args = {"using_her_replay_buffer": False, "her_kwargs": {}}
            sampled = HYPERPARAMS_SAMPLER[self.algo](trial, self.n_actions, self.n_envs, additional_args)
            kwargs = _merge_hyperparams(self._hyperparams, sampled)
            env = self.create_envs(self.n_envs, no_log=True)
            model = ALGOS[self.algo](
                env=env, tensorboard_log=None, seed=None, verbose=max(self.verbose - 1, 0), device=self.device, **kwargs
            )
            eval_env = self.create_envs(self.n_eval_envs, eval_env=True)
            eval_freq = max(int(self.n_timesteps / self.n_evaluations) // self.n_envs, 1)
            path = None
            if self.optimization_log_path is not None:
                path = os.path.join(self.optimization_log_path, f"trial_{trial.number}")
            reporter = TrialReportCallback(trial)
            eval_callback = self._eval_callback(
                eval_env, eval_freq, path, best_model_save_path=path, callback_after_eval=reporter
            )
            callbacks = [*get_callback_list({"callback": self.specified_callbacks}), eval_callback]
            try:
                model.learn(self.n_timesteps, callback=callbacks)
            except (AssertionError, ValueError) as e:
                # as rl-zoo: random hyperparameters can give NaNs; prune instead of failing the study
                print(f"Trial {trial.number} pruned: {e}")
                raise optuna.exceptions.TrialPruned() from e
            finally:
                model.env.close()
                eval_env.close()
            if reporter.is_pruned:
                raise optuna.exceptions.TrialPruned()
            if reporter.last_score is None:
                raise RuntimeError(f"trial {trial.number} ran no evaluation (n_timesteps={self.n_timesteps})")
            return reporter.last_score

        def hyperparameters_optimization(self) -> None:
            """rl-zoo's loop with our storage (heartbeats), an exact ``--max-total-trials`` cap and a pandas report."""
            if self.verbose > 0:
                print("Optimizing hyperparameters")
            self.tensorboard_log = None
            storage = make_storage(self.storage, self.options) if self.storage is not None else None
            study = optuna.create_study(
                sampler=self._create_sampler(self.sampler),
                pruner=self._create_pruner(self.pruner),
                storage=storage,
                study_name=self.study_name,
                load_if_exists=True,
                direction="maximize",
            )
            if "command" not in study.user_attrs:
                study.set_user_attr("command", " ".join(sys.orig_argv))
                study.set_user_attr("env_id", self.env_name.gym_id)
                study.set_user_attr("task_names", self.task_names)
            try:
                if self.max_total_trials is None:
                    study.optimize(self.objective, n_trials=self.n_trials, n_jobs=self.n_jobs, gc_after_trial=True)
                else:
                    # one trial at a time, so that the cap is checked (race-free, see objective) before each
                    self._stop = False
                    while not self._stop and not self._cap_reached(study):
                        study.optimize(self.objective, n_trials=1, gc_after_trial=True)
            except KeyboardInterrupt:
                pass
            self._report(study)

        def _cap_reached(self, study: optuna.Study) -> bool:
            """
            Whether ``--max-total-trials`` COMPLETE/PRUNED/RUNNING trials exist (rl-zoo's count). With heartbeats, RUNNING
            trials of other workers are waited for: if their worker died they turn FAILED after the grace period, and
            this worker then runs the missing trials.
            """
            counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            heartbeat = is_heartbeat_enabled(study._storage)
            while True:
                if heartbeat:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        optuna.storages.fail_stale_trials(study)
                trials = study.get_trials(deepcopy=False, states=counted)
                if len(trials) < self.max_total_trials:
                    return False
                if not heartbeat or all(t.state != TrialState.RUNNING for t in trials):
                    return True
                time.sleep(self.options.heartbeat_interval)

        def _report(self, study: optuna.Study) -> None:
            trials = study.get_trials(deepcopy=False)
            print(f"Number of trials in the study: {len(trials)}")
            states = {s.name: sum(t.state == s for t in trials) for s in TrialState}
            print("Trial states: " + ", ".join(f"{k}={v}" for k, v in states.items() if v))
            try:
                best = study.best_trial
            except ValueError:
                print("No completed trial yet")
                return
            print(f"Best trial: {best.number}, value: {best.value}")
            print("Params:")
            for key, value in best.params.items():
                print(f"    {key}: {value}")
            report_name = (
                f"report_{self.env_name}_{self.n_trials}-trials-{self.n_timesteps}"
                f"-{self.sampler}-{self.pruner}_{int(time.time())}"
            )
            log_path = os.path.join(self.log_folder, self.algo, report_name)
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            study.trials_dataframe().to_csv(f"{log_path}.csv")
            if self.verbose:
                print(f"Writing report to {log_path}.csv")

    return MTExperimentManager


def make_experiment_manager_class(options: ZooOptions | None = None) -> type:
    """
    :param options: our extra options (heartbeats, CLI precedence)
    :return: the ``ExperimentManager`` subclass for multi-task envs (imports rl_zoo3)
    """
    cls = _manager_class()
    cls.options = options or ZooOptions()
    return cls


# ---------------------------------------------------------------------------------------------------------------------
# enjoy: one sub-env per task, and a per-task summary
# ---------------------------------------------------------------------------------------------------------------------
def make_test_env(
    env_id: str,
    n_envs: int = 1,
    stats_path: str | None = None,
    seed: int = 0,
    log_dir: str | None = None,
    should_render: bool = True,
    hyperparams: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> VecEnv:
    """
    rl-zoo's ``create_test_env`` for ``enjoy``, with one sub-env per task for multi-task envs (``--n-envs 1``, the
    default, means "one per task") and a per-task success/return table printed when the env is closed.
    Other envs are passed to rl-zoo's own function.
    """
    from rl_zoo3.utils import create_test_env, get_wrapper_class
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    from mtsb3.common.env_util import make_mt_vec_env

    env_kwargs = dict(env_kwargs or {})
    info = env_info(env_id, env_kwargs)
    is_mt, task_names = info.is_multi_task, info.task_names
    if not is_mt:
        return create_test_env(env_id, n_envs, stats_path, seed, log_dir, should_render, hyperparams, env_kwargs, **kwargs)
    hyperparams = dict(hyperparams or {})
    if should_render and "render_mode" not in env_kwargs and "human" in info.render_modes:
        env_kwargs["render_mode"] = "human"
    env = make_mt_vec_env(
        env_id,
        n_envs=None if n_envs <= 1 and task_names is not None else n_envs,
        tasks=info.eval_tasks,
        seed=seed,
        env_kwargs=env_kwargs,
        wrapper_class=get_wrapper_class(hyperparams),
        monitor_dir=log_dir,
    )
    if "vec_env_wrapper" in hyperparams:
        env = get_wrapper_class(hyperparams, "vec_env_wrapper")(env)
    if stats_path is not None:
        if hyperparams.get("normalize"):
            env = VecNormalize.load(os.path.join(stats_path, "vecnormalize.pkl"), env)
            env.training = False
            env.norm_reward = False
        if hyperparams.get("frame_stack", 0) > 0:
            env = VecFrameStack(env, hyperparams["frame_stack"])
    return _per_task_report(env, task_names)


def _per_task_report(env: VecEnv, task_names: list[str] | None) -> VecEnv:
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class PerTaskReport(VecEnvWrapper):
        """Counts finished episodes per task (read from ``task_obs``) and prints a success/return table on close."""

        def __init__(self, venv: VecEnv):
            super().__init__(venv)
            self.returns = np.zeros(venv.num_envs)
            self.episodes: dict[int, list[tuple[float, float]]] = {}
            self._success = np.zeros(venv.num_envs)
            self._tasks = np.zeros(venv.num_envs, dtype=int)

        def reset(self):
            obs = self.venv.reset()
            self._tasks = np.asarray(obs["task_obs"]).reshape(self.num_envs, -1)[:, 0].astype(int)
            return obs

        def step_wait(self):
            obs, rewards, dones, infos = self.venv.step_wait()
            self.returns += rewards
            for i, info in enumerate(infos):
                self._success[i] = max(self._success[i], float(info.get("success", info.get("is_success", 0.0)) or 0.0))
                if dones[i]:
                    self.episodes.setdefault(int(self._tasks[i]), []).append((self.returns[i], self._success[i]))
                    self.returns[i] = self._success[i] = 0.0
            self._tasks = np.asarray(obs["task_obs"]).reshape(self.num_envs, -1)[:, 0].astype(int)
            return obs, rewards, dones, infos

        def close(self) -> None:
            if self.episodes:
                print("| task | episodes | success rate | mean return |")
                print("|---|---|---|---|")
                for task in sorted(self.episodes):
                    results = np.array(self.episodes[task])
                    name = task_names[task] if task_names is not None and task < len(task_names) else str(task)
                    print(f"| {name} | {len(results)} | {results[:, 1].mean():.2f} | {results[:, 0].mean():.2f} |")
                all_results = [np.array(r)[:, 1].mean() for r in self.episodes.values()]
                print(f"Mean success rate over tasks: {np.mean(all_results):.2f}")
            super().close()

    return PerTaskReport(env)


# ---------------------------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------------------------
def register_zoo(options: ZooOptions | None = None) -> dict[str, type[BaseAlgorithm]]:
    """
    Register every available mtsb3 method with rl_zoo3 (``ALGOS``, ``HYPERPARAMS_SAMPLER``, ``HYPERPARAMS_CONVERTER``),
    and make ``rl_zoo3.train.train()`` / ``rl_zoo3.enjoy.enjoy()`` use our ``ExperimentManager`` and test env.
    The zoo's dicts are mutated in place: ``rl_zoo3.ALGOS is rl_zoo3.train.ALGOS`` (style_anchors §7.1).

    :param options: our extra options for the experiment manager
    :return: the registered ``--algo`` names and classes
    """
    require_zoo("optuna", "rl_zoo3")
    import rl_zoo3.enjoy
    import rl_zoo3.train
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS

    algos = available_algos()
    ALGOS.update(algos)
    for name in algos:
        HYPERPARAMS_SAMPLER[name] = ZOO_ALGOS[name].sampler
        HYPERPARAMS_CONVERTER[name] = convert_mtsac_params
    rl_zoo3.train.ExperimentManager = make_experiment_manager_class(options)
    rl_zoo3.enjoy.create_test_env = make_test_env
    return algos
