"""Tests for :class:`mtgym.wrappers.StickyObservation`."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mtgym.wrappers.frame_stack import FrameStack
from mtgym.wrappers.sticky_observation import StickyObservation

from ._stubs import CounterImageEnv

N_STEPS = 20_000


def lags(env, n_steps=N_STEPS, seed=0):
    """The age of each returned observation, in steps (0 = newest). Frames carry the step count mod 256."""
    env.reset(seed=seed)
    out = np.empty(n_steps, dtype=np.int64)
    for t in range(1, n_steps + 1):
        obs, *_ = env.step(0)
        out[t - 1] = (t - int(obs.flat[0])) % 256
    return out


def test_constructs_and_keeps_space():
    # the reference's constructor could not even be called (README, "Differences from mtrl and mtenv")
    inner = CounterImageEnv()
    env = StickyObservation(inner, sticky_probability=0.1, last_k=1)
    assert env.observation_space == inner.observation_space
    assert env.sticky_probability == 0.1 and env.last_k == 1


def test_probability_and_uniform_choice_statistics():
    env = StickyObservation(CounterImageEnv(shape=(1,), episode_length=10**9), sticky_probability=0.3, last_k=3)
    lag = lags(env)
    stale = lag > 0
    # Binomial(20000, 0.3): std = 65 draws, so +-0.015 is > 4 sigma
    assert stale.mean() == pytest.approx(0.3, abs=0.015)
    # a stale obs is one of the last_k = 3 older entries, uniformly: lags 1, 2, 3 each ~1/3 of the stale ones
    counts = np.bincount(lag[stale], minlength=5)
    assert counts[0] == 0 and counts[4] == 0
    np.testing.assert_allclose(counts[1:4] / stale.sum(), [1 / 3] * 3, atol=0.03)


@pytest.mark.parametrize(("p", "expected_stale"), [(0.0, 0.0), (1.0, 1.0)])
def test_extreme_probabilities(p, expected_stale):
    env = StickyObservation(CounterImageEnv(shape=(1,), episode_length=10**9), sticky_probability=p, last_k=1)
    lag = lags(env, n_steps=500)
    assert (lag > 0).mean() == expected_stale
    if p == 1.0:
        assert (lag == 1).all()


def test_buffer_filled_with_reset_obs():
    env = StickyObservation(CounterImageEnv(shape=(1,)), sticky_probability=1.0, last_k=2)
    obs, _ = env.reset(seed=0)
    assert int(obs[0]) == 0
    # right after reset, every older entry is the reset frame
    first, *_ = env.step(0)
    assert int(first[0]) == 0


def test_seeded_reproducibility():
    def make():
        return StickyObservation(CounterImageEnv(shape=(1,), episode_length=10**9), sticky_probability=0.5, last_k=2)

    a, b, c = lags(make(), 300, seed=7), lags(make(), 300, seed=7), lags(make(), 300, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_does_not_consume_inner_env_rng():
    inner_a = gym.make("CartPole-v1")
    inner_b = gym.make("CartPole-v1")
    env = StickyObservation(inner_a, sticky_probability=0.5, last_k=1)
    env.reset(seed=3)
    inner_b.reset(seed=3)
    for _ in range(5):
        env.step(0)
        inner_b.step(0)
    assert inner_a.unwrapped.np_random.random() == inner_b.unwrapped.np_random.random()


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_after_frame_stack_and_env_checker():
    # the HiP-BMDP order: FrameStack, then StickyObservation
    env = StickyObservation(FrameStack(CounterImageEnv(shape=(1, 4, 4)), num_stack=3), sticky_probability=0.2, last_k=1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 4, 4)
    check_env(env, skip_render_check=True)


@pytest.mark.parametrize("p", [-0.1, 1.1])
def test_invalid_probability(p):
    with pytest.raises(ValueError, match=r"sticky_probability must be in \[0, 1\]"):
        StickyObservation(CounterImageEnv(), sticky_probability=p, last_k=1)


@pytest.mark.parametrize("last_k", [0, -2])
def test_invalid_last_k(last_k):
    with pytest.raises(ValueError, match="last_k"):
        StickyObservation(CounterImageEnv(), sticky_probability=0.1, last_k=last_k)
