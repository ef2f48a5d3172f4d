"""Tests for :class:`mtgym.wrappers.FrameStack`."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mtgym.wrappers.frame_stack import FrameStack

from ._stubs import CounterImageEnv


def test_space_keeps_inner_bounds_and_dtype():
    env = FrameStack(CounterImageEnv(shape=(3, 4, 5)), num_stack=3)
    space = env.observation_space
    assert space.shape == (9, 4, 5)
    assert space.dtype == np.uint8
    # the reference declared [0, 1] for uint8 frames (README, "Differences from mtrl and mtenv")
    assert (space.low == 0).all() and (space.high == 255).all()


def test_reset_repeats_first_frame_and_step_order_is_oldest_first():
    env = FrameStack(CounterImageEnv(shape=(2, 3, 3)), num_stack=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6, 3, 3)
    np.testing.assert_array_equal(obs[:, 0, 0], [0, 0, 0, 0, 0, 0])
    for t in range(1, 5):
        obs, *_ = env.step(0)
        expected = np.repeat([max(t - 2, 0), max(t - 1, 0), t], 2)  # C=2 channels per frame, oldest frame first
        np.testing.assert_array_equal(obs[:, 1, 2], expected)
        assert obs in env.observation_space
    # a reset starts a fresh stack
    obs, _ = env.reset()
    assert (obs == 0).all()


def test_num_stack_one_is_identity():
    env = FrameStack(CounterImageEnv(), num_stack=1)
    assert env.observation_space == CounterImageEnv().observation_space
    env.reset(seed=0)
    obs, *_ = env.step(0)
    assert (obs == 1).all()


def test_vector_observations_and_bounds():
    env = FrameStack(gym.make("CartPole-v1"), num_stack=4)
    inner = env.env.observation_space
    np.testing.assert_array_equal(env.observation_space.low, np.tile(inner.low, 4))
    np.testing.assert_array_equal(env.observation_space.high, np.tile(inner.high, 4))
    obs, _ = env.reset(seed=1)
    nxt, *_ = env.step(1)
    np.testing.assert_array_equal(nxt[:12], obs[4:])  # the window slides by one frame


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_passes_env_checker_and_records_args():
    env = FrameStack(CounterImageEnv(shape=(1, 8, 8)), num_stack=2)
    check_env(env, skip_render_check=True)
    assert env.spec is None or env.spec.additional_wrappers[-1].kwargs == {"num_stack": 2}


@pytest.mark.parametrize("num_stack", [0, -1, 2.5])
def test_invalid_num_stack(num_stack):
    with pytest.raises(ValueError, match="num_stack"):
        FrameStack(CounterImageEnv(), num_stack=num_stack)


def test_rejects_non_box():
    with pytest.raises(ValueError, match="Box"):
        FrameStack(gym.make("FrozenLake-v1"), num_stack=2)
