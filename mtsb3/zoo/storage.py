"""
Optuna storages for ``--storage``: a journal file, SQLite, or a PostgreSQL URL with heartbeats, so that the trial of
a worker that died is marked FAILED and a capped study (``--max-total-trials``) runs the missing trials.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from pathlib import Path
from typing import Any

from mtsb3.zoo.cli import ZooOptions
from mtsb3.zoo.registry import require_zoo

require_zoo("optuna")  # a clear error naming the extra, before the bare import below
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

#: the trial states that count towards ``--max-total-trials`` (rl-zoo's count)
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


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


def heartbeat_enabled(storage: Any) -> bool:
    """:return: whether ``storage`` (from :func:`make_storage`) records heartbeats of running trials"""
    return isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None


def trial_cap_reached(study: optuna.Study, storage: Any, cap: int, wait_s: float) -> bool:
    """
    Whether ``cap`` COMPLETE/PRUNED/RUNNING trials exist (rl-zoo's count). With heartbeats, RUNNING trials of other
    workers are waited for: if their worker died they turn FAILED after the grace period, and the caller then runs
    the missing trials.

    :param study: the study
    :param storage: its storage (from :func:`make_storage`, or ``None``)
    :param cap: ``--max-total-trials``
    :param wait_s: seconds between two looks at the RUNNING trials of other workers
    """
    heartbeat = heartbeat_enabled(storage)
    while True:
        if heartbeat:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False, states=COUNTED_STATES)
        if len(trials) < cap:
            return False
        if not heartbeat or all(t.state != TrialState.RUNNING for t in trials):
            return True
        time.sleep(wait_s)


def earlier_trials_reach_cap(trial: optuna.Trial, cap: int) -> bool:
    """
    Race-free ``--max-total-trials`` check at the start of ``trial``: Optuna's ``MaxTrialsCallback`` only checks after
    a trial, so two workers can both start one more.

    :return: whether ``cap`` counted trials numbered before ``trial`` exist (then ``trial`` is surplus)
    """
    counted = trial.study.get_trials(deepcopy=False, states=COUNTED_STATES)
    return sum(t.number < trial.number for t in counted) >= cap
