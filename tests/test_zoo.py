"""
RL Zoo3 integration: ``scripts/train.py`` for every named method, ``enjoy.py``, Optuna tuning on a journal file,
``--trial-id 0``, clear errors, and the results tooling. The scripts run in child processes (``tests/_zoo_helpers``).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from mtsb3 import MTSAC, TaskBalancedReplayBuffer, make_mt_vec_env
from mtsb3.common.resume import list_checkpoints
from mtsb3.zoo import (
    NET_ARCHS,
    ZOO_ALGOS,
    EnvInfo,
    _merge_hyperparams,
    apply_recipe,
    available_algos,
    convert_mtsac_params,
    env_info,
    evaluation_score,
    make_storage,
    prepare_train_argv,
    register_zoo,
    sample_brc_params,
    sample_cagrad_params,
    sample_famo_params,
    sample_gradnorm_params,
    sample_mtsac_params,
    sample_paco_params,
    sample_uw_params,
)
from mtsb3.zoo.hyperparams import resolve_replay_buffer_class
from tests._zoo_helpers import HYPERPARAMS, load_script_module, run_scripts

POINT_GOAL = "MT-PointGoal-v0"
PIXEL_ENV = "MT-HiPBMDP-Finger-Spin-vary-size-v0"
PIXEL_ALGOS = {"sacae", "deepmdp", "hipbmdp"}
GOALS = ["goal_0", "goal_1", "goal_2", "goal_3"]
ALGOS = available_algos()


def _train_argv(algo: str) -> list[str]:
    common = ["--algo", algo, "--seed", "0", "-f", "logs", "--num-threads", "1"]
    if algo in PIXEL_ALGOS:  # DMC physics + rendering: a few steps, no evaluation
        small = str(HYPERPARAMS / "small")
        return [*common, "--env", PIXEL_ENV, "-conf", small, "-n", "64", "-params", "learning_starts:32"]
    # 4 sub-envs: 60 vector steps, 30 of them with 2 updates each, one evaluation (1 episode per task) at the end
    evaluation = ["--eval-freq", "240", "--eval-episodes", "1"]
    return [*common, "--env", POINT_GOAL, "-n", "240", "-params", "learning_starts:120", *evaluation]


def _enjoy_argv(algo: str) -> list[str]:
    env, steps = (PIXEL_ENV, "8") if algo in PIXEL_ALGOS else (POINT_GOAL, "70")
    return ["--algo", algo, "--env", env, "-f", "logs", "-n", steps, "--no-render", "--num-threads", "1"]


@pytest.fixture(scope="module")
def zoo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Train every available method on its small preset, then enjoy each result; one child process."""
    cwd = tmp_path_factory.mktemp("zoo")
    calls = [("train.py", _train_argv(algo)) for algo in ALGOS]
    calls += [("enjoy.py", _enjoy_argv(algo)) for algo in ALGOS]
    calls.append(("train.py", _overlap_argv()))
    output = run_scripts(calls, cwd, timeout=900).stdout
    sections = output.split("=== RUN ")[1:]
    logs = {}
    for section in sections:
        kind = "train" if section.split()[0].endswith("train.py") else "enjoy"
        algo = "overlap" if OVERLAP_LOGS in section.split("\n")[0] else section.split("--algo ")[1].split()[0]
        logs[f"{kind}:{algo}"] = section
    return cwd, logs


OVERLAP_LOGS = "logs_overlap"


def _overlap_argv() -> list[str]:
    """mtsac with the preset keys of overlapped collection (a DummyVecEnv would make the model constructor raise)."""
    argv = _train_argv("mtsac")
    argv[argv.index("logs")] = OVERLAP_LOGS
    params = argv.index("-params") + 1
    argv[params + 1 : params + 1] = ["overlap_collection:True", "vec_env:'subproc'"]
    return argv


def test_preset_keys_turn_on_overlapped_collection(zoo_runs: tuple[Path, dict[str, str]]) -> None:
    cwd, logs = zoo_runs
    run = cwd / OVERLAP_LOGS / "mtsac" / f"{POINT_GOAL}_1"
    assert (run / f"{POINT_GOAL}.zip").is_file(), logs["train:overlap"][-3000:]
    info = yaml.safe_load((run / POINT_GOAL / "run.yml").read_text())
    assert info["hyperparameters"]["overlap_collection"] is True
    assert "vec_env" not in info["hyperparameters"]  # a zoo-only key: not given to the model
    assert np.load(run / "evaluations.npz")["timesteps"].tolist() == [240]


def test_every_named_method_is_registered() -> None:
    # the methods of this repository are all importable; a missing one would silently shrink the tests below
    assert set(ZOO_ALGOS) == {
        *("mtsac", "mtsac_te", "mtmhsac", "film", "softmod", "care"),
        *("pcgrad", "gradnorm", "cagrad", "distral", "sacae", "deepmdp", "hipbmdp"),
        "moore",
        "paco",
        "brc",
        *("famo", "uw"),
    }
    missing = sorted(set(ZOO_ALGOS) - set(ALGOS))
    assert not missing, f"not importable: {missing}"
    for name in ZOO_ALGOS:
        assert (HYPERPARAMS / f"{name}.yml").is_file()


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_train_writes_a_multi_task_run_folder(zoo_runs: tuple[Path, dict[str, str]], algo: str) -> None:
    cwd, logs = zoo_runs
    env_id = PIXEL_ENV if algo in PIXEL_ALGOS else POINT_GOAL
    run = cwd / "logs" / algo / f"{env_id}_1"
    assert (run / f"{env_id}.zip").is_file(), logs[f"train:{algo}"][-3000:]
    info = yaml.safe_load((run / env_id / "run.yml").read_text())
    assert info["env_id"] == env_id
    assert info["algo"] == algo
    cls = ALGOS[algo]
    assert info["algo_class"] == f"{cls.__module__}.{cls.__qualname__}"
    assert info["hyperparameters"]["policy"] == "MultiTaskPolicy"
    monitors = sorted(p.name.split("-")[0] for p in run.glob("task*.monitor.csv"))
    if algo in PIXEL_ALGOS:
        # HiP-BMDP trains on its train split, one sub-env per task (mtrl/experiment/multitask.py, run)
        assert monitors == ["task3", "task4", "task7", "task8"]
        assert len(info["task_names"]) == 10
        assert info["n_envs"] == 4
        assert [p.name for p in list_checkpoints(run)] == ["step_000000000064"]  # no evaluation: at the end only
        return
    assert info["task_names"] == GOALS
    assert monitors == ["task0", "task1", "task2", "task3"]  # one sub-env per task
    assert info["n_envs"] == 4
    assert info["n_eval_episodes_per_task"] == 1
    if ZOO_ALGOS[algo].cls == "mtsb3:MTSAC":
        recipe = yaml.safe_load((HYPERPARAMS / f"{algo}.yml").read_text())[POINT_GOAL]["recipe"]
        assert info["recipe"] == recipe
        assert "features_extractor_class" in info["hyperparameters"]["policy_kwargs"]
    # MultiTaskEvalCallback: per-task success in evaluations.npz and in progress.csv (TensorBoard gets the same keys)
    evaluations = np.load(run / "evaluations.npz")
    assert list(evaluations["task_names"]) == GOALS
    assert evaluations["timesteps"].tolist() == [240]
    assert evaluations["success_rate"].shape == (1, 4)
    with open(run / "progress.csv") as f:
        header = next(csv.reader(f))
    assert "eval/success_rate" in header
    assert all(f"eval/{goal}/success_rate" in header for goal in GOALS)
    # PerTaskRolloutCallback: per-task training episodes next to the aggregate, in progress.csv and on stdout
    assert "rollout/success_rate" in header
    assert all(f"rollout/{goal}/{key}" in header for goal in GOALS for key in ("success_rate", "ep_rew_mean"))
    assert "|    goal_3/ep_rew_mean  |" in logs[f"train:{algo}"]
    # a run checkpoint after the evaluation (at 240 timesteps, the end)
    assert [p.name for p in list_checkpoints(run)] == ["step_000000000240"]


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_enjoy_loads_the_trained_agent(zoo_runs: tuple[Path, dict[str, str]], algo: str) -> None:
    _, logs = zoo_runs
    output = logs[f"enjoy:{algo}"]
    env_id = PIXEL_ENV if algo in PIXEL_ALGOS else POINT_GOAL
    assert f"Loading logs/{algo}/{env_id}_1/{env_id}.zip" in output
    assert "=== DONE" in output, output[-3000:]
    if algo not in PIXEL_ALGOS:
        # 70 steps of 30-step episodes on 4 sub-envs (one per task): 2 episodes per task
        for goal in GOALS:
            assert f"| {goal} | 2 |" in output, output[-2000:]
        assert "Mean success rate over tasks:" in output


def test_plot_results_and_table(zoo_runs: tuple[Path, dict[str, str]]) -> None:
    pytest.importorskip("matplotlib", reason="plot_results.py needs matplotlib (the zoo extra)")
    cwd, _ = zoo_runs
    out = run_scripts(
        [("plot_results.py", ["-f", "logs", "--env", POINT_GOAL, "-o", "plots"]), ("results_table.py", ["-f", "logs"])], cwd
    ).stdout
    for name in (f"{POINT_GOAL}_success.png", f"{POINT_GOAL}_per_task.png"):
        png = cwd / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"| method | seeds | {' | '.join(GOALS)} | mean |" in out
    for algo in ALGOS:
        if algo not in PIXEL_ALGOS:
            assert f"| {algo} | 1 |" in out


def test_seeds_are_averaged_with_a_confidence_band() -> None:
    plot_results = load_script_module("plot_results")
    results_table = load_script_module("results_table")
    runs = [
        plot_results.Run("mtsac", "E", Path("."), np.array([10.0, 20.0, 30.0]), ["a", "b"], values, "success_rate")
        for values in (np.array([[0, 0], [0.5, 1], [1, 1]]), np.array([[0, 0], [0.0, 1], [1, 0]]))
    ]
    runs[1].timesteps = np.array([10.0, 20.0])  # a shorter seed: aligned on the shared evaluations
    runs[1].values = runs[1].values[:2]
    x, mean, half, names = plot_results.aggregate(runs)
    assert x.tolist() == [10.0, 20.0] and names == ["a", "b"]
    np.testing.assert_allclose(mean, [[0, 0], [0.25, 1]])
    # 2 seeds: t(0.975, 1) * std / sqrt(2) = 12.706 * 0.3536 / 1.4142
    np.testing.assert_allclose(half, [[0, 0], [12.706 * 0.5 / 2, 0]], rtol=1e-4)
    table = results_table.results_table({("mtsac", "E"): runs})
    # final evaluations: seed 0 [1, 1], seed 1 [0, 1]
    assert "| mtsac | 2 | 0.50 ± 0.50 | 1.00 ± 0.00 | 0.75 ± 0.25 |" in table


def test_samplers_and_converter() -> None:
    params = {"one_minus_gamma": 0.01, "batch_size_pow": 8, "learning_rate": 1e-3, "tau": 0.01, "net_arch": "mtrl"}
    hyperparams = sample_mtsac_params(optuna.trial.FixedTrial(params), 4, 10, {})
    assert hyperparams == {
        "gamma": 0.99,
        "batch_size": 256,
        "learning_rate": 1e-3,
        "tau": 0.01,
        "policy_kwargs": {"net_arch": NET_ARCHS["mtrl"]},
    }
    # --trial-id replays go through the converter on the stored raw params
    assert convert_mtsac_params(params) == hyperparams
    gradnorm = sample_gradnorm_params(optuna.trial.FixedTrial({**params, "grad__alpha": 1.5}), 4, 10, {})
    assert gradnorm["grad_method_kwargs"] == {"alpha": 1.5}
    cagrad = sample_cagrad_params(optuna.trial.FixedTrial({**params, "grad__c": 0.4}), 4, 10, {})
    assert cagrad["grad_method_kwargs"] == {"c": 0.4}
    famo = sample_famo_params(optuna.trial.FixedTrial({**params, "grad__lr": 0.02, "grad__gamma": 1e-3}), 4, 10, {})
    assert famo["grad_method_kwargs"] == {"lr": 0.02, "gamma": 1e-3}
    uw = sample_uw_params(optuna.trial.FixedTrial({**params, "grad__lr": 0.01}), 4, 10, {})
    assert uw["grad_method_kwargs"] == {"lr": 0.01} and uw["batch_size"] == 256
    # sampled values are merged into the preset without dropping its recipe (policy_kwargs one level deeper)
    preset = {"policy_kwargs": {"net_arch": [64], "multi_head": True}, "grad_method_kwargs": {"alpha": 1.0, "lr": 1e-6}}
    merged = _merge_hyperparams(preset, {**gradnorm, "policy_kwargs": {"net_arch": [400]}})
    assert merged["policy_kwargs"] == {"net_arch": [400], "multi_head": True}
    assert merged["grad_method_kwargs"] == {"alpha": 1.5, "lr": 1e-6}
    # PaCo: K goes into the recipe's task_heads_kwargs (a nested policy key), the stabilisers into the algorithm
    paco_params = {**params, "policy__task_heads_kwargs__n_param_sets": 7, "loss_mask_threshold": 500.0, "w_reset": "copy"}
    del paco_params["net_arch"]  # the network sizes are the recipe's
    paco = sample_paco_params(optuna.trial.FixedTrial(paco_params), 4, 10, {})
    assert paco["policy_kwargs"] == {"task_heads_kwargs": {"n_param_sets": 7}}
    assert (paco["loss_mask_threshold"], paco["w_reset"]) == (500.0, "copy")
    assert convert_mtsac_params(paco_params) == paco
    preset = {"policy_kwargs": {"disjoint_policy": True, "task_heads_kwargs": {"n_param_sets": 5, "other": 1}}}
    merged = _merge_hyperparams(preset, paco)["policy_kwargs"]
    assert merged == {"disjoint_policy": True, "task_heads_kwargs": {"n_param_sets": 7, "other": 1}}


def test_brc_sampler_and_converter() -> None:
    core = {"one_minus_gamma": 0.01, "batch_size_pow": 8, "learning_rate": 1e-3, "tau": 0.01}
    params = {**core, "bronet_actor": "64x1", "bronet_critic": "512x2", "v_max": 5.0, "max_grad_norm": 0.5}
    hyperparams = sample_brc_params(optuna.trial.FixedTrial(params), 4, 10, {})
    assert hyperparams == {
        "gamma": 0.99,
        "batch_size": 256,
        "learning_rate": 1e-3,
        "tau": 0.01,
        "max_grad_norm": 0.5,
        "normalize_task_returns": 5.0,  # one bound for the support and the reward normalisation, as BRC
        "policy_kwargs": {"net_arch": {"pi": [64] * 3, "qf": [512] * 5}, "categorical_kwargs": {"v_min": -5.0, "v_max": 5.0}},
    }
    assert convert_mtsac_params(params) == hyperparams  # --trial-id
    # merged into the preset: the recipe's support keeps its atoms, its trunk and task encoder stay
    preset = yaml.safe_load((HYPERPARAMS / "brc.yml").read_text())[POINT_GOAL]
    merged = _merge_hyperparams(apply_recipe(preset["recipe"], preset["recipe_kwargs"], preset), hyperparams)
    assert merged["policy_kwargs"]["categorical_kwargs"] == {"n_atoms": 101, "v_min": -5.0, "v_max": 5.0}
    assert merged["policy_kwargs"]["trunk"] == "bronet" and merged["policy_kwargs"]["use_task_encoder"]
    with pytest.raises(ValueError, match="bronet_actor and bronet_critic are sampled together"):
        convert_mtsac_params({"bronet_critic": "512x2"})
    with pytest.raises(ValueError, match="bronet_critic must be '<width>x<residual blocks>'"):
        convert_mtsac_params({"bronet_actor": "64x1", "bronet_critic": "512"})


def test_objective_is_success_where_defined_else_reward() -> None:
    from types import SimpleNamespace

    # MultiTaskEvalCallback: its score is the mean success over the tasks that define success
    assert evaluation_score(SimpleNamespace(last_results={"a": {}}, last_score=0.25, last_mean_reward=-3.0)) == 0.25
    # plain EvalCallback on an env with is_success, then without
    assert evaluation_score(SimpleNamespace(_is_success_buffer=[1.0, 0.0, 0.0, 1.0], last_mean_reward=-3.0)) == 0.5
    assert evaluation_score(SimpleNamespace(_is_success_buffer=[], last_mean_reward=-3.0)) == -3.0


def test_env_info_tasks_and_splits() -> None:
    info = env_info(POINT_GOAL)
    assert info.is_multi_task and info.task_names == GOALS
    assert info.train_tasks is None and info.eval_tasks is None  # all tasks, one sub-env each
    assert not env_info("Pendulum-v1").is_multi_task
    splits = {"train": [3, 4, 7, 8], "interpolation": [5, 6], "extrapolation": [2, 9]}
    hipbmdp = EnvInfo(True, [f"t{i}" for i in range(10)], splits, [])
    assert hipbmdp.train_tasks == [3, 4, 7, 8]
    assert hipbmdp.eval_tasks == [3, 4, 7, 8, 5, 6, 2, 9]


def test_optimize_journal_then_retrain_trial_zero(tmp_path: Path) -> None:
    # 2 trials in the default journal-file storage, then retrain from trial 0 (rl-zoo alone ignores --trial-id 0)
    tune = ["--algo", "mtsac", "--env", POINT_GOAL, "-f", "logs", "--num-threads", "1", "-n", "160"]
    tune += ["-params", "learning_starts:140", "--eval-episodes", "1"]
    replay = ["--storage", f"logs/mtsac/optuna/{POINT_GOAL}.log", "--study-name", f"mtsac-{POINT_GOAL}"]
    out = run_scripts(
        [
            ("train.py", [*tune, "-optimize", "--n-trials", "2", "--sampler", "random", "--pruner", "median", "--seed", "3"]),
            ("train.py", [*tune, *replay, "--trial-id", "0", "--eval-freq", "-1", "--seed", "0"]),
        ],
        tmp_path,
    ).stdout
    journal = tmp_path / "logs" / "mtsac" / "optuna" / f"{POINT_GOAL}.log"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=f"mtsac-{POINT_GOAL}", storage=storage)
    trials = study.get_trials()
    print("\n| trial | state | value | params |\n|---|---|---|---|")
    for t in trials:
        print(f"| {t.number} | {t.state.name} | {t.value} | {t.params} |")
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    # the objective is the mean success rate over tasks (PointGoal defines success): a value in [0, 1]
    assert all(0.0 <= t.value <= 1.0 for t in trials)
    assert study.user_attrs["task_names"] == GOALS
    assert "Trial states: COMPLETE=2" in out
    assert list((tmp_path / "logs" / "mtsac").glob(f"report_{POINT_GOAL}_2-trials-160-random-median_*.csv"))
    (config_file,) = (tmp_path / "logs" / "mtsac").glob(f"{POINT_GOAL}_*/{POINT_GOAL}/config.yml")  # the retrained run
    config = yaml.load(config_file.read_text(), yaml.UnsafeLoader)
    trial0 = convert_mtsac_params(trials[0].params)
    assert config["learning_rate"] == pytest.approx(trial0["learning_rate"])
    assert config["batch_size"] == trial0["batch_size"]


def test_unknown_algo_or_env_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_scripts([("train.py", ["--algo", "nope", "--env", POINT_GOAL])], tmp_path, check=False)
    assert proc.returncode == 2  # a usage error, as argparse exits (prepare_train_argv's docstring)
    assert "error: unknown algorithm 'nope'. Available algorithms:" in proc.stdout
    assert "mtsac" in proc.stdout.split("Available algorithms:")[1]
    proc = run_scripts([("train.py", ["--algo", "mtsac", "--env", "MT-PointGoal-v9"])], tmp_path, check=False)
    assert proc.returncode == 2
    assert "error: unknown environment id 'MT-PointGoal-v9'. Did you mean MT-PointGoal-v0" in proc.stdout
    assert "The mtgym ids are:" in proc.stdout


def test_conf_directory_reads_the_algos_preset(capsys: pytest.CaptureFixture[str]) -> None:
    # -conf <dir> is a preset family with one <algo>.yml per method, as rl-zoo's hyperparams/<algo>.yml
    small = HYPERPARAMS / "small"
    argv, _ = prepare_train_argv(["--algo", "care", "--env", POINT_GOAL, "-conf", str(small)], HYPERPARAMS)
    assert argv[argv.index("-conf") + 1] == str(small / "care.yml")
    argv, _ = prepare_train_argv(["--algo", "care", "--env", POINT_GOAL], HYPERPARAMS)  # default: hyperparams/care.yml
    assert argv[argv.index("-conf") + 1] == str(HYPERPARAMS / "care.yml")
    with pytest.raises(SystemExit) as exit_info:
        prepare_train_argv(["--algo", "distral", "--env", POINT_GOAL, "-conf", str(small)], HYPERPARAMS)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert f"error: preset directory {small} has no distral.yml (it has presets for: care, deepmdp, hipbmdp," in message


@pytest.mark.parametrize("missing", ["rl_zoo3", "optuna"])
def test_missing_zoo_packages_name_the_extra(missing: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [m for m in sys.modules if m == missing or m.startswith(f"{missing}.")]:
        monkeypatch.setitem(sys.modules, name, None)  # a None entry makes `import` fail as if not installed
    monkeypatch.setitem(sys.modules, missing, None)
    message = rf'The rl-zoo integration needs {missing} \(.*\): pip install "mtgym\[zoo\]"'
    with pytest.raises(ImportError, match=message):
        prepare_train_argv(["--algo", "mtsac", "--env", POINT_GOAL], HYPERPARAMS)
    with pytest.raises(ImportError, match=message):
        register_zoo()
    if missing == "optuna":
        with pytest.raises(ImportError, match=message):
            make_storage(str(tmp_path / "study.log"))


@pytest.mark.expensive
def test_point_goal_preset_learns(tmp_path: Path) -> None:
    # the small MT-SAC preset of hyperparams/mtsac.yml solves the 4 goals in 6000 timesteps (seeds 0, 1, 2)
    seeds = (0, 1, 2)
    calls = [
        ("train.py", ["--algo", "mtsac", "--env", POINT_GOAL, "--seed", str(s), "-f", "logs", "--num-threads", "1"])
        for s in seeds
    ]
    run_scripts(calls, tmp_path, timeout=1800)
    for run in range(1, len(seeds) + 1):
        evaluations = np.load(tmp_path / "logs" / "mtsac" / f"{POINT_GOAL}_{run}" / "evaluations.npz")
        assert evaluations["timesteps"][-1] == 6000
        assert evaluations["success_rate"][-1].mean() >= 0.75, evaluations["success_rate"]


def test_metaworld_evaluation_protocol_preset_keys(tmp_path: Path) -> None:
    # the Meta-World+ presets evaluate as metaworld.evaluation does: episodes end at their first success
    for name in ("mtsac", "care", "distral"):
        preset = yaml.safe_load((HYPERPARAMS / f"{name}.yml").read_text())
        assert preset["MT-MetaWorldPlus-MT10-v0"]["eval_terminate_on_success"] is True, name
        assert "eval_terminate_on_success" not in preset["MT-MetaWorld-MT10-v0"], name
    # the key reaches MultiTaskEvalCallback: on an env without Meta-World's switch the first evaluation says so
    argv = ["--algo", "mtsac", "--env", POINT_GOAL, "-n", "240", "--eval-freq", "240", "--eval-episodes", "1"]
    argv += ["-params", "learning_starts:120", "eval_terminate_on_success:True", "--no-progress"]
    proc = run_scripts([("train.py", argv)], tmp_path, check=False)
    assert proc.returncode != 0
    assert "terminate_on_success=True needs Meta-World sub-envs (e.g. MT-MetaWorldPlus-*)" in proc.stdout


def test_a_preset_names_the_task_balanced_replay_buffer(tmp_path: Path) -> None:
    # rl-zoo eval()s a replay_buffer_class string in its own module; mtsb3's buffer names are resolved first
    preset = yaml.safe_load((HYPERPARAMS / "mtsac.yml").read_text())[POINT_GOAL]
    preset.update(replay_buffer_class="TaskBalancedReplayBuffer", learning_starts=100, batch_size=8)
    (tmp_path / "preset.yml").write_text(yaml.safe_dump({POINT_GOAL: preset}))
    argv = ["--algo", "mtsac", "--env", POINT_GOAL, "-conf", "preset.yml", "-n", "160", "--eval-freq", "-1"]
    run_scripts([("train.py", [*argv, "-f", "logs", "--save-replay-buffer", "--no-progress"])], tmp_path)
    (buffer_file,) = (tmp_path / "logs" / "mtsac").glob(f"{POINT_GOAL}_*/replay_buffer.pkl")
    model = MTSAC("MultiInputPolicy", make_mt_vec_env(POINT_GOAL, seed=0), replay_buffer_class=TaskBalancedReplayBuffer)
    model.load_replay_buffer(buffer_file)
    assert type(model.replay_buffer) is TaskBalancedReplayBuffer and model.replay_buffer.size() == 40  # 160 / 4 sub-envs
    assert resolve_replay_buffer_class({"replay_buffer_class": "HerReplayBuffer"}) == {
        "replay_buffer_class": "HerReplayBuffer"
    }
