"""
A sweep: a grid of methods x env ids x seeds run as one Optuna study, one trial per cell, on the storages of tuning
(:func:`~mtsb3.zoo.storage.make_storage`: a journal file, or a ``postgresql://`` URL shared by many machines).

Optuna schedules, ``scripts/train.py`` trains: every cell is one enqueued trial, which exactly one worker pops
(Optuna's enqueued trials are claimed atomically), and runs as ``train.py --run-folder <log folder>/<algo>/<env>_<seed>``,
an ordinary run folder. A worker that dies stops sending heartbeats; after the grace period another worker marks its
trial FAILED and re-enqueues the cell (``RetryFailedTrialCallback``), and the cell's ``train.py`` resumes from the run
folder's last checkpoint (:mod:`mtsb3.common.resume`). A COMPLETE cell is never enqueued again. A worker stops when no
cell is waiting or running. Resuming on another machine needs the log folder on a shared file system; otherwise the
retried cell starts over.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

#: the study attribute that lists the cells, written once the grid is enqueued
CELLS_ATTR = "sweep_cells"


@dataclass(frozen=True)
class Cell:
    """One run of a sweep."""

    algo: str
    env_id: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.algo}|{self.env_id}|{self.seed}"

    def run_folder(self, log_folder: str | Path) -> Path:
        """:return: the cell's run folder (``<algo>/<env>_<seed>``, which ``plot_results.py`` reads like any run)"""
        return Path(log_folder) / self.algo / f"{self.env_id}_{self.seed}"

    @classmethod
    def from_trial(cls, trial: optuna.trial.BaseTrial | optuna.trial.FrozenTrial) -> Cell | None:
        """:return: the cell a trial runs, ``None`` for a trial that is no cell"""
        attrs = trial.user_attrs
        if "cell" not in attrs:
            return None
        return cls(str(attrs["algo"]), str(attrs["env_id"]), int(attrs["seed"]))


def make_grid(algos: Sequence[str], env_ids: Sequence[str], seeds: Sequence[int]) -> list[Cell]:
    """
    :return: every (algo, env id, seed) cell, in that nesting order
    :raises ValueError: for an empty axis or a repeated value
    """
    for name, values in (("algos", algos), ("env ids", env_ids), ("seeds", seeds)):
        if not values:
            raise ValueError(f"A sweep needs at least one of {name}")
        if len(set(values)) != len(values):
            raise ValueError(f"The {name} of a sweep must differ, got {list(values)}")
    return [Cell(algo, env_id, int(seed)) for algo in algos for env_id in env_ids for seed in seeds]


def open_sweep(storage: Any, study_name: str, cells: Sequence[Cell], wait_s: float = 1.0) -> optuna.Study:
    """
    Create the sweep's study and enqueue one trial per cell, or join it if it exists (other workers, or a restarted
    sweep). Only the process that creates the study enqueues, so concurrent starts enqueue the grid once.

    :param storage: an Optuna storage (:func:`~mtsb3.zoo.storage.make_storage`)
    :param study_name: the study
    :param cells: the grid
    :param wait_s: seconds between looks at a study whose creator has not finished enqueueing
    :raises ValueError: if the study holds another grid
    """
    keys = [cell.key for cell in cells]
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=study_name)
        while CELLS_ATTR not in study.user_attrs:
            time.sleep(wait_s)
        if study.user_attrs[CELLS_ATTR] != keys:
            raise ValueError(
                f"The study {study_name!r} holds another sweep ({len(study.user_attrs[CELLS_ATTR])} cells: "
                f"{study.user_attrs[CELLS_ATTR][:3]}...); use another --study-name"
            ) from None
        return study
    for cell in cells:
        study.enqueue_trial({}, user_attrs={"cell": cell.key, **asdict(cell)})
    study.set_user_attr(CELLS_ATTR, keys)
    return study


class CellFailedError(RuntimeError):
    """The training of a cell failed (its trial is marked FAILED and not retried)."""


def die_with_parent() -> None:
    """In a child process: get SIGKILL when the parent dies, so that a killed worker leaves no orphan (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def final_score(run_folder: Path) -> float | None:
    """:return: the last evaluation's mean success rate over tasks (mean reward without success), ``None`` if none"""
    path = run_folder / "evaluations.npz"
    if not path.is_file():
        return None
    data = np.load(path)
    if len(data["timesteps"]) == 0:
        return None
    if "success_rate" in data and not np.all(np.isnan(data["success_rate"][-1])):
        return float(np.nanmean(data["success_rate"][-1]))
    if "mean_reward" in data:
        return float(np.mean(data["mean_reward"][-1]))
    return float(np.mean(data["results"][-1]))


def train_cell(cell: Cell, log_folder: str | Path, train_command: Sequence[str], extra_args: Sequence[str] = ()) -> float:
    """
    Run ``train.py`` for one cell in its run folder (resuming a checkpoint there), logging to ``<run folder>/train.log``.

    :param cell: the cell
    :param log_folder: the sweep's log folder
    :param train_command: how to start ``train.py`` (e.g. ``[sys.executable, "scripts/train.py"]``)
    :param extra_args: more ``train.py`` arguments, the same for every cell
    :return: the cell's final score (:func:`final_score`; 0 when the run has no evaluation)
    :raises CellFailedError: if ``train.py`` fails
    """
    folder = cell.run_folder(log_folder)
    folder.mkdir(parents=True, exist_ok=True)
    command = [*train_command, "--algo", cell.algo, "--env", cell.env_id, "--seed", str(cell.seed)]
    command += ["-f", str(log_folder), "--run-folder", str(folder), "--no-progress", *extra_args]
    with open(folder / ".sweep.lock", "w") as lock, open(folder / "train.log", "a") as log:
        # a worker whose trial was failed for missing heartbeats may still be training this folder: wait for it
        fcntl.flock(lock, fcntl.LOCK_EX)
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent).returncode
    if returncode != 0:
        raise CellFailedError(f"{cell.key}: train.py exited with {returncode}, see {folder / 'train.log'}")
    score = final_score(folder)
    return 0.0 if score is None else score


def run_worker(study: optuna.Study, run_cell: Callable[[Cell], float], wait_s: float = 5.0) -> None:
    """
    Run waiting cells of the sweep until none is waiting or running; while only other workers' cells run, wait (one of
    them may die, and its cell come back).

    :param study: the sweep (:func:`open_sweep`)
    :param run_cell: trains one cell and returns its score (e.g. :func:`train_cell` with its arguments bound)
    :param wait_s: seconds between looks at the cells of other workers
    """

    def objective(trial: optuna.Trial) -> float:
        cell = Cell.from_trial(trial)
        if cell is None:  # the queue emptied between our look and our ask: Optuna made a new trial, which is no cell
            trial.set_user_attr("surplus", True)
            return float("nan")  # stored as FAILED
        print(f"Sweep cell {cell.key} (trial {trial.number})", flush=True)
        return run_cell(cell)

    while True:
        optuna.storages.fail_stale_trials(study)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        if TrialState.WAITING in states:
            study.optimize(objective, n_trials=1, catch=(CellFailedError,))
        elif TrialState.RUNNING in states:
            time.sleep(wait_s)
        else:
            return


def sweep_summary(study: optuna.Study) -> tuple[str, bool]:
    """:return: a markdown table of the cells (state, trials, score), and whether every cell is COMPLETE exactly once"""
    by_cell: dict[str, list[optuna.trial.FrozenTrial]] = {key: [] for key in study.user_attrs.get(CELLS_ATTR, [])}
    for trial in study.get_trials(deepcopy=False):
        cell = Cell.from_trial(trial)
        if cell is not None:
            by_cell.setdefault(cell.key, []).append(trial)
    lines = ["| cell | state | trials | score |", "|---|---|---|---|"]
    done = True
    for key, trials in by_cell.items():
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        done = done and len(complete) == 1
        state = "COMPLETE" if complete else (trials[-1].state.name if trials else "MISSING")
        history = ", ".join(f"{t.number}:{t.state.name}" for t in trials)
        score = f"{complete[0].value:.3f}" if complete else ""
        lines.append(f"| {key} | {state} | {history} | {score} |")
    return "\n".join(lines), done
