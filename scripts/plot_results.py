"""
Plot training runs of ``scripts/train.py`` to PNG: mean success rate over tasks and per-task success curves.

It reads the ``evaluations.npz`` that ``MultiTaskEvalCallback`` writes into each run folder
(``<log folder>/<algo>/<env id>_<run>/``: timesteps, task names, per-task success rate and mean reward). Runs of the
same algorithm and env (several seeds) are drawn as their mean with a 95% confidence band (Student t over seeds).
Where the env has no success signal (e.g. HiP-BMDP), the mean evaluation reward is plotted instead.

Example::

    python scripts/plot_results.py -f logs --env MT-MetaWorld-MT10-v0 -o plots
    # -> plots/MT-MetaWorld-MT10-v0_success.png, plots/MT-MetaWorld-MT10-v0_per_task.png
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RUN_DIR = re.compile(r"^(?P<env>.+)_(?P<run>\d+)$")


@dataclass
class Run:
    """One run folder's evaluations."""

    algo: str
    env_id: str
    path: Path
    timesteps: np.ndarray  # (E,)
    task_names: list[str]
    values: np.ndarray  # (E, T): per-task success rate, or mean reward where success is undefined
    metric: str  # "success_rate" or "mean_reward"
    versions: dict | None = None  # package versions of the run (``versions`` in its run.yml), None for older runs


def load_versions(path: Path, env_id: str) -> dict | None:
    """:return: the package versions recorded in the run's ``<env id>/run.yml``, or ``None`` where there are none"""
    run_yml = path / env_id / "run.yml"
    if not run_yml.is_file():
        return None
    import yaml

    with open(run_yml) as f:
        return (yaml.safe_load(f) or {}).get("versions")


def load_run(path: Path, algo: str, env_id: str) -> Run | None:
    """:return: the run's evaluations, or ``None`` if the folder has none (yet)"""
    npz = path / "evaluations.npz"
    if not npz.is_file():
        return None
    data = np.load(npz, allow_pickle=False)
    if "task_names" in data:  # MultiTaskEvalCallback
        success = np.asarray(data["success_rate"], dtype=float)
        reward = np.asarray(data["mean_reward"], dtype=float)
        names = [str(n) for n in data["task_names"]]
    else:  # SB3's EvalCallback (non multi-task envs): the mean over episodes only
        reward = np.asarray(data["results"], dtype=float).mean(axis=1, keepdims=True)
        success = np.asarray(data["successes"], dtype=float).mean(axis=1, keepdims=True) if "successes" in data else None
        if success is not None and success.size != reward.size:
            success = None
        names = ["all"]
    timesteps = np.asarray(data["timesteps"], dtype=float)
    if timesteps.size == 0:
        return None
    versions = load_versions(path, env_id)
    if success is not None and not np.all(np.isnan(success)):
        return Run(algo, env_id, path, timesteps, names, success, "success_rate", versions)
    return Run(algo, env_id, path, timesteps, names, reward, "mean_reward", versions)


def load_runs(
    folder: str | Path, algos: list[str] | None = None, env_id: str | None = None
) -> dict[tuple[str, str], list[Run]]:
    """
    :param folder: the ``-f`` log folder of ``train.py``
    :param algos: keep these algorithms only
    :param env_id: keep this env only
    :return: ``(algo, env id) -> runs`` (one per seed)
    """
    groups: dict[tuple[str, str], list[Run]] = {}
    for algo_dir in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        if algos and algo_dir.name not in algos:
            continue
        for run_dir in sorted(p for p in algo_dir.iterdir() if p.is_dir()):
            match = RUN_DIR.match(run_dir.name)
            if match is None or (env_id is not None and match["env"] != env_id):
                continue
            run = load_run(run_dir, algo_dir.name, match["env"])
            if run is not None:
                groups.setdefault((run.algo, run.env_id), []).append(run)
    warn_mixed_simulators(groups)
    return groups


def warn_mixed_simulators(groups: dict[tuple[str, str], list[Run]]) -> None:
    """Warn about runs of one env made on other simulator versions than its first run: their physics differ."""
    from mtgym.versions import warn_if_simulators_differ

    for env_id in sorted({env for _, env in groups}):
        runs = [run for (_, env), env_runs in sorted(groups.items()) if env == env_id for run in env_runs if run.versions]
        for run in runs[1:]:
            warn_if_simulators_differ(run.versions, f"Run {run.path}", current=runs[0].versions)


def t_quantile_975(dof: int) -> float:
    """Two-sided 95% Student t quantile (a table is enough: no scipy dependency)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
    return table.get(dof, 2.0 if dof < 30 else 1.96)


def aggregate(runs: list[Run]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """
    Align the seeds on the evaluation steps they share and average them.

    :return: ``(timesteps (E,), mean (E, T), half-width of the 95% CI (E, T), task names)``; the CI is 0 with one seed
    """
    n_evals = min(len(run.timesteps) for run in runs)
    timesteps = runs[0].timesteps[:n_evals]
    stacked = np.stack([run.values[:n_evals] for run in runs])  # (S, E, T)
    mean = np.nanmean(stacked, axis=0)
    if len(runs) > 1:
        sem = np.nanstd(stacked, axis=0, ddof=1) / math.sqrt(len(runs))
        half = t_quantile_975(len(runs) - 1) * sem
    else:
        half = np.zeros_like(mean)
    return timesteps, mean, half, runs[0].task_names


def _band(ax, x: np.ndarray, mean: np.ndarray, half: np.ndarray, label: str) -> None:
    (line,) = ax.plot(x, mean, label=label)
    if np.any(half > 0):
        ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2)


def _format_axes(axes, metric: str, formatter) -> None:
    for ax in axes:
        ax.xaxis.set_major_formatter(formatter)  # 20k, 1M: readable under small panels
        if metric == "success_rate":
            ax.set_ylim(-0.05, 1.05)


def plot(groups: dict[tuple[str, str], list[Run]], out_dir: str | Path) -> list[Path]:
    """
    Write, per env, ``<env>_success.png`` (mean over tasks, one curve per algorithm) and ``<env>_per_task.png``
    (one panel per task).

    :return: the written files
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import EngFormatter
    except ImportError as e:
        raise ImportError("plot_results.py needs matplotlib: pip install mtgym[zoo]") from e

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for env_id in sorted({env for _, env in groups}):
        env_groups = {algo: runs for (algo, env), runs in sorted(groups.items()) if env == env_id}
        metric = next(iter(env_groups.values()))[0].metric
        ylabel = "success rate" if metric == "success_rate" else "mean evaluation reward"

        fig, ax = plt.subplots(figsize=(6, 4))
        for algo, runs in env_groups.items():
            x, mean, half, _ = aggregate(runs)
            label = f"{algo} ({len(runs)} seed{'s' * (len(runs) > 1)})"
            _band(ax, x, np.nanmean(mean, axis=1), np.nanmean(half, axis=1), label)
        ax.set(title=f"{env_id}: mean over tasks", xlabel="timesteps", ylabel=ylabel)
        _format_axes([ax], metric, EngFormatter())
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"{env_id}_success.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

        task_names = next(iter(env_groups.values()))[0].task_names
        n_cols = min(5, len(task_names))
        n_rows = math.ceil(len(task_names) / n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(3 * n_cols, 2.5 * n_rows), squeeze=False, sharex=True, sharey=True)
        for algo, runs in env_groups.items():
            x, mean, half, names = aggregate(runs)
            for i, name in enumerate(names):
                ax = axes[i // n_cols][i % n_cols]
                _band(ax, x, mean[:, i], half[:, i], algo)
                ax.set_title(name, fontsize=9)
        for ax in axes.flat[len(task_names) :]:
            ax.set_visible(False)
        _format_axes(axes.flat, metric, EngFormatter())
        axes[0][0].legend(fontsize=7)
        fig.supxlabel("timesteps")
        fig.supylabel(ylabel)
        fig.suptitle(f"{env_id}: per task")
        fig.tight_layout()
        path = out_dir / f"{env_id}_per_task.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-f", "--log-folder", default="logs", help="log folder of train.py")
    parser.add_argument("--algos", nargs="+", default=None, help="algorithms to plot (default: all)")
    parser.add_argument("--env", default=None, help="env id to plot (default: all)")
    parser.add_argument("-o", "--output", default="plots", help="output folder for the PNG files")
    args = parser.parse_args()
    groups = load_runs(args.log_folder, args.algos, args.env)
    if not groups:
        raise SystemExit(f"error: no run with evaluations.npz under {args.log_folder!r}")
    for path in plot(groups, args.output):
        print(f"Wrote {path}")


if __name__ == "__main__":
    main()
