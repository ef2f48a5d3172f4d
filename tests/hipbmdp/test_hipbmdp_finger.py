"""End to end on the real MT-HiPBMDP-Finger-Spin-vary-size-v0 pixels: every loss runs and decreases, and the
evaluation reports the base / interpolation / extrapolation splits."""

import json

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from mtsb3 import HiPBMDP, make_mt_vec_env
from mtsb3.common.callbacks import MultiTaskEvalCallback
from tests.sac_ae._helpers import ENV_ID

LOSSES = ("critic_loss", "ae_loss", "transition_loss", "reward_loss", "contrastive_loss")


class LossHistory(BaseCallback):
    """The training losses of every ``train`` call (read before the next rollout, as the logger may dump them)."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {name: [] for name in LOSSES}

    def _on_rollout_start(self) -> None:
        values = self.model.logger.name_to_value
        for name in LOSSES:
            if f"train/{name}" in values:
                self.history[name].append(values[f"train/{name}"])

    def _on_step(self) -> bool:
        return True


def test_tiny_run_on_finger_pixels(tmp_path):
    th.set_num_threads(1)
    env_kwargs = dict(height=32, width=32, max_episode_steps=25)  # small frames, short episodes
    train_tasks = [3, 4, 7, 8]  # env.unwrapped.task_splits["train"]
    venv = make_mt_vec_env(ENV_ID, seed=0, tasks=train_tasks, env_kwargs=env_kwargs)
    assert venv.get_attr("task_splits", [0])[0]["train"] == train_tasks
    eval_env = make_mt_vec_env(ENV_ID, seed=100, tasks=[4, 5, 9], env_kwargs=env_kwargs)  # one task per split
    model = HiPBMDP(
        "MultiInputPolicy",
        venv,
        buffer_size=1000,
        learning_starts=60,
        batch_size=32,
        gradient_steps=2,
        learning_rate=1e-3,
        seed=0,
        device="cpu",
        policy_kwargs=dict(
            net_arch=[64],
            features_extractor_kwargs=dict(features_dim=16, num_layers=2, num_filters=8),
            model_layer_width=64,
            task_encoder_kwargs=dict(embedding_dim=8, net_arch=[16], output_dim=8),
        ),
    )
    model.set_logger(configure(str(tmp_path), ["json"]))
    history = LossHistory()
    model.learn(300, callback=[history, MultiTaskEvalCallback(eval_env, eval_freq=75, verbose=0)])

    assert model.policy.theta.train_tasks.tolist() == train_tasks
    for name in LOSSES:
        values = np.array(history.history[name])
        assert len(values) >= 40 and np.isfinite(values).all(), name
        third = len(values) // 3
        assert values[-third:].mean() < 0.5 * values[:third].mean(), (name, values[:third].mean(), values[-third:].mean())

    rows = [json.loads(line) for line in (tmp_path / "progress.json").read_text().splitlines()]
    evaluation = next(row for row in rows if "eval_base/mean_reward" in row)
    for key in ("eval_base", "eval_interpolation", "eval_extrapolation", "eval/size_5", "eval/size_6", "eval/size_10"):
        assert np.isfinite(evaluation[f"{key}/mean_reward"]), key
