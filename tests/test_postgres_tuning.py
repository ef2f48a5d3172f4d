"""
Distributed Optuna tuning on a real PostgreSQL server: two ``train.py -optimize`` workers share one study; and a sweep
(``scripts/sweep.py``) whose killed worker's cell is re-run and resumed by the other workers.

The fixture starts a throwaway cluster with ``initdb``/``pg_ctl`` (Debian's ``postgresql`` package) on 127.0.0.1 in a
temporary folder and removes it afterwards. Without the server binaries or ``psycopg2`` the test is skipped with the
reason printed; CI installs both (``apt-get install -y postgresql``, ``pip install mtgym[test]``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests._zoo_helpers import SCRIPTS, child_env, kill_worker_mid_cell, sweep_worker
from tests.test_sweep import check_sweep_survived_a_killed_worker

CAP = 4


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 (trust auth, loopback only), torn down at the end."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "SKIPPED LOUDLY: the PostgreSQL server binaries (initdb, pg_ctl) are not installed, so the distributed "
            "tuning test cannot run. Install them with `apt-get install -y postgresql`."
        )
    pytest.importorskip("psycopg2", reason="SKIPPED LOUDLY: psycopg2 is missing; `pip install psycopg2-binary` (test extra)")
    # PostgreSQL refuses to run as root: use the package's `postgres` account then
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="mtsb3-pg-"))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            pytest.skip("SKIPPED LOUDLY: running as root and there is no `postgres` user to run the server as")
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    init = [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
    subprocess.run(init, check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    start = [*as_user, pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-o", options, "-w", "-t", "60", "start"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _worker(url: str, log_folder: Path, output: Path) -> subprocess.Popen:
    argv = ["--algo", "mtsac", "--env", "MT-PointGoal-v0", "-f", str(log_folder), "--num-threads", "1"]
    # trials of a few seconds: 40 vector steps, 20 of them with 2 updates, one evaluation of 1 episode per task
    argv += ["-n", "160", "-params", "learning_starts:80", "--eval-episodes", "1"]
    argv += ["-optimize", "--storage", url, "--study-name", "distributed", "--max-total-trials", str(CAP)]
    argv += ["--sampler", "random", "--pruner", "none", "--heartbeat-interval", "1", "--grace-period", "4"]
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / "train.py"), *argv],
        env=child_env(),
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        cwd=log_folder.parent,
    )


def _trials(storage: optuna.storages.RDBStorage) -> list[optuna.trial.FrozenTrial]:
    with contextlib.suppress(KeyError):  # the study does not exist before the first worker creates it
        return optuna.load_study(study_name="distributed", storage=storage).get_trials(deepcopy=False)
    return []


def test_two_workers_share_a_capped_study_and_survive_a_killed_worker(postgres_url: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    # create Optuna's tables once, before the workers (concurrent CREATE TABLE of two fresh workers can collide)
    storage = optuna.storages.RDBStorage(postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    survivor = _worker(postgres_url, logs, tmp_path / "survivor.out")
    victim = _worker(postgres_url, logs, tmp_path / "victim.out")
    try:
        # kill the victim in the middle of one of its trials (the objective tags each trial with its worker)
        deadline = time.monotonic() + 240
        victim_trial = None
        while victim_trial is None and time.monotonic() < deadline:
            for t in _trials(storage):
                if t.state == TrialState.RUNNING and str(t.user_attrs.get("worker", "")).endswith(f":{victim.pid}"):
                    victim_trial = t.number
            if victim_trial is None:
                assert victim.poll() is None, (tmp_path / "victim.out").read_text()[-3000:]
                time.sleep(0.1)
        assert victim_trial is not None, "the victim worker never started a trial"
        victim.kill()
        victim.wait()
        assert survivor.wait(timeout=300) == 0, (tmp_path / "survivor.out").read_text()[-3000:]
    finally:
        for proc in (survivor, victim):
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    trials = _trials(storage)
    print("\n| trial | state | value | worker |\n|---|---|---|---|")
    for t in trials:
        print(f"| {t.number} | {t.state.name} | {t.value} | {t.user_attrs.get('worker')} |")
    states = {t.number: t.state for t in trials}
    # the killed worker's trial was failed through the heartbeat (not left RUNNING forever) ...
    assert states[victim_trial] == TrialState.FAIL
    assert TrialState.RUNNING not in states.values()
    # ... and the surviving worker finished the study: exactly CAP counted trials, all complete (no pruner)
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)]
    assert len(counted) == CAP
    assert all(t.state == TrialState.COMPLETE for t in counted)
    assert all(0.0 <= t.value <= 1.0 for t in counted)  # mean success rate over the 4 goals
    # both workers contributed (the victim's trials before the kill count too)
    workers = {str(t.user_attrs.get("worker")).rsplit(":", 1)[-1] for t in trials}
    assert str(survivor.pid) in workers and str(victim.pid) in workers
    survivor_out = (tmp_path / "survivor.out").read_text()
    assert f"Trial {victim_trial} of study 'distributed' was marked FAILED" in survivor_out


def test_a_sweep_on_postgresql_reruns_and_resumes_a_killed_workers_cell(postgres_url: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    storage = optuna.storages.RDBStorage(postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    killed_run = kill_worker_mid_cell(postgres_url, logs, tmp_path / "victim.out")
    survivors = sweep_worker(postgres_url, logs, 2, tmp_path / "survivors.out")
    try:
        assert survivors.wait(timeout=600) == 0, (tmp_path / "survivors.out").read_text()[-4000:]
    finally:
        if survivors.poll() is None:
            survivors.kill()
            survivors.wait()
    check_sweep_survived_a_killed_worker(storage, logs, killed_run)
