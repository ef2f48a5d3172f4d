"""The remaining arguments of mtenv's builders: HiP-BMDP ``xml_file_ids`` and ``visualize_reward``, Meta-World
``num_copies_per_env``, and ``NormalizedEnvWrapper``'s options (``NormalizedEnv``)."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import mtgym  # noqa: F401  (registers the ids)
from mtgym.wrappers import NormalizedEnv, NormalizeReward
from mtgym.wrappers.normalize_reward import ema_update

FINGER = "MT-HiPBMDP-Finger-Spin-vary-size-v0"


class RecordingEnv(gym.Env):
    """A ``Box(0, 10)`` action env that returns a scripted observation and reward and records the action it got."""

    def __init__(self, dict_obs: bool = False):
        box = spaces.Box(-5, 5, (2,), np.float32)
        self.observation_space = spaces.Dict({"env_obs": box, "task_obs": spaces.Discrete(3)}) if dict_obs else box
        self.action_space = spaces.Box(0.0, 10.0, (1,), np.float32)
        self.dict_obs, self.t, self.actions = dict_obs, 0, []

    def _obs(self) -> Any:
        obs = np.array([self.t, -2.0 * self.t], np.float32)
        return {"env_obs": obs, "task_obs": 2} if self.dict_obs else obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 1
        return self._obs(), {}

    def step(self, action):
        self.actions.append(np.asarray(action).copy())
        self.t += 1
        return self._obs(), 3.0 * self.t, False, False, {}


def test_actions_are_mapped_from_the_expected_scale_and_clipped():
    env = NormalizedEnv(RecordingEnv(), expected_action_scale=2.0)
    assert env.action_space == spaces.Box(-2.0, 2.0, (1,), np.float32)
    env.reset(seed=0)
    for action in (-2.0, 0.0, 2.0, 3.0, -1.0):
        env.step(np.array([action], np.float32))
    np.testing.assert_allclose(np.concatenate(env.unwrapped.actions), [0.0, 5.0, 10.0, 10.0, 2.5])


@pytest.mark.parametrize("dict_obs", [False, True])
def test_observations_are_normalised_by_running_statistics(dict_obs):
    env = NormalizedEnv(RecordingEnv(dict_obs), normalize_obs=True, obs_alpha=0.5)
    mean, var = np.zeros(2), np.ones(2)
    expected = []
    for t in (1, 2, 3):  # reset, then two steps
        raw = np.array([t, -2.0 * t])
        mean, var = ema_update(mean, var, raw, 0.5)
        expected.append((raw - mean) / (np.sqrt(var) + 1e-8))
    obs, _ = env.reset(seed=0)
    got = [obs] + [env.step(np.array([5.0], np.float32))[0] for _ in range(2)]
    for o, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(o["env_obs"] if dict_obs else o, e, rtol=1e-6)
        if dict_obs:
            assert o["task_obs"] == 2
    env.step(np.array([5.0], np.float32))
    assert not np.allclose(env.obs_mean, 0.0)
    obs, _ = env.reset(seed=1)  # a seeded reset restarts the statistics: the first observation again
    np.testing.assert_allclose(obs["env_obs"] if dict_obs else obs, expected[0], rtol=1e-6)
    space = env.observation_space["env_obs"] if dict_obs else env.observation_space
    assert np.isinf(space.low).all() and np.isinf(space.high).all()


def test_rewards_are_normalised_then_scaled_like_normalize_reward():
    env = NormalizedEnv(RecordingEnv(), normalize_reward=True, reward_alpha=0.1, scale_reward=0.5)
    reference = NormalizeReward(RecordingEnv(), alpha=0.1)
    env.reset(seed=0)
    reference.reset(seed=0)
    for _ in range(4):
        reward = env.step(np.zeros(1, np.float32))[1]
        assert reward == pytest.approx(0.5 * reference.step(np.zeros(1, np.float32))[1])
    plain = NormalizedEnv(RecordingEnv(), scale_reward=2.0)  # mtenv's defaults: no normalisation, only the scale
    plain.reset(seed=0)
    assert plain.step(np.zeros(1, np.float32))[1] == pytest.approx(2.0 * 6.0)


def test_normalized_env_passes_the_env_checker_and_checks_its_arguments():
    env = NormalizedEnv(RecordingEnv(dict_obs=True), normalize_obs=True, normalize_reward=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unbounded normalised observation box and "a wrapper is applied"
        check_env(env, skip_render_check=True)
    with pytest.raises(ValueError, match="obs_alpha must be in"):
        NormalizedEnv(RecordingEnv(), obs_alpha=0.0)
    with pytest.raises(ValueError, match="expected_action_scale must be > 0"):
        NormalizedEnv(RecordingEnv(), expected_action_scale=0.0)
    with pytest.raises(ValueError, match="needs a Box observation"):
        NormalizedEnv(gym.make("FrozenLake-v1"), normalize_obs=True)


def test_hipbmdp_xml_file_ids_select_variants_in_the_given_order():
    pytest.importorskip("dm_control")
    env = gym.make(FINGER, from_pixels=False, xml_file_ids=["size_8", "size_4", "size_6"], initial_task_state=0)
    unwrapped = env.unwrapped
    assert unwrapped.task_names == ["size_8", "size_4", "size_6"]
    assert env.observation_space["task_obs"] == spaces.Discrete(3)
    np.testing.assert_allclose(unwrapped.task_parameters, [0.2, 0.1, 0.15])
    # the splits follow the variants: size_4 and size_8 are train, size_6 interpolation, no extrapolation variant
    assert unwrapped.task_splits == {"train": [1, 0], "interpolation": [2], "extrapolation": []}
    env.reset(seed=0, options={"task_state": 0})
    assert unwrapped.read_task_parameter() == pytest.approx(0.2)  # what MuJoCo simulates
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(xml_file_ids=["size_11"]), "unknown: \\['size_11'\\]"),
        (dict(xml_file_ids=["size_1", "size_1"]), "must be distinct ids"),
        (dict(xml_file_ids=[]), "at least one"),
        (dict(visualize_reward=True), "breaks dm_control's pixel rendering"),
    ],
)
def test_hipbmdp_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(FINGER, **kwargs)


def test_metaworld_num_copies_per_env_repeats_each_task_in_a_row():
    pytest.importorskip("metaworld")
    env = gym.make("MT-MetaWorld-MT10-v0", num_copies_per_env=2)
    unwrapped = env.unwrapped
    names = unwrapped.task_names
    assert len(names) == 20 and names[:4] == ["reach-v3_0", "reach-v3_1", "push-v3_0", "push-v3_1"]
    assert env.observation_space["task_obs"] == spaces.Discrete(20)
    goals = []
    for slot in (2, 3, 4):  # push, push, pick-place
        obs, _ = env.reset(seed=0, options={"task_state": slot})
        assert obs["task_obs"] == slot
        goals.append(unwrapped.goal.copy())
    np.testing.assert_allclose(goals[0], goals[1])  # copies share their task's fixed goal (mtenv's task map)
    assert not np.allclose(goals[0], goals[2])
    with pytest.raises(ValueError, match="num_copies_per_env must be a positive integer"):
        gym.make("MT-MetaWorld-MT10-v0", num_copies_per_env=0)
    env.close()
