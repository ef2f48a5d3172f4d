"""
Run a grid of methods x env ids x seeds as one Optuna study, one trial per cell (:mod:`mtsb3.zoo.sweep`).

Each cell is ``train.py --algo A --env E --seed S --run-folder <log folder>/A/E_S [train.py options]``, an ordinary run
folder that ``plot_results.py`` and ``results_table.py`` read. ``--workers N`` runs N local workers on one journal file
(the default storage, ``<log folder>/sweep.log``); with ``--storage postgresql://...`` the same command on several
machines makes each one a worker. A worker that dies is noticed by its heartbeat after ``--grace-period`` seconds, and
its cell runs again, resuming from the run folder's last checkpoint. Run the command again to join or finish a sweep.
Options after ``--`` go to every ``train.py``.

Example::

    python scripts/sweep.py --algos mtsac care --envs MT-MetaWorld-MT10-v0 --seeds 0 1 2 -f logs/sweep --workers 2 \\
        -- -n 200000 --eval-episodes 1
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
from pathlib import Path

TRAIN = Path(__file__).resolve().parent / "train.py"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """:return: the sweep options, and the ``train.py`` options (after ``--``)"""
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", required=True, help="methods (train.py --algo names)")
    parser.add_argument("--envs", nargs="+", required=True, help="env ids")
    parser.add_argument("--seeds", nargs="+", type=int, required=True, help="seeds")
    parser.add_argument("-f", "--log-folder", default="logs/sweep", help="where the cells' run folders go")
    parser.add_argument("--storage", default=None, help="a *.log journal file (default <log folder>/sweep.log) or a URL")
    parser.add_argument("--study-name", default="sweep", help="the study (one per sweep)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--heartbeat-interval", type=int, default=60, help="seconds between heartbeats of a running cell")
    parser.add_argument("--grace-period", type=int, default=None, help="seconds without heartbeat: the worker is dead")
    parser.add_argument("--max-retry", type=int, default=3, help="how often a dead worker's cell is run again")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if args.max_retry < 1:
        parser.error(f"--max-retry must be >= 1, got {args.max_retry}")
    if args.storage is None:
        args.storage = str(Path(args.log_folder) / "sweep.log")
    return args, extra


def worker_argv(argv: list[str]) -> list[str]:
    """:return: ``argv`` with ``--workers 1``: the command line of one local worker"""
    i = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:i], argv[i:]
    kept = []
    skip = False
    for arg in head:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    return [*kept, "--workers", "1", *tail]


def main() -> None:
    from mtsb3.zoo.cli import ZooOptions
    from mtsb3.zoo.storage import make_storage
    from mtsb3.zoo.sweep import die_with_parent, make_grid, open_sweep, run_worker, sweep_summary, train_cell

    args, extra = parse_args(sys.argv[1:])
    options = ZooOptions(args.heartbeat_interval, args.grace_period, retry_failed_trials=args.max_retry)
    study = open_sweep(make_storage(args.storage, options), args.study_name, make_grid(args.algos, args.envs, args.seeds))
    if args.workers == 1:
        run_cell = functools.partial(train_cell, log_folder=args.log_folder, train_command=[sys.executable, str(TRAIN)])
        run_worker(study, functools.partial(run_cell, extra_args=extra), wait_s=min(args.heartbeat_interval, 5))
    else:
        command = [sys.executable, __file__, *worker_argv(sys.argv[1:])]
        workers = [subprocess.Popen(command, preexec_fn=die_with_parent) for _ in range(args.workers)]
        for worker in workers:
            worker.wait()
    table, done = sweep_summary(study)
    print(table)
    if not done:
        raise SystemExit("error: some cells are not COMPLETE (see the table and their train.log)")


if __name__ == "__main__":
    main()
