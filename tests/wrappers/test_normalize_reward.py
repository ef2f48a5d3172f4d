"""Tests for :class:`mtgym.wrappers.NormalizeReward` (the EMA of mtenv's NormalizedEnvWrapper, mtenv/envs/metaworld/env.py)."""

import gymnasium as gym
import numpy as np
import pytest

from mtgym.wrappers.normalize_reward import NormalizeReward

from ._stubs import RewardSequenceEnv


def reference_ema(rewards, alpha, epsilon):
    """The recurrence of mtenv's NormalizedEnvWrapper (mtenv/envs/metaworld/env.py), written out independently of the
    wrapper."""
    mean, var, out = 0.0, 1.0, []
    for r in rewards:
        mean = (1 - alpha) * mean + alpha * r
        var = (1 - alpha) * var + alpha * (r - mean) ** 2
        out.append(r / (np.sqrt(var) + epsilon))
    return out


def test_hand_computed_values():
    # alpha = 0.5, rewards 2, 0, -2, computed by hand:
    # r=2:  mean 1,    var 0.5*1   + 0.5*(2-1)^2     = 1.0     -> 2 / 1          = 2
    # r=0:  mean 0.5,  var 0.5*1   + 0.5*(0-0.5)^2   = 0.625   -> 0
    # r=-2: mean -0.75, var 0.5*0.625 + 0.5*(-1.25)^2 = 1.09375 -> -2 / sqrt(1.09375)
    env = NormalizeReward(RewardSequenceEnv([2.0, 0.0, -2.0]), alpha=0.5, epsilon=1e-12)
    env.reset(seed=0)
    rewards = [env.step(0)[1] for _ in range(3)]
    assert rewards[0] == pytest.approx(2.0)
    assert rewards[1] == 0.0
    assert rewards[2] == pytest.approx(-2.0 / np.sqrt(1.09375))
    assert env.mean == pytest.approx(-0.75)
    assert env.var == pytest.approx(1.09375)


def test_default_alpha_matches_recurrence_and_keeps_stats_across_resets():
    seq = [1.0, 5.0, -3.0, 0.5, 10.0, 10.0, -7.0]
    env = NormalizeReward(RewardSequenceEnv(seq, episode_length=3))
    assert env.alpha == 0.001 and env.epsilon == 1e-8
    env.reset(seed=0)
    got = []
    for _ in seq:
        _, r, terminated, truncated, _ = env.step(0)
        got.append(r)
        if terminated or truncated:
            env.reset()  # the statistics must survive resets (one update per step, not per episode)
    np.testing.assert_allclose(got, reference_ema(seq, 0.001, 1e-8), rtol=1e-12)


def test_mean_is_not_subtracted():
    # A constant positive reward stays positive and converges to c / std, with std -> 0 slowly: never centred to 0.
    env = NormalizeReward(RewardSequenceEnv([3.0] * 50), alpha=0.1)
    env.reset(seed=0)
    rewards = [env.step(0)[1] for _ in range(50)]
    assert all(r > 0 for r in rewards)
    assert rewards[-1] > rewards[0]  # var shrinks, so the scale grows


def test_obs_and_flags_pass_through():
    inner = RewardSequenceEnv([1.0, 1.0], episode_length=2)
    env = NormalizeReward(inner)
    obs0, _ = env.reset(seed=3)
    obs1, _, terminated, truncated, info = env.step(0)
    assert obs1 == 1 and obs0 == 0
    _, _, terminated, truncated, info = env.step(0)
    assert terminated and not truncated and info == {"t": 2}


@pytest.mark.parametrize(("alpha", "epsilon"), [(0.0, 1e-8), (1.5, 1e-8), (-0.1, 1e-8), (0.1, 0.0), (0.1, -1.0)])
def test_invalid_arguments(alpha, epsilon):
    with pytest.raises(ValueError, match=r"alpha|epsilon"):
        NormalizeReward(RewardSequenceEnv([1.0]), alpha=alpha, epsilon=epsilon)


def test_record_constructor_args_and_real_env():
    env = NormalizeReward(gym.make("CartPole-v1"), alpha=0.01)
    assert env.spec is not None
    assert env.spec.additional_wrappers[-1].kwargs == {"alpha": 0.01, "epsilon": 1e-8}
    env.reset(seed=0)
    _, r, *_ = env.step(0)
    assert r == pytest.approx(reference_ema([1.0], 0.01, 1e-8)[0])
