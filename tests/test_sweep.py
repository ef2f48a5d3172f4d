"""
``scripts/sweep.py`` on a journal file: two local workers complete a 2-method x 2-seed sweep, the cell of a third worker
killed mid-cell is failed by heartbeat, re-run by another worker and resumed from its checkpoint, and every cell ends
COMPLETE exactly once. The PostgreSQL version of this scenario is in ``tests/test_postgres_tuning.py``.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mtsb3.zoo import make_storage
from mtsb3.zoo.sweep import Cell, final_score, make_grid, open_sweep
from tests._zoo_helpers import SWEEP_ALGOS, SWEEP_SEEDS, kill_worker_mid_cell, load_script_module, sweep_worker


def check_sweep_survived_a_killed_worker(storage: optuna.storages.BaseStorage, logs: Path, killed_run: Path) -> None:
    """The assertions shared by the journal and the PostgreSQL scenario (after the surviving workers finished)."""
    study = optuna.load_study(study_name="sweep", storage=storage)
    trials = study.get_trials(deepcopy=False)
    print("\n| trial | cell | state | value |\n|---|---|---|---|")
    for t in trials:
        print(f"| {t.number} | {t.user_attrs.get('cell')} | {t.state.name} | {t.value} |")
    cells = make_grid(SWEEP_ALGOS, ["MT-PointGoal-v0"], SWEEP_SEEDS)
    complete = [Cell.from_trial(t) for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(complete, key=lambda c: c.key) == sorted(cells, key=lambda c: c.key)  # every cell COMPLETE, once
    killed_cell = next(c for c in cells if c.run_folder(logs) == killed_run)
    history = [t for t in trials if Cell.from_trial(t) == killed_cell]
    # the killed worker's trial was failed through the heartbeat, then the cell ran again (Optuna's retry) and completed
    assert [t.state for t in history] == [TrialState.FAIL, TrialState.COMPLETE]
    assert history[1].system_attrs["failed_trial"] == history[0].number
    assert TrialState.RUNNING not in {t.state for t in trials} and TrialState.WAITING not in {t.state for t in trials}
    # the re-run resumed the killed run from its checkpoint, in the same run folder
    log = (killed_run / "train.log").read_text()
    assert log.count("$ ") == 2 and "Resuming from " in log and "(exactly)" in log
    for cell in cells:
        folder = cell.run_folder(logs)
        assert (folder / "MT-PointGoal-v0.zip").is_file() and (folder / "MT-PointGoal-v0" / "run.yml").is_file()
        value = next(t.value for t in trials if t.state == TrialState.COMPLETE and Cell.from_trial(t) == cell)
        assert value == final_score(folder) and 0.0 <= value <= 1.0


def test_two_workers_finish_a_sweep_and_rerun_a_killed_workers_cell(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    journal = str(logs / "sweep.log")
    killed_run = kill_worker_mid_cell(journal, logs, tmp_path / "victim.out")
    survivors = sweep_worker(journal, logs, 2, tmp_path / "survivors.out")
    try:
        assert survivors.wait(timeout=600) == 0, (tmp_path / "survivors.out").read_text()[-4000:]
    finally:
        if survivors.poll() is None:
            survivors.kill()
            survivors.wait()
    check_sweep_survived_a_killed_worker(make_storage(journal), logs, killed_run)
    summary = (tmp_path / "survivors.out").read_text()
    assert "| mtsac|MT-PointGoal-v0|0 | COMPLETE |" in summary
    # a sweep's run folders are ordinary runs: results_table.py reads them
    groups = load_script_module("plot_results").load_runs(logs)
    assert {key: len(runs) for key, runs in groups.items()} == {(a, "MT-PointGoal-v0"): 2 for a in SWEEP_ALGOS}


def test_grid_and_study_errors(tmp_path: Path) -> None:
    assert [c.key for c in make_grid(["a", "b"], ["E"], [0, 1])] == ["a|E|0", "a|E|1", "b|E|0", "b|E|1"]
    assert Cell("a", "E", 3).run_folder("logs") == Path("logs/a/E_3")
    with pytest.raises(ValueError, match="at least one of seeds"):
        make_grid(["a"], ["E"], [])
    with pytest.raises(ValueError, match=r"The algos of a sweep must differ, got \['a', 'a'\]"):
        make_grid(["a", "a"], ["E"], [0])
    storage = make_storage(str(tmp_path / "s.log"))
    study = open_sweep(storage, "s", make_grid(["a"], ["E"], [0, 1]))
    assert [t.state for t in study.get_trials()] == [TrialState.WAITING] * 2
    joined = open_sweep(storage, "s", make_grid(["a"], ["E"], [0, 1]))
    assert joined.get_trials() == study.get_trials()  # joined, not enqueued again
    with pytest.raises(ValueError, match="holds another sweep"):
        open_sweep(storage, "s", make_grid(["a"], ["E"], [0, 1, 2]))
