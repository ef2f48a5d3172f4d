"""README's main job (train -> plot -> table on Meta-World MT10 with the CPU preset): at a tiny budget, and at its full budget
(``expensive``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests._zoo_helpers import HYPERPARAMS, run_scripts

#: the final mean success of the reference sweep's mtmhsac cells (README's main job) on seeds 0, 1 and 2: 0.2 each
MAIN_JOB_SUCCESS_MIN = 0.2

ENV_ID = "MT-MetaWorld-MT10-v0"
MT10 = [
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
]


def test_readme_main_job_at_a_tiny_budget(tmp_path: Path) -> None:
    pytest.importorskip("metaworld", reason="the main job needs the metaworld extra")
    # README command 1 with -n/--eval-freq shrunk: 150 vector steps of the 10 tasks, 50 of them with an update, one
    # evaluation (one 150-step episode per task) at the end
    train = ["--algo", "mtmhsac", "--env", ENV_ID, "-conf", str(HYPERPARAMS / "small"), "--seed", "0"]
    train += ["-n", "1500", "-params", "learning_starts:1000", "--eval-freq", "1500"]
    calls = [("train.py", train), ("plot_results.py", ["-f", "logs", "-o", "plots"]), ("results_table.py", ["-f", "logs"])]
    calls.append(("results_table.py", ["-f", "logs", "--reference"]))  # README's last command: next to the reference
    output = run_scripts(calls, tmp_path, timeout=600).stdout
    assert "mujoco: 3.3.0" in output  # train.py prints the package versions first
    for name in (f"{ENV_ID}_success.png", f"{ENV_ID}_per_task.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table, compared = output.split("=== RUN")[-2:]
    # the shipped reference has this job as a cell (3 seeds); a 1500-step run is flagged as not comparable
    assert "**MT-MetaWorld-MT10-v0**, mtmhsac (final evaluation, 1 runs; reference: 3 seeds)" in compared
    assert "| reach-v3 | yours 0.00, reference 0.67 ± " in compared
    assert "Not comparable: your runs end at 1500 timesteps, the reference at 100000" in compared
    assert f"| method | seeds | {' | '.join(MT10)} | mean |" in table
    row = next(line for line in table.splitlines() if line.startswith("| mtmhsac | 1 |"))
    assert len(row.strip("|").split("|")) == 2 + 10 + 1  # method, seeds, the ten tasks and the mean
    run_yml = yaml.safe_load((tmp_path / "logs" / "mtmhsac" / f"{ENV_ID}_1" / ENV_ID / "run.yml").read_text())
    assert run_yml["task_names"] == MT10
    assert run_yml["versions"]["mujoco"] == "3.3.0" and run_yml["versions"]["metaworld"] == "3.1.1"


@pytest.mark.expensive
def test_readme_main_job_at_its_full_budget(tmp_path: Path) -> None:
    # README's main job as it stands (seed 0, 100k timesteps, about 15 minutes of one CPU core): the same command as the
    # mtmhsac cells of the reference sweep (mtsb3/data/reference_results.json)
    pytest.importorskip("metaworld", reason="the main job needs the metaworld extra")
    train = ["--algo", "mtmhsac", "--env", ENV_ID, "-conf", str(HYPERPARAMS / "small"), "--seed", "0", "--no-progress"]
    run_scripts([("train.py", train)], tmp_path, timeout=3600)
    evaluations = np.load(tmp_path / "logs" / "mtmhsac" / f"{ENV_ID}_1" / "evaluations.npz")
    assert evaluations["timesteps"][-1] == 100_000
    assert evaluations["success_rate"][-1].mean() >= MAIN_JOB_SUCCESS_MIN, evaluations["success_rate"]
