"""
Train or tune an mtsb3 algorithm on an mtgym environment with RL Zoo3.

This is rl_zoo3's own ``train()``, after :func:`mtsb3.zoo.register_zoo` has added our algorithms, samplers and
multi-task ``ExperimentManager``. Defaults: ``--gym-packages mtgym``, ``-conf hyperparams/<algo>.yml``, and with
``-optimize`` a journal-file study ``logs/<algo>/optuna/<env>.log`` named ``<algo>-<env>``. A ``postgresql://`` URL
in ``--storage`` makes the process one worker of a distributed study. Extra options (not rl-zoo's)::

    --heartbeat-interval S   Optuna heartbeat of a running trial, in seconds (RDB storages; default 60)
    --grace-period S         a trial without heartbeat for S seconds is marked FAILED (default 2 x interval)
    --retry-failed-trials N  re-enqueue the trial of a dead worker, at most N times (default 0)
    --no-progress            no progress bar (shown by default when training)

``--num-threads`` defaults to 1. The package versions are printed first and stored in the run folder's ``run.yml``.

Example::

    python scripts/train.py --algo care --env MT-MetaWorld-MT10-v0
    python scripts/train.py --algo mtsac --env MT-MetaWorld-MT10-v0 -optimize --n-trials 20 \\
        --storage postgresql://user@host/db --study-name mtsac-mt10
"""

import sys
from pathlib import Path

HYPERPARAMS_DIR = Path(__file__).resolve().parent.parent / "hyperparams"


def main() -> None:
    from mtgym.versions import format_versions
    from mtsb3.zoo import prepare_train_argv, register_zoo

    print(format_versions(), flush=True)

    argv, options = prepare_train_argv(sys.argv[1:], HYPERPARAMS_DIR)
    register_zoo(options)
    from rl_zoo3.train import train

    sys.argv = [sys.argv[0], *argv]
    train()


if __name__ == "__main__":
    main()
