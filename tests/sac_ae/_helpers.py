"""Shared pieces of the SAC-AE / DeepMDP / HiP-BMDP tests: a fast pixel MT env with HiP-BMDP's spaces, small nets."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv

from mtgym.core import FiniteTaskEnv

ENV_ID = "MT-HiPBMDP-Finger-Spin-vary-size-v0"
SIZE = 32
#: small nets: 2 convs of 8 filters, 16 features, one hidden layer of 32
SMALL_POLICY: dict[str, Any] = dict(
    net_arch=[32], features_extractor_kwargs=dict(features_dim=16, num_layers=2, num_filters=8)
)
SMALL_MODEL: dict[str, Any] = dict(model_layer_width=32)
SMALL_THETA: dict[str, Any] = dict(task_encoder_kwargs=dict(embedding_dim=8, net_arch=[16], output_dim=8))


class RandomPixelTaskEnv(FiniteTaskEnv):
    """
    HiP-BMDP's spaces (``uint8`` ``(9, 32, 32)`` frames, ``Discrete(10)`` task, 2-D actions) with random frames and
    rewards from the env RNG: a cheap stand-in for the unit tests that do not need the physics.
    """

    def __init__(self, initial_task_state: int = 0, from_pixels: bool = True, task_splits: dict | None = None):
        env_space = spaces.Box(0, 255, (9, SIZE, SIZE), np.uint8) if from_pixels else spaces.Box(-1, 1, (9,), np.float32)
        names = [f"size_{i + 1}" for i in range(10)]
        super().__init__(spaces.Box(-1, 1, (2,), np.float32), env_space, names, initial_task_state)
        self._splits = task_splits or {"train": [3, 4, 7, 8], "interpolation": [5, 6], "extrapolation": [2, 9]}

    @property
    def task_splits(self) -> dict[str, list[int]]:
        """The HiP-BMDP Finger split by default."""
        return self._splits

    def _obs(self) -> dict[str, Any]:
        return self.make_obs(self.observation_space["env_obs"].sample())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed, options=options)
        self.observation_space["env_obs"].seed(int(self.np_random.integers(2**31)))
        return self._obs(), {}

    def step(self, action):
        return self._obs(), float(self.np_random.random()), False, False, {}


def random_venv(tasks=(3, 4, 7, 8), from_pixels: bool = True, task_splits: dict | None = None) -> DummyVecEnv:
    venv = DummyVecEnv([lambda t=t: RandomPixelTaskEnv(t, from_pixels, task_splits) for t in tasks])
    venv.seed(0)
    return venv


def fill_buffer(model, n_steps: int = 8) -> None:
    """Add ``n_steps`` vector steps of random transitions to the model's replay buffer (and give it a silent logger)."""
    model.set_logger(Logger(folder=None, output_formats=[]))
    venv = model.get_env()
    obs = venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(n_steps):
        actions = rng.uniform(-1, 1, (venv.num_envs, 2)).astype(np.float32)
        next_obs, rewards, dones, infos = venv.step(actions)
        model.replay_buffer.add(obs, next_obs, actions, rewards, dones, infos)
        obs = next_obs


def parameters_by_name(module: th.nn.Module) -> dict[str, th.Tensor]:
    """A detached copy of every parameter, each shared parameter once (under its first name)."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, th.Tensor], module: th.nn.Module) -> dict[str, bool]:
    after = dict(module.named_parameters())
    return {name: not th.equal(value, after[name].detach()) for name, value in before.items()}
