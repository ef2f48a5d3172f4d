"""
Print a markdown table of success per method and task from ``scripts/train.py`` runs, and compare them with a
reference results file.

One table per env: a row per algorithm, a column per task plus the mean over tasks. A cell is the final evaluation
(``--stat final``, default) or the best one (``--stat best``, by mean over tasks) of each run, averaged over the runs
(seeds) as ``mean ± std``. Envs without a success signal show the mean evaluation reward.

``--reference [FILE]`` puts your runs next to a reference file (by default the one shipped as
``mtsb3/data/reference_results.json``): a cell reads ``yours 0.34, reference 0.31 ± 0.05`` (reference mean over its
seeds ± half-width of its 95% confidence interval), marked ``(!)`` when your mean lies outside that interval, and every
run whose mean over tasks lies outside it is listed. ``--show-reference [FILE]`` prints a reference file as tables.
``--write-reference FILE`` builds such a file from run folders (e.g. a sweep's, ``scripts/sweep.py``): per env, method
and task, the mean and 95% CI over seeds of the final and the best evaluation, with the budget, the protocol, the
command and the package versions of the runs.

Example::

    python scripts/results_table.py -f logs --env MT-MetaWorld-MT10-v0 --reference
    python scripts/results_table.py -f logs/sweep --write-reference reference_results.json --protocol "mtrl MT10, 1 episode" \\
        --command "python scripts/sweep.py ..."
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from plot_results import Run, load_runs, t_quantile_975

#: the reference results shipped with the package (absent until a reference sweep has been run)
SHIPPED_REFERENCE = "data/reference_results.json"
REFERENCE_FORMAT = 1


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


def _mean_ci(values: np.ndarray) -> dict[str, float]:
    """:return: the mean over seeds and the half-width of its 95% Student-t interval (0 for one seed)"""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"mean": float("nan"), "ci95": float("nan")}
    half = t_quantile_975(values.size - 1) * values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else 0.0
    return {"mean": float(values.mean()), "ci95": float(half)}


def _run_info(run: Run) -> dict[str, Any]:
    """:return: the run's ``<env id>/run.yml`` (written by train.py), empty where there is none"""
    import yaml

    path = run.path / run.env_id / "run.yml"
    if not path.is_file():
        return {}
    with open(path) as f:
        return yaml.safe_load(f) or {}


def reference_entry(runs: list[Run]) -> dict[str, Any]:
    """:return: the reference of one method on one env: per task and overall, mean and 95% CI of final and best"""
    entry: dict[str, Any] = {
        "metric": runs[0].metric,
        "n_seeds": len(runs),
        "budget_timesteps": int(min(run.timesteps[-1] for run in runs)),
        "n_eval_episodes_per_task": _run_info(runs[0]).get("n_eval_episodes_per_task"),
        "tasks": list(runs[0].task_names),
    }
    for stat in ("final", "best"):
        per_run = np.stack([run_result(run, stat) for run in runs])  # (S, T)
        entry[stat] = {
            "per_task": {task: _mean_ci(per_run[:, i]) for i, task in enumerate(runs[0].task_names)},
            "overall": _mean_ci(np.nanmean(per_run, axis=1)),
        }
    return entry


def build_reference(groups: dict[tuple[str, str], list[Run]], protocol: str, command: str) -> dict[str, Any]:
    """
    :param groups: the runs (:func:`plot_results.load_runs`)
    :param protocol: how the runs were made (env protocol, budget, evaluation), in words
    :param command: the command that made the runs
    :return: the reference results (JSON-ready)
    """
    first = next(iter(groups.values()))[0]
    results: dict[str, dict[str, Any]] = {}
    for (algo, env_id), runs in sorted(groups.items()):
        results.setdefault(env_id, {})[algo] = reference_entry(runs)
    return {
        "format": REFERENCE_FORMAT,
        "protocol": protocol,
        "command": command,
        "versions": first.versions,
        "results": results,
    }


def load_reference(path: str | None) -> dict[str, Any]:
    """:return: the reference file at ``path``, or the shipped one for ``None``"""
    if path is None:
        shipped = resources.files("mtsb3").joinpath(SHIPPED_REFERENCE)
        if not shipped.is_file():
            raise SystemExit(
                f"error: this version of mtsb3 ships no reference results (mtsb3/{SHIPPED_REFERENCE}); "
                "pass a reference file: --reference FILE"
            )
        text = shipped.read_text()
    else:
        text = Path(path).read_text()
    reference = json.loads(text)
    if reference.get("format") != REFERENCE_FORMAT:
        raise SystemExit(
            f"error: {path or SHIPPED_REFERENCE} has format {reference.get('format')!r}, expected {REFERENCE_FORMAT}"
        )
    return reference


def reference_table(reference: dict[str, Any]) -> str:
    """
    :return: the reference as markdown, one table per env: a row per method, the final evaluation's mean over seeds per
        task, then the final and the best mean over tasks as mean ± half-width of the 95% interval over seeds
    """
    tables = [f"Reference: {reference.get('protocol', '')}"]
    for env_id, methods in sorted(reference["results"].items()):
        tasks = next(iter(methods.values()))["tasks"]
        lines = ["", f"**{env_id}** (per task: final evaluation, mean over seeds)", ""]
        lines += ["| method | seeds | " + " | ".join(tasks) + " | final | best |", "|---|---|" + "---|" * (len(tasks) + 2)]
        for algo, entry in sorted(methods.items()):
            per_task = [f"{entry['final']['per_task'][task]['mean']:.2f}" for task in tasks]
            overall = [
                f"{entry[stat]['overall']['mean']:.2f} ± {entry[stat]['overall']['ci95']:.2f}" for stat in ("final", "best")
            ]
            lines.append(f"| {algo} | {entry['n_seeds']} | " + " | ".join(per_task + overall) + " |")
        tables.append("\n".join(lines))
    return "\n".join(tables)


def _compared(yours: float, ref: dict[str, float]) -> tuple[str, bool]:
    outside = bool(abs(yours - ref["mean"]) > ref["ci95"])
    return f"yours {yours:.2f}, reference {ref['mean']:.2f} ± {ref['ci95']:.2f}{' (!)' if outside else ''}", outside


def comparison_table(groups: dict[tuple[str, str], list[Run]], reference: dict[str, Any], stat: str = "final") -> str:
    """
    :return: per env, your mean over seeds next to the reference (``yours x, reference m ± h``), ``(!)`` outside the
        interval, then the runs whose mean over tasks is outside it, and a note where the budgets differ
    """
    lines = [f"Reference: {reference.get('protocol', '')}"]
    for (algo, env_id), runs in sorted(groups.items()):
        ref = reference["results"].get(env_id, {}).get(algo)
        lines.append("")
        if ref is None:
            lines.append(f"**{env_id}**, {algo}: no reference")
            continue
        per_run = np.stack([run_result(run, stat) for run in runs])  # (S, T)
        lines += [f"**{env_id}**, {algo} ({stat} evaluation, {len(runs)} runs; reference: {ref['n_seeds']} seeds)", ""]
        lines += ["| task | " + ("success rate" if ref["metric"] == "success_rate" else "mean reward") + " |", "|---|---|"]
        for i, task in enumerate(runs[0].task_names):
            if task in ref[stat]["per_task"]:
                lines.append(f"| {task} | {_compared(float(np.nanmean(per_run[:, i])), ref[stat]['per_task'][task])[0]} |")
        overall = np.nanmean(per_run, axis=1)
        lines.append(f"| mean | {_compared(float(overall.mean()), ref[stat]['overall'])[0]} |")
        for run, value in zip(runs, overall, strict=True):
            text, outside = _compared(float(value), ref[stat]["overall"])
            if outside:
                lines.append(f"Outside the reference interval: {run.path} ({text})")
        budget = int(min(run.timesteps[-1] for run in runs))
        if budget != ref["budget_timesteps"]:
            lines.append(f"Not comparable: your runs end at {budget} timesteps, the reference at {ref['budget_timesteps']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-f", "--log-folder", default="logs", help="log folder of train.py")
    parser.add_argument("--algos", nargs="+", default=None, help="algorithms to include (default: all)")
    parser.add_argument("--env", default=None, help="env id (default: all)")
    parser.add_argument("--stat", choices=["final", "best"], default="final", help="which evaluation of each run")
    parser.add_argument(
        "--reference", nargs="?", const="", default=None, help="compare with a reference file (default: shipped)"
    )
    parser.add_argument(
        "--show-reference", nargs="?", const="", default=None, help="print a reference file as tables (default: shipped)"
    )
    parser.add_argument("--write-reference", default=None, help="write the runs as a reference file (JSON)")
    parser.add_argument("--protocol", default="", help="with --write-reference: the protocol of the runs, in words")
    parser.add_argument(
        "--command", default=None, help="with --write-reference: the command that made the runs (default: this one)"
    )
    args = parser.parse_args()
    if args.show_reference is not None:
        print(reference_table(load_reference(args.show_reference or None)))
        return
    groups = load_runs(args.log_folder, args.algos, args.env)
    if not groups:
        raise SystemExit(f"error: no run with evaluations.npz under {args.log_folder!r}")
    if args.write_reference is not None:
        reference = build_reference(groups, args.protocol, args.command or " ".join(sys.orig_argv))
        Path(args.write_reference).write_text(json.dumps(reference, indent=1) + "\n")
        print(f"Wrote {args.write_reference}")
    if args.reference is not None:
        print(comparison_table(groups, load_reference(args.reference or None), args.stat))
    else:
        print(results_table(groups, args.stat))


if __name__ == "__main__":
    main()
