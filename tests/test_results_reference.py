"""
``results_table.py --write-reference`` builds a reference file from run folders, and ``--reference`` puts a user's
runs next to it and flags the runs outside its 95% interval; tested on synthetic run folders.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests._zoo_helpers import SCRIPTS, child_env

ENV = "MT-Synthetic-v0"
TASKS = ["reach", "push"]


def _run_folder(log_folder: Path, algo: str, run: int, final: list[float], timesteps: int = 200) -> Path:
    """A run folder as train.py writes it: evaluations.npz (2 evaluations) and <env>/run.yml."""
    path = log_folder / algo / f"{ENV}_{run}"
    (path / ENV).mkdir(parents=True)
    success = np.array([[0.0, 0.0], final])
    np.savez(
        path / "evaluations.npz", timesteps=[100, timesteps], task_names=TASKS, success_rate=success, mean_reward=-success
    )
    info = {"env_id": ENV, "algo": algo, "n_eval_episodes_per_task": 10, "versions": {"mtgym": "0.1", "metaworld": "3.1.1"}}
    (path / ENV / "run.yml").write_text(yaml.safe_dump(info))
    return path


def _table(*argv: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPTS / "results_table.py"), *argv]
    proc = subprocess.run(command, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=120)
    assert not check or proc.returncode == 0, proc.stderr
    return proc


def test_a_reference_is_built_from_runs_and_compared_with_yours(tmp_path: Path) -> None:
    for run, final in enumerate(([0.2, 0.4], [0.4, 0.6], [0.3, 0.5]), start=1):
        _run_folder(tmp_path / "sweep", "mtsac", run, final)
    _table("-f", "sweep", "--write-reference", "ref.json", "--protocol", "synthetic, 2 tasks", cwd=tmp_path)
    reference = json.loads((tmp_path / "ref.json").read_text())
    assert "--write-reference ref.json" in reference["command"]  # by default, the command that wrote it
    _table("-f", "sweep", "--write-reference", "ref.json", "--command", "python scripts/sweep.py --seeds 1 2 3", cwd=tmp_path)
    assert json.loads((tmp_path / "ref.json").read_text())["command"] == "python scripts/sweep.py --seeds 1 2 3"
    _table("-f", "sweep", "--write-reference", "ref.json", "--protocol", "synthetic, 2 tasks", cwd=tmp_path)
    reference = json.loads((tmp_path / "ref.json").read_text())
    entry = reference["results"][ENV]["mtsac"]
    assert reference["protocol"] == "synthetic, 2 tasks" and reference["versions"]["metaworld"] == "3.1.1"
    assert (entry["n_seeds"], entry["budget_timesteps"], entry["n_eval_episodes_per_task"]) == (3, 200, 10)
    # overall final success of the seeds: 0.3, 0.5, 0.4 -> mean 0.4, CI half-width t(2) * 0.1 / sqrt(3)
    half = 4.303 * 0.1 / np.sqrt(3)
    assert entry["final"]["overall"] == pytest.approx({"mean": 0.4, "ci95": half})
    assert entry["final"]["per_task"]["reach"] == pytest.approx({"mean": 0.3, "ci95": half})
    assert entry["best"]["per_task"]["push"] == pytest.approx({"mean": 0.5, "ci95": half})  # the best is the last here

    shown = _table("--show-reference", "ref.json", cwd=tmp_path).stdout
    assert "Reference: synthetic, 2 tasks" in shown and "| method | seeds | reach | push | final | best |" in shown
    assert f"| mtsac | 3 | 0.30 | 0.50 | 0.40 ± {half:.2f} | 0.40 ± {half:.2f} |" in shown

    _run_folder(tmp_path / "mine", "mtsac", 1, [0.3, 0.4])  # inside the interval (mean over tasks 0.35)
    outside = _run_folder(tmp_path / "mine", "mtsac", 2, [0.0, 0.0], timesteps=300)  # outside, and a longer budget
    output = _table("-f", "mine", "--reference", str(tmp_path / "ref.json"), cwd=tmp_path).stdout
    assert f"| reach | yours 0.15, reference 0.30 ± {half:.2f} |" in output
    assert f"| push | yours 0.20, reference 0.50 ± {half:.2f} (!) |" in output
    assert f"| mean | yours 0.17, reference 0.40 ± {half:.2f} |" in output
    assert (
        f"Outside the reference interval: {outside.relative_to(tmp_path)} (yours 0.00, reference 0.40 ± {half:.2f} (!))"
        in output
    )
    assert "Outside the reference interval: mine/mtsac/MT-Synthetic-v0_1" not in output
    assert "Not comparable" not in output  # the shortest run of the group ends at the reference budget

    _run_folder(tmp_path / "other", "care", 1, [0.3, 0.5])
    assert f"**{ENV}**, care: no reference" in _table("-f", "other", "--reference", "ref.json", cwd=tmp_path).stdout


def test_the_shipped_reference_is_the_mt10_sweep(tmp_path: Path) -> None:
    from importlib import resources

    # README's reference results: the small MT10 family, 5 methods x 3 seeds, made by scripts/sweep.py
    reference = json.loads(resources.files("mtsb3").joinpath("data/reference_results.json").read_text())
    methods = reference["results"]["MT-MetaWorld-MT10-v0"]
    assert set(methods) == {"mtsac", "mtmhsac", "care", "softmod", "pcgrad"}
    for entry in methods.values():
        assert (entry["n_seeds"], entry["budget_timesteps"], entry["n_eval_episodes_per_task"]) == (3, 100_000, 1)
        assert entry["tasks"][0] == "reach-v3" and len(entry["tasks"]) == 10
        assert 0.0 <= entry["final"]["overall"]["mean"] <= entry["best"]["overall"]["mean"] <= 1.0
    assert reference["command"].startswith("python scripts/sweep.py --algos mtmhsac mtsac care softmod pcgrad")
    assert reference["versions"]["metaworld"] == "3.1.1" and "hyperparams/small" in reference["protocol"]
    shown = _table("--show-reference", cwd=tmp_path).stdout
    assert shown.count("| 3 |") == 5 and "| mtmhsac | 3 |" in shown


def test_an_unreadable_reference_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text(json.dumps({"format": 0, "results": {}}))
    proc = _table("--show-reference", "old.json", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "error: old.json has format 0, expected 1" in proc.stderr
