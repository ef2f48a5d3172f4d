"""MultiTaskEvalCallback / evaluate_per_task: K episodes per task, success at any step, splits, best by success."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.vec_env import DummyVecEnv

from mtgym.core import FiniteTaskEnv
from mtsb3 import MTSAC, MultiTaskEvalCallback, make_mt_vec_env
from mtsb3.common.callbacks import evaluate_per_task, summarize


class StepSuccessEnv(FiniteTaskEnv):
    """3 tasks, 5-step episodes; success is reported only at step 2 (if the action is positive), reward = task - a."""

    def __init__(self, initial_task_state: int = 0, report_success: bool = True):
        super().__init__(
            spaces.Box(-1, 1, (1,), np.float32), spaces.Box(-1, 1, (1,), np.float32), ["a", "b", "c"], initial_task_state
        )
        self.report_success, self._t = report_success, 0

    @property
    def task_splits(self) -> dict[str, list[int]]:
        return {"train": [0, 1], "extrapolation": [2]}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed, options=options)
        self._t = 0
        return self.make_obs(np.zeros(1, np.float32)), {}

    def step(self, action):
        self._t += 1
        info = {"success": float(self._t == 2 and action[0] > 0)} if self.report_success else {}
        reward = float(self._task_index) - float(action[0])
        return self.make_obs(np.zeros(1, np.float32)), reward, False, self._t >= 5, info


def _stub_venv(report_success: bool = True, tasks=(0, 1, 2)) -> DummyVecEnv:
    return DummyVecEnv([lambda t=t: StepSuccessEnv(t, report_success) for t in tasks])


class Recorder(KVWriter):
    def __init__(self):
        self.dumps: list[dict[str, Any]] = []

    def write(self, key_values, key_excluded, step=0):
        self.dumps.append(dict(key_values))


def _constant_policy(model: MTSAC, value: float, monkeypatch) -> None:
    def predict(obs, state=None, episode_start=None, deterministic=False):
        return np.full((len(obs["task_obs"]), 1), value, dtype=np.float32), None

    monkeypatch.setattr(model, "predict", predict)


def test_success_at_any_step_and_per_task_rewards(monkeypatch):
    model = MTSAC("MultiInputPolicy", _stub_venv(), policy_kwargs=dict(net_arch=[4]))
    _constant_policy(model, 0.5, monkeypatch)
    results = evaluate_per_task(model, _stub_venv(), n_eval_episodes=2)
    assert list(results) == ["a", "b", "c"]
    for task, name in enumerate("abc"):
        assert results[name] == {
            "mean_reward": pytest.approx(5 * (task - 0.5)),
            "std_reward": pytest.approx(0.0),
            "mean_ep_length": 5.0,
            "success_rate": 1.0,  # success only at step 2, never at the last step
            "n_episodes": 2.0,
        }
    _constant_policy(model, -0.5, monkeypatch)
    assert summarize(evaluate_per_task(model, _stub_venv(), 1))["success_rate"] == 0.0
    no_success = evaluate_per_task(model, _stub_venv(report_success=False), 1)
    assert np.isnan(no_success["a"]["success_rate"]) and np.isnan(summarize(no_success)["success_rate"])


def test_exactly_k_episodes_per_task_with_several_sub_envs_per_task():
    env = make_mt_vec_env("MT-PointGoal-v0", n_envs=8, seed=0)  # two sub-envs per task
    model = MTSAC("MultiInputPolicy", env, policy_kwargs=dict(net_arch=[4]))
    results = evaluate_per_task(model, env, n_eval_episodes=3)
    assert list(results) == ["goal_0", "goal_1", "goal_2", "goal_3"]
    assert all(r["n_episodes"] == 3.0 and r["mean_ep_length"] == 30.0 for r in results.values())
    with pytest.raises(ValueError, match="n_eval_episodes"):
        evaluate_per_task(model, env, n_eval_episodes=0)


def test_callback_logs_per_task_and_split_keys(monkeypatch, tmp_path):
    model = MTSAC("MultiInputPolicy", _stub_venv(), policy_kwargs=dict(net_arch=[4]), learning_starts=1000)
    recorder = Recorder()
    model.set_logger(Logger(None, [recorder]))
    _constant_policy(model, 0.5, monkeypatch)
    callback = MultiTaskEvalCallback(
        _stub_venv(tasks=(2, 0, 1)), n_eval_episodes=2, eval_freq=5, log_path=str(tmp_path), verbose=0
    )
    model.learn(30, callback=callback)  # 10 VecEnv steps: evaluations at calls 5 and 10
    evals = [d for d in recorder.dumps if "eval/mean_reward" in d]
    assert len(evals) == 2
    logged = evals[-1]
    assert logged["eval/success_rate"] == 1.0
    assert logged["eval/mean_reward"] == pytest.approx(np.mean([5 * (t - 0.5) for t in range(3)]))
    for task, name in enumerate("abc"):
        assert logged[f"eval/{name}/success_rate"] == 1.0
        assert logged[f"eval/{name}/mean_reward"] == pytest.approx(5 * (task - 0.5))
    # mtrl names the training split eval_base
    assert logged["eval_base/mean_reward"] == pytest.approx(np.mean([-2.5, 2.5]))
    assert logged["eval_extrapolation/mean_reward"] == pytest.approx(7.5)
    assert logged["eval_base/success_rate"] == 1.0
    assert list(callback.last_results) == ["a", "b", "c"]  # task index order, whatever the sub-env order
    assert callback.last_results["c"]["success_rate"] == 1.0 and callback.last_score == 1.0
    saved = np.load(tmp_path / "evaluations.npz")
    np.testing.assert_array_equal(saved["timesteps"], [15, 30])
    assert saved["success_rate"].shape == (2, 3) and list(saved["task_names"]) == ["a", "b", "c"]


def test_eval_env_with_the_tasks_in_another_order_is_refused(monkeypatch):
    model = MTSAC("MultiInputPolicy", _stub_venv(), policy_kwargs=dict(net_arch=[4]), learning_starts=1000)
    _constant_policy(model, 0.5, monkeypatch)
    eval_env = _stub_venv()
    for env in eval_env.envs:
        env.unwrapped.task_names = ["c", "b", "a"]  # task index 0 is "c" here but "a" for the model
    message = r"The env has the model's tasks in another order: task index i means \['c', 'b', 'a'\] in the env"
    with pytest.raises(ValueError, match=message):
        evaluate_per_task(model, eval_env)  # used to report task "a"'s results as "c"
    with pytest.raises(ValueError, match=message):
        model.learn(10, callback=MultiTaskEvalCallback(eval_env, eval_freq=1000, verbose=0))  # refused at the start


class Counter(BaseCallback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def _on_step(self) -> bool:
        self.count += 1
        return True


def test_best_model_is_chosen_by_success_not_reward(monkeypatch, tmp_path):
    model = MTSAC("MultiInputPolicy", _stub_venv(), policy_kwargs=dict(net_arch=[4]))
    model.set_logger(Logger(None, []))
    new_best = Counter()
    callback = MultiTaskEvalCallback(
        _stub_venv(), n_eval_episodes=1, best_model_save_path=str(tmp_path), callback_on_new_best=new_best, verbose=0
    )
    callback.init_callback(model)
    _constant_policy(model, 0.5, monkeypatch)  # succeeds, reward 0.5 below the other policy
    callback.evaluate()
    assert new_best.count == 1 and (tmp_path / "best_model.zip").exists()
    _constant_policy(model, -1.0, monkeypatch)  # higher reward, no success: not a new best
    callback.evaluate()
    assert callback.last_mean_reward > callback.best_mean_reward and new_best.count == 1
    assert callback.best_score == 1.0 and callback.last_score == 0.0
    # without a success signal the reward decides
    callback = MultiTaskEvalCallback(_stub_venv(report_success=False), n_eval_episodes=1, callback_on_new_best=new_best)
    callback.init_callback(model)
    _constant_policy(model, 0.5, monkeypatch)
    callback.evaluate()
    _constant_policy(model, -1.0, monkeypatch)
    callback.evaluate()
    assert new_best.count == 3 and callback.best_score == callback.last_mean_reward


def test_continuous_task_descriptor_reports_each_sub_env():
    from tests.mtsac._envs import BoxTaskEnv

    class Timed(BoxTaskEnv):
        def reset(self, *, seed=None, options=None):
            self._t = 0
            return super().reset(seed=seed, options=options)

        def step(self, action):
            self._t += 1
            obs, _, _, _, info = super().step(action)
            return obs, 1.0, False, self._t >= 3, info

    env = DummyVecEnv([Timed, Timed])
    model = MTSAC("MultiInputPolicy", env, policy_kwargs=dict(net_arch=[4]))
    results = evaluate_per_task(model, env, n_eval_episodes=2)
    assert list(results) == ["task_0", "task_1"]
    assert all(r["mean_reward"] == 3.0 and r["n_episodes"] == 2.0 and np.isnan(r["success_rate"]) for r in results.values())


def test_subprocess_eval_env_without_task_splits():
    # MT-PointGoal has no task_splits: asking a SubprocVecEnv for a missing attribute used to kill its workers
    from stable_baselines3.common.vec_env import SubprocVecEnv

    eval_env = make_mt_vec_env("MT-PointGoal-v0", seed=1, vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": "fork"})
    try:
        model = MTSAC("MultiInputPolicy", make_mt_vec_env("MT-PointGoal-v0", seed=0), learning_starts=100, seed=0)
        callback = MultiTaskEvalCallback(eval_env, n_eval_episodes=1, eval_freq=10)
        model.learn(40, callback=callback)
        assert sorted(callback.last_results) == ["goal_0", "goal_1", "goal_2", "goal_3"]
        assert callback._task_splits() == {}
    finally:
        eval_env.close()
