"""Overlapped collection (``overlap_collection=True``): the transitions, episodes, callbacks and updates of SB3's loop."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

from mtsb3 import MTSAC, make_mt_vec_env

ENV_ID = "MT-PointGoal-v0"  # 4 sub-envs, 30-step episodes (truncated): episode boundaries do not depend on the policy
STEPS = 480  # 120 vector steps, 4 episodes per sub-env
SMALL = dict(learning_starts=100, batch_size=32, buffer_size=2_000, policy_kwargs=dict(net_arch=[16]), seed=0)


class Recorder(BaseCallback):
    """Records every callback event and, at each step, the env outputs and the model's update count."""

    def __init__(self):
        super().__init__()
        self.events: list[str] = []
        self.steps: list[dict] = []

    def _on_training_start(self) -> None:
        self.events.append("training_start")
        self.first_obs = copy.deepcopy(self.model._last_obs)

    def _on_rollout_start(self) -> None:
        self.events.append("rollout_start")

    def _on_step(self) -> bool:
        self.events.append("step")
        keys = ("new_obs", "rewards", "dones", "infos", "buffer_actions")
        self.steps.append({key: copy.deepcopy(self.locals[key]) for key in keys})
        self.steps[-1].update(num_timesteps=self.num_timesteps, n_updates=self.model._n_updates)
        return True

    def _on_rollout_end(self) -> None:
        self.events.append("rollout_end")

    def _on_training_end(self) -> None:
        self.events.append("training_end")


def _subproc_env(seed: int = 0):
    # fork: no fresh interpreter per sub-env (the sub-envs use no torch, so forking the test process is safe)
    return make_mt_vec_env(ENV_ID, seed=seed, vec_env_cls=SubprocVecEnv, vec_env_kwargs=dict(start_method="fork"))


def _run(env, overlap: bool, steps: int = STEPS, **kwargs) -> tuple[MTSAC, Recorder]:
    model = MTSAC("MultiInputPolicy", env, overlap_collection=overlap, **{**SMALL, **kwargs})
    recorder = Recorder()
    model.learn(steps, callback=recorder)
    return model, recorder


def _expected_next_obs(step: dict) -> np.ndarray:
    next_obs = step["new_obs"]["env_obs"].copy()
    for i, done in enumerate(step["dones"]):
        if done:
            next_obs[i] = step["infos"][i]["terminal_observation"]["env_obs"]
    return next_obs


def test_every_transition_is_stored_once_in_order():
    env = _subproc_env()
    try:
        model, recorder = _run(env, overlap=True, train_freq=2)
    finally:
        env.close()
    buffer, steps = model.replay_buffer, recorder.steps
    assert buffer.pos == len(steps) == STEPS // 4
    obs = [recorder.first_obs["env_obs"]] + [step["new_obs"]["env_obs"] for step in steps[:-1]]
    np.testing.assert_array_equal(buffer.observations["env_obs"][: len(steps)], np.stack(obs))
    next_obs = np.stack([_expected_next_obs(step) for step in steps])
    np.testing.assert_array_equal(buffer.next_observations["env_obs"][: len(steps)], next_obs)
    np.testing.assert_array_equal(buffer.actions[: len(steps)], np.stack([step["buffer_actions"] for step in steps]))
    np.testing.assert_array_equal(buffer.rewards[: len(steps)], np.stack([step["rewards"] for step in steps]))
    timeouts = np.array([[info.get("TimeLimit.truncated", False) for info in step["infos"]] for step in steps])
    dones = np.stack([step["dones"] for step in steps])
    np.testing.assert_array_equal(buffer.timeouts[: len(steps)], timeouts)
    np.testing.assert_array_equal(buffer.dones[: len(steps)], dones)
    assert dones.sum() == STEPS // 30  # 30-step episodes on every sub-env
    # SB3's count: one gradient step per 2-step rollout once past learning_starts
    assert model._n_updates == sum(1 for step in steps[1::2] if step["num_timesteps"] > SMALL["learning_starts"])


def test_episodes_callbacks_and_updates_as_without_overlap():
    plain_env, overlap_env = make_mt_vec_env(ENV_ID, seed=0), _subproc_env()
    try:
        plain, plain_rec = _run(plain_env, overlap=False)
        overlapped, overlap_rec = _run(overlap_env, overlap=True)
    finally:
        overlap_env.close()
    assert overlap_rec.events == plain_rec.events
    assert overlapped._n_updates == plain._n_updates == (STEPS - SMALL["learning_starts"]) // 4
    for plain_step, overlap_step in zip(plain_rec.steps, overlap_rec.steps, strict=True):
        # a callback sees the same timestep count and number of updates at every step
        assert overlap_step["num_timesteps"] == plain_step["num_timesteps"]
        assert overlap_step["n_updates"] == plain_step["n_updates"]
        np.testing.assert_array_equal(overlap_step["dones"], plain_step["dones"])
        for plain_info, overlap_info in zip(plain_step["infos"], overlap_step["infos"], strict=True):
            assert ("terminal_observation" in overlap_info) == ("terminal_observation" in plain_info)
            assert overlap_info.get("episode", {}).get("l") == plain_info.get("episode", {}).get("l")
    # before learning starts the actions are random: the same seed gives the very same transitions
    warm_up = SMALL["learning_starts"] // 4
    for key in ("env_obs", "task_obs"):
        np.testing.assert_array_equal(
            overlapped.replay_buffer.next_observations[key][:warm_up], plain.replay_buffer.next_observations[key][:warm_up]
        )
    np.testing.assert_array_equal(overlapped.replay_buffer.rewards[:warm_up], plain.replay_buffer.rewards[:warm_up])
    assert overlapped.replay_buffer.pos == plain.replay_buffer.pos


def test_stopping_callback_runs_no_extra_update():
    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            return self.num_timesteps < 200

    env = _subproc_env()
    try:
        model = MTSAC("MultiInputPolicy", env, overlap_collection=True, **SMALL)
        model.learn(STEPS, callback=StopAt())
    finally:
        env.close()
    # SB3 stops before the update of the rollout that reached 200 steps: updates after 104, ..., 196 steps
    assert model.num_timesteps == 200
    assert model._n_updates == (196 - SMALL["learning_starts"]) // 4


def test_overlap_needs_a_background_env():
    with pytest.raises(ValueError, match=r"needs a VecEnv that steps in other processes.*SubprocVecEnv"):
        MTSAC("MultiInputPolicy", make_mt_vec_env(ENV_ID, seed=0), overlap_collection=True, **SMALL)
    # wrappers are looked through, and a later set_env is checked when learning
    model = MTSAC("MultiInputPolicy", make_mt_vec_env(ENV_ID, seed=0), **SMALL)
    model.overlap_collection = True
    with pytest.raises(ValueError, match="DummyVecEnv steps inside step_wait"):
        model.learn(8)
    with pytest.raises(ValueError, match="SubprocVecEnv"):
        normalized = VecNormalize(make_mt_vec_env(ENV_ID, seed=0), norm_obs_keys=["env_obs"])
        MTSAC("MultiInputPolicy", normalized, overlap_collection=True, **SMALL)
