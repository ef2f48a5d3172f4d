"""
Run checkpoints (:mod:`mtsb3.common.resume`): a run killed with SIGKILL and resumed ends with exactly the parameters of
an uninterrupted run; checkpoints are atomic and the last k are kept; the buffer is stored compactly; per-task training
metrics (:class:`~mtsb3.common.callbacks.PerTaskRolloutCallback`).
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.logger import Logger

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.resume import RunCheckpointCallback, latest_checkpoint, list_checkpoints
from mtsb3.common.rollout_metrics import PerTaskRolloutCallback
from mtsb3.common.run_state import get_env_state, pack_buffer, set_env_state, unpack_buffer
from tests._zoo_helpers import SCRIPTS, child_env

ENV = "MT-PointGoal-v0"
# 4 sub-envs x 30-step episodes: an evaluation and a checkpoint every 2 episodes (episode boundaries), 8 episodes in all
TRAIN = ["--algo", "mtsac", "--env", ENV, "--seed", "3", "-n", "960", "-params", "learning_starts:120"]
TRAIN += ["--eval-freq", "240", "--eval-episodes", "1", "--no-progress", "--keep-checkpoints", "3"]


def _train(run_folder: Path, output: Path) -> subprocess.Popen:
    command = [sys.executable, str(SCRIPTS / "train.py"), *TRAIN, "--run-folder", str(run_folder)]
    return subprocess.Popen(command, env=child_env(), stdout=output.open("a"), stderr=subprocess.STDOUT, cwd=output.parent)


def _flat_parameters(path: Path) -> dict[str, th.Tensor]:
    """:return: every tensor of the saved model: policy weights, optimiser states, entropy coefficients"""
    flat = {}

    def walk(value, name: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}.{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{name}[{i}]")
        elif th.is_tensor(value):
            flat[name] = value

    walk(MTSAC.load(path).get_parameters(), "")
    return flat


def _progress(run_folder: Path) -> list[dict[str, str]]:
    with open(run_folder / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_killed_and_resumed_run_ends_with_exactly_the_parameters_of_an_uninterrupted_run(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert _train(whole, tmp_path / "whole.out").wait(timeout=300) == 0, (tmp_path / "whole.out").read_text()[-3000:]
    victim = _train(killed, tmp_path / "killed.out")
    deadline = time.monotonic() + 300
    while latest_checkpoint(killed) is None:
        assert victim.poll() is None and time.monotonic() < deadline, (tmp_path / "killed.out").read_text()[-3000:]
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert not (killed / f"{ENV}.zip").exists()  # killed mid-run
    assert _train(killed, tmp_path / "killed.out").wait(timeout=300) == 0, (tmp_path / "killed.out").read_text()[-3000:]

    output = (tmp_path / "killed.out").read_text()
    assert "Resuming from " in output and "timesteps (exactly)" in output
    expected, resumed = _flat_parameters(whole / f"{ENV}.zip"), _flat_parameters(killed / f"{ENV}.zip")
    assert expected.keys() == resumed.keys() and len(expected) > 20
    assert [name for name in expected if not th.equal(expected[name], resumed[name])] == []
    # the evaluation history and progress.csv continue where the checkpoint was: same rows as the uninterrupted run
    for key in ("timesteps", "success_rate", "mean_reward"):
        np.testing.assert_array_equal(np.load(whole / "evaluations.npz")[key], np.load(killed / "evaluations.npz")[key])
    steps = [row["time/total_timesteps"] for row in _progress(whole)]
    assert [row["time/total_timesteps"] for row in _progress(killed)] == steps
    assert [p.name for p in list_checkpoints(whole)] == [f"step_{s:012d}" for s in (480, 720, 960)]  # the last 3


def _model(tmp_path: Path, **kwargs) -> MTSAC:
    env = make_mt_vec_env(ENV, seed=0)
    return MTSAC("MultiInputPolicy", env, learning_starts=40, buffer_size=1000, seed=0, **kwargs)


def test_checkpoints_are_atomic_and_the_last_k_are_kept(tmp_path: Path) -> None:
    model = _model(tmp_path)
    checkpointer = RunCheckpointCallback(tmp_path, save_freq=30, keep=2, verbose=0)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".tmp-0123456789ab").mkdir()  # a save killed before its rename: never used
    model.learn(360, callback=checkpointer)  # 90 steps: due at 30, 60, 90 (all episode boundaries) and at the end
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000000240", "step_000000000360"]
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_000000000360"
    assert sorted(p.name for p in latest_checkpoint(tmp_path).iterdir()) == ["model.zip", "replay_buffer.pkl", "state.pkl"]
    with pytest.raises(ValueError, match="keep must be >= 1, got 0"):
        RunCheckpointCallback(tmp_path, save_freq=1, keep=0)
    # without the buffer, a resumed model refills it for learning_starts steps before updating again
    checkpointer = RunCheckpointCallback(tmp_path / "nobuf", save_freq=0, save_buffer=False, verbose=0)
    model.learn(120, callback=checkpointer, reset_num_timesteps=False)
    assert not (latest_checkpoint(tmp_path / "nobuf") / "replay_buffer.pkl").exists()
    resumed = checkpointer.resume(MTSAC, make_mt_vec_env(ENV, seed=0))
    assert resumed.num_timesteps == 480 and resumed.learning_starts == 480 + 40 and resumed.replay_buffer.size() == 0


def test_the_buffer_is_stored_without_its_empty_rows() -> None:
    model = _model(Path("."))
    model.learn(100)
    buffer = model.replay_buffer
    assert isinstance(buffer, DictReplayBuffer) and buffer.pos == 25 and not buffer.full
    packed = pack_buffer(buffer)
    assert packed.observations["env_obs"].shape[0] == 25 and packed.actions.shape[0] == 25
    assert buffer.actions.shape[0] == buffer.buffer_size == 250  # the live buffer is untouched (1000 rows / 4 sub-envs)
    restored = unpack_buffer(packed)
    for name in ("actions", "rewards", "dones", "timeouts"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(buffer, name))
    for key in buffer.observations:
        np.testing.assert_array_equal(restored.next_observations[key], buffer.next_observations[key])


def test_env_state_restores_every_rng_of_the_sub_envs() -> None:
    env = make_mt_vec_env(ENV, seed=0)
    env.reset()
    state = get_env_state(env)
    expected = env.reset()
    other = make_mt_vec_env(ENV, seed=123)
    other.reset()  # use up its seeds first, as a resumed run does
    assert set_env_state(other, state) == []
    obs = other.reset()
    for key in expected:
        np.testing.assert_array_equal(obs[key], expected[key])
    with pytest.raises(ValueError, match="The env has 8 sub-envs, the checkpoint 4"):
        set_env_state(make_mt_vec_env(ENV, n_envs=8, seed=0), state)


def _step(callback: PerTaskRolloutCallback, rewards: list[float], successes: list[float], dones: list[bool]) -> None:
    infos = [{"success": s} for s in successes]
    for task, (info, done) in enumerate(zip(infos, dones, strict=True)):
        if done:
            info["terminal_observation"] = {"env_obs": np.zeros(2), "task_obs": np.int64(task)}
    callback.update_locals({"infos": infos, "dones": np.array(dones), "rewards": np.array(rewards)})
    callback.on_step()


def test_per_task_rollout_metrics_count_success_at_any_step() -> None:
    logger = Logger(folder=None, output_formats=[])
    callback = PerTaskRolloutCallback(["reach", "push"])
    env = SimpleNamespace(num_envs=2)
    callback.model = SimpleNamespace(_stats_window_size=2, num_timesteps=0, logger=logger, get_env=lambda: env)
    callback._init_callback()
    _step(callback, [1.0, 2.0], [1.0, 0.0], [False, False])  # task 0 succeeds at its first step ...
    _step(callback, [1.0, 2.0], [0.0, 0.0], [True, True])  # ... and not at its last: the episode counts as a success
    assert logger.name_to_value["rollout/reach/success_rate"] == 1.0
    assert logger.name_to_value["rollout/push/success_rate"] == 0.0
    assert logger.name_to_value["rollout/reach/ep_rew_mean"] == 2.0
    assert logger.name_to_value["rollout/push/ep_rew_mean"] == 4.0
    for _ in range(2):  # the window keeps the last 2 episodes of each task
        _step(callback, [0.0, 1.0], [0.0, 1.0], [True, True])
    assert callback.episode_successes == {"reach": [0.0, 0.0], "push": [1.0, 1.0]}
    assert logger.name_to_value["rollout/push/ep_rew_mean"] == 1.0
