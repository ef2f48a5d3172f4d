"""
Command-line preparation for ``scripts/train.py`` and ``scripts/enjoy.py``: our defaults, our own options (which
rl-zoo's parser does not know) and clear errors for an unknown ``--algo`` or ``--env``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from mtsb3.zoo.env_info import env_info
from mtsb3.zoo.registry import available_algos, require_zoo, unavailable_algos


@dataclass
class ZooOptions:
    """
    Options that ``scripts/train.py`` strips from the command line before rl-zoo parses it.

    :param heartbeat_interval: seconds between Optuna heartbeats of a running trial (RDB storage)
    :param grace_period: seconds without heartbeat after which a RUNNING trial is marked FAILED (default 2 intervals)
    :param retry_failed_trials: re-enqueue a trial whose worker died, at most this many times
    :param cli_keys: the zoo options given explicitly on the command line (they win over our YAML keys)
    :param run_folder: the run folder to use instead of a new ``<log folder>/<algo>/<env>_<n>``; a run folder with a
        checkpoint is resumed
    :param checkpoint_freq: timesteps between run checkpoints; ``None``: after every evaluation; ``0``: none
    :param keep_checkpoints: how many run checkpoints to keep
    :param checkpoint_buffer: include the replay buffer in the run checkpoints
    """

    heartbeat_interval: int = 60
    grace_period: int | None = None
    retry_failed_trials: int = 0
    cli_keys: set[str] = field(default_factory=set)
    run_folder: str | None = None
    checkpoint_freq: int | None = None
    keep_checkpoints: int = 2
    checkpoint_buffer: bool = True


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


def _resolve_conf(argv: list[str], algo: str, hyperparams_dir: str | os.PathLike) -> list[str]:
    """
    Point ``-conf`` at the algorithm's preset file: ``<hyperparams_dir>/<algo>.yml`` when no ``-conf`` is given (and
    the file exists), and ``<dir>/<algo>.yml`` when ``-conf`` names a directory, a preset family such as
    ``hyperparams/small`` with one file per method, as rl-zoo's own ``hyperparams/<algo>.yml`` layout.

    :raises SystemExit: (exit code 2) when the directory has no file for ``algo``, naming those it has
    """
    argv = list(argv)
    flag = next((i for i, arg in enumerate(argv) if arg in ("-conf", "--conf-file")), None)
    if flag is None:
        preset = Path(hyperparams_dir) / f"{algo}.yml"
        return [*argv, "-conf", str(preset)] if preset.is_file() else argv
    if flag + 1 < len(argv) and Path(argv[flag + 1]).is_dir():
        family = Path(argv[flag + 1])
        preset = family / f"{algo}.yml"
        if not preset.is_file():
            have = ", ".join(sorted(p.stem for p in family.glob("*.yml"))) or "none"
            _usage_error(f"preset directory {family} has no {algo}.yml (it has presets for: {have})")
        argv[flag + 1] = str(preset)
    return argv


def prepare_train_argv(argv: Sequence[str], hyperparams_dir: str | os.PathLike) -> tuple[list[str], ZooOptions]:
    """
    Add our defaults to a ``train.py`` command line and check ``--algo``/``--env`` with clear errors.

    * ``--gym-packages mtgym`` (mtgym is added when other packages are given);
    * ``-conf <hyperparams_dir>/<algo>.yml`` when that file exists, and ``-conf <dir>`` read as ``<dir>/<algo>.yml``;
    * with ``-optimize``: ``--storage <log folder>/<algo>/optuna/<env>.log`` (a journal file) and
      ``--study-name <algo>-<env>`` unless given;
    * a progress bar (rl-zoo's ``-P``) for training, unless ``--no-progress`` is given (not when tuning: rich allows
      one live display per process, and parallel trials would each open one);
    * ``--num-threads 1`` unless given: on a CPU the small multi-task networks update faster on one torch thread, and
      a second thread only spins against the simulators (on a shared 2-core machine a 2-thread update was 5-10x
      slower than a 1-thread one).

    :param argv: the command line without the program name
    :param hyperparams_dir: where the ``<algo>.yml`` presets live
    :return: the completed command line, and our own options (already removed from it)
    :raises SystemExit: (exit code 2) for an unknown algorithm or env id, with the valid names
    """
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--heartbeat-interval", type=int, default=60)
    ours.add_argument("--grace-period", type=int, default=None)
    ours.add_argument("--retry-failed-trials", type=int, default=0)
    ours.add_argument("--no-progress", action="store_true")
    ours.add_argument("--run-folder", default=None)
    ours.add_argument("--checkpoint-freq", type=int, default=None)
    ours.add_argument("--keep-checkpoints", type=int, default=2)
    ours.add_argument("--no-checkpoint-buffer", action="store_true")
    own, rest = ours.parse_known_args(list(argv))
    if own.keep_checkpoints < 1:
        _usage_error(f"--keep-checkpoints must be >= 1, got {own.keep_checkpoints}")
    if own.checkpoint_freq is not None and own.checkpoint_freq < 0:
        _usage_error(f"--checkpoint-freq must be >= 0 (0: no checkpoints), got {own.checkpoint_freq}")
    options = ZooOptions(
        own.heartbeat_interval,
        own.grace_period,
        own.retry_failed_trials,
        run_folder=own.run_folder,
        checkpoint_freq=own.checkpoint_freq,
        keep_checkpoints=own.keep_checkpoints,
        checkpoint_buffer=not own.no_checkpoint_buffer,
    )
    if own.no_checkpoint_buffer:
        options.cli_keys.add("checkpoint_buffer")
    if _option_given(rest, "--eval-episodes"):
        options.cli_keys.add("eval_episodes")
    if _option_given(rest, "--eval-freq"):
        options.cli_keys.add("eval_freq")
    if _option_given(rest, "--vec-env"):
        options.cli_keys.add("vec_env")

    rest = _check_algo_and_env(rest)
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--algo", default="ppo")
    peek.add_argument("--env", default="CartPole-v1")
    peek.add_argument("-f", "--log-folder", default="logs")
    peek.add_argument("-optimize", "--optimize-hyperparameters", action="store_true")
    peek.add_argument("--storage", default=None)
    peek.add_argument("--study-name", default=None)
    known, _ = peek.parse_known_args(rest)
    rest = _resolve_conf(rest, known.algo, hyperparams_dir)
    if known.optimize_hyperparameters:
        if known.storage is None:
            rest += ["--storage", os.path.join(known.log_folder, known.algo, "optuna", f"{known.env}.log")]
        if known.study_name is None:
            rest += ["--study-name", f"{known.algo}-{known.env}"]
    if not (own.no_progress or known.optimize_hyperparameters or _option_given(rest, "-P", "--progress")):
        rest.append("-P")
    if not _option_given(rest, "--num-threads"):
        rest += ["--num-threads", "1"]
    return rest, options
