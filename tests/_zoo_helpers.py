"""Run ``scripts/*.py`` in a child process: ``rl_zoo3`` patches Gymnasium on import, so never inside pytest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
