"""README's main job (train -> plot -> table on Meta-World MT10 with the CPU preset) at a tiny budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests._zoo_helpers import HYPERPARAMS, run_scripts

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
    train = ["--algo", "mtsac", "--env", ENV_ID, "-conf", str(HYPERPARAMS / "small.yml"), "--seed", "0"]
    train += ["-n", "1500", "-params", "learning_starts:1000", "--eval-freq", "1500"]
    calls = [("train.py", train), ("plot_results.py", ["-f", "logs", "-o", "plots"]), ("results_table.py", ["-f", "logs"])]
    output = run_scripts(calls, tmp_path, timeout=600).stdout
    assert "mujoco: 3.3.0" in output  # train.py prints the package versions first
    for name in (f"{ENV_ID}_success.png", f"{ENV_ID}_per_task.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = output.split("=== RUN")[-1]
    assert f"| method | seeds | {' | '.join(MT10)} | mean |" in table
    row = next(line for line in table.splitlines() if line.startswith("| mtsac | 1 |"))
    assert len(row.strip("|").split("|")) == 2 + 10 + 1  # method, seeds, the ten tasks and the mean
    run_yml = yaml.safe_load((tmp_path / "logs" / "mtsac" / f"{ENV_ID}_1" / ENV_ID / "run.yml").read_text())
    assert run_yml["task_names"] == MT10
    assert run_yml["versions"]["mujoco"] == "3.3.0" and run_yml["versions"]["metaworld"] == "3.1.1"
