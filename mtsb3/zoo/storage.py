"""
Optuna storages for ``--storage``: a journal file, SQLite, or a PostgreSQL URL, all with heartbeats, so that the trial
of a worker that died is marked FAILED, a capped study (``--max-total-trials``) runs the missing trials and a sweep
(``scripts/sweep.py``) runs the dead worker's cell again.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtsb3.zoo.cli import ZooOptions
from mtsb3.zoo.registry import require_zoo

require_zoo("optuna")  # a clear error naming the extra, before the bare import below
import optuna  # noqa: E402
from optuna.storages._heartbeat import BaseHeartbeat  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

#: the trial states that count towards ``--max-total-trials`` (rl-zoo's count)
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def make_storage(storage: str, options: ZooOptions | None = None) -> Any:
    """
    Build the Optuna storage for ``--storage``.

    * ``*.log``: a journal file (``JournalFileBackend``; several local processes may share it), with heartbeats
      (:class:`HeartbeatJournalStorage`);
    * ``*.db`` / ``*.sqlite`` paths: SQLite;
    * ``postgresql://...`` (any SQLAlchemy URL): an ``RDBStorage`` with heartbeats.

    With heartbeats, a worker that dies mid-trial leaves its trial RUNNING only until ``grace_period``; the next trial
    of any worker then marks it FAILED (and re-enqueues it if ``retry_failed_trials`` > 0).

    :param storage: a path or URL
    :param options: heartbeat settings
    :return: an Optuna storage object
    """
    require_zoo("optuna")
    options = options or ZooOptions()
    callback = _report_stale_trial
    if options.retry_failed_trials > 0:
        callback = optuna.storages.RetryFailedTrialCallback(max_retry=options.retry_failed_trials)
    if storage.endswith(".log"):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(storage)
        return HeartbeatJournalStorage(backend, options.heartbeat_interval, options.grace_period, callback)
    if "://" not in storage:
        if not storage.endswith((".db", ".sqlite", ".sqlite3")):
            raise ValueError(f"Unsupported --storage {storage!r}: expected a *.log journal file, a *.db SQLite file or a URL")
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{storage}"
    storage = _postgres_driver(storage)
    return optuna.storages.RDBStorage(
        storage,
        engine_kwargs={"pool_pre_ping": True} if not storage.startswith("sqlite") else None,
        heartbeat_interval=options.heartbeat_interval,
        grace_period=options.grace_period,
        heartbeat_stale_trial_callback=callback,
    )


class HeartbeatJournalStorage(optuna.storages.JournalStorage, BaseHeartbeat):
    """
    Optuna's journal-file storage with the heartbeats of ``RDBStorage`` (Optuna gives them to RDB storages only): a
    running trial records its time every ``heartbeat_interval`` seconds as a system attribute, and a RUNNING trial
    whose last heartbeat (or start) is older than ``grace_period`` is stale; Optuna's ``fail_stale_trials`` marks it
    FAILED (one worker wins: the journal refuses to finish a trial twice) and calls ``stale_trial_callback``.
    The workers of one journal file share a file system, hence a clock.

    :param backend: the journal backend
    :param heartbeat_interval: seconds between heartbeats
    :param grace_period: seconds without heartbeat after which a trial is stale (default ``2 * heartbeat_interval``)
    :param stale_trial_callback: called with each trial marked FAILED (e.g. ``RetryFailedTrialCallback``)
    """

    HEARTBEAT_KEY = "mtsb3:heartbeat"

    def __init__(
        self,
        backend: optuna.storages.journal.BaseJournalBackend,
        heartbeat_interval: int = 60,
        grace_period: int | None = None,
        stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ):
        if heartbeat_interval < 1:
            raise ValueError(f"heartbeat_interval must be >= 1 second, got {heartbeat_interval}")
        if grace_period is not None and grace_period < 1:
            raise ValueError(f"grace_period must be >= 1 second, got {grace_period}")
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = 2 * heartbeat_interval if grace_period is None else grace_period
        self.stale_trial_callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, self.HEARTBEAT_KEY, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # a retried trial copies the system attributes of the failed one: its start counts too
            started = trial.datetime_start.timestamp() if trial.datetime_start is not None else now
            last = max(float(trial.system_attrs.get(self.HEARTBEAT_KEY, 0.0)), started)
            if now - last > self.grace_period:
                stale.append(self.get_trial_id_from_study_id_trial_number(study_id, trial.number))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.stale_trial_callback


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
    heartbeat_storages = (optuna.storages.RDBStorage, HeartbeatJournalStorage)
    return isinstance(storage, heartbeat_storages) and storage.get_heartbeat_interval() is not None


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
