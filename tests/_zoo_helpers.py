"""Run ``scripts/*.py`` in a child process: ``rl_zoo3`` patches Gymnasium on import, so never inside pytest."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
HYPERPARAMS = ROOT / "hyperparams"

#: runs several script invocations in one interpreter (imports paid once); a non-zero SystemExit stops it
DRIVER = """
import json, os, runpy, sys
for script, argv in json.loads(sys.argv[1]):
    print("=== RUN", script, *argv, flush=True)
    sys.argv = [script, *argv]
    sys.path.insert(0, os.path.dirname(script))  # as `python scripts/<name>.py` does
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
    print("=== DONE", flush=True)
"""


def load_script_module(name: str) -> Any:
    """:return: ``scripts/<name>.py`` imported as a module (only for scripts that do not import rl_zoo3)"""
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def child_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}


def run_scripts(calls: list[tuple[str, list[str]]], cwd: Path, timeout: float = 600, check: bool = True):
    """
    :param calls: ``(script file name in scripts/, argv)`` pairs, run in order in one child process
    :param cwd: working directory (the ``logs`` folder goes there)
    :return: the completed process (stdout and stderr merged into ``stdout``)
    """
    payload = json.dumps([(str(SCRIPTS / script), list(argv)) for script, argv in calls])
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, payload],
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"scripts failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


#: a tiny sweep: 2 methods x 2 seeds on the 4-goal env, 8 episodes per sub-env, a checkpoint after every 2 episodes
SWEEP_ALGOS, SWEEP_SEEDS = ("mtsac", "mtmhsac"), (0, 1)
SWEEP_TRAIN_ARGS = ["-n", "960", "-params", "learning_starts:120", "--eval-freq", "240", "--eval-episodes", "1"]


def sweep_worker(storage: str, log_folder: Path, workers: int, output: Path) -> subprocess.Popen:
    """Start ``scripts/sweep.py`` (the tiny sweep) with 1-second heartbeats and a 4-second grace period."""
    argv = ["--algos", *SWEEP_ALGOS, "--envs", "MT-PointGoal-v0", "--seeds", *map(str, SWEEP_SEEDS), "-f", str(log_folder)]
    argv += ["--storage", storage, "--workers", str(workers), "--heartbeat-interval", "1", "--grace-period", "4"]
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / "sweep.py"), *argv, "--", *SWEEP_TRAIN_ARGS],
        env=child_env(),
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        cwd=log_folder.parent,
    )


def kill_worker_mid_cell(storage: str, log_folder: Path, output: Path, timeout: float = 240) -> Path:
    """
    Start a one-worker sweep and SIGKILL it once its cell has written a checkpoint, before the cell ends.

    :return: the run folder of the killed cell
    """
    victim = sweep_worker(storage, log_folder, 1, output)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            checkpoints = sorted(log_folder.glob("*/*/checkpoints/step_*"))
            if checkpoints:
                victim.kill()
                victim.wait()
                run_folder = checkpoints[0].parent.parent
                assert not (run_folder / "MT-PointGoal-v0.zip").exists(), "the cell ended before the kill"
                return run_folder
            assert victim.poll() is None, output.read_text()[-3000:]
            time.sleep(0.05)
        raise AssertionError(f"the victim wrote no checkpoint in {timeout} s:\n{output.read_text()[-3000:]}")
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
