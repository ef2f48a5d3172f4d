"""
Print a markdown table of success per method and task from ``scripts/train.py`` runs.

One table per env: a row per algorithm, a column per task plus the mean over tasks. A cell is the final evaluation
(``--stat final``, default) or the best one (``--stat best``, by mean over tasks) of each run, averaged over the runs
(seeds) as ``mean ± std``. Envs without a success signal show the mean evaluation reward.

Example::

    python scripts/results_table.py -f logs --env MT-MetaWorld-MT10-v0
"""

from __future__ import annotations

import argparse

import numpy as np
from plot_results import Run, load_runs


def run_result(run: Run, stat: str) -> np.ndarray:
    """:return: the run's per-task values (T,) at its final or best evaluation"""
    if stat == "final":
        return run.values[-1]
    return run.values[int(np.nanargmax(np.nanmean(run.values, axis=1)))]


def _cell(values: np.ndarray) -> str:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return "n/a"
    if values.size == 1:
        return f"{values[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std():.2f}"


def results_table(groups: dict[tuple[str, str], list[Run]], stat: str = "final") -> str:
    """:return: the markdown tables (one per env), separated by a blank line"""
    tables = []
    for env_id in sorted({env for _, env in groups}):
        env_groups = {algo: runs for (algo, env), runs in sorted(groups.items()) if env == env_id}
        first = next(iter(env_groups.values()))[0]
        metric = "success rate" if first.metric == "success_rate" else "mean reward"
        tasks = first.task_names
        lines = [
            f"**{env_id}** ({metric}, {stat} evaluation)",
            "",
            "| method | seeds | " + " | ".join(tasks) + " | mean |",
            "|---|---|" + "---|" * (len(tasks) + 1),
        ]
        for algo, runs in env_groups.items():
            per_run = np.stack([run_result(run, stat) for run in runs])  # (S, T)
            cells = [_cell(per_run[:, i]) for i in range(len(tasks))]
            lines.append(f"| {algo} | {len(runs)} | " + " | ".join(cells) + f" | {_cell(np.nanmean(per_run, axis=1))} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-f", "--log-folder", default="logs", help="log folder of train.py")
    parser.add_argument("--algos", nargs="+", default=None, help="algorithms to include (default: all)")
    parser.add_argument("--env", default=None, help="env id (default: all)")
    parser.add_argument("--stat", choices=["final", "best"], default="final", help="which evaluation of each run")
    args = parser.parse_args()
    groups = load_runs(args.log_folder, args.algos, args.env)
    if not groups:
        raise SystemExit(f"error: no run with evaluations.npz under {args.log_folder!r}")
    print(results_table(groups, args.stat))


if __name__ == "__main__":
    main()
