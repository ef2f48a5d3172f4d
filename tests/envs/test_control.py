import gymnasium as gym
import numpy as np
import pytest

import mtgym  # noqa: F401
from mtgym.envs.control import MTAcrobot, MTCartPole


def rollout(env, seed, n=50, task=None):
    options = None if task is None else {"task_state": task}
    obs, _ = env.reset(seed=seed, options=options)
    env.action_space.seed(seed)
    out = [obs["env_obs"]]
    for _ in range(n):
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        out.append(obs["env_obs"])
        if term or trunc:
            obs, _ = env.reset()
            out.append(obs["env_obs"])
    return np.array(out)


@pytest.mark.parametrize("env_id", ["MT-CartPole-v0", "MT-Acrobat-v0", "MT-Acrobot-v0"])
def test_same_seed_same_trajectory(env_id):
    a = rollout(gym.make(env_id), seed=3)
    b = rollout(gym.make(env_id), seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rollout(gym.make(env_id), seed=4))


def test_cartpole_task_maps_to_physics():
    env = MTCartPole(task_state=[1.0, -1.0, 0.5, -0.5, -0.3])
    assert env.gravity == pytest.approx(14.8)
    assert env.masscart == pytest.approx(0.5)
    assert env.masspole == pytest.approx(0.145)
    assert env.length == pytest.approx(0.35)
    assert env.force_mag == pytest.approx(-3.0, rel=1e-6)
    assert env.total_mass == pytest.approx(0.645)
    env.set_task_state(np.zeros(5))
    assert (env.gravity, env.masscart, env.masspole, env.length, env.force_mag) == pytest.approx((9.8, 1.0, 0.1, 0.5, 10.0))


def test_cartpole_different_task_different_dynamics():
    env = MTCartPole()
    light = rollout(env, seed=0, n=10, task=np.zeros(5, dtype=np.float32))
    heavy = rollout(env, seed=0, n=10, task=np.array([1, 0, 0, 0, 0], dtype=np.float32))
    np.testing.assert_array_equal(light[0], heavy[0])  # same start state
    assert not np.allclose(light[1:], heavy[1:])


def test_acrobot_task_space_matches_task_vector():
    env = gym.make("MT-Acrobot-v0")
    obs, _ = env.reset(seed=0)
    assert env.observation_space["task_obs"].shape == (7,) == obs["task_obs"].shape
    assert env.observation_space.contains(obs)


def test_acrobot_task_maps_to_physics_and_torque():
    env = MTAcrobot(task_state=[0.5, 1.0, -1.0, 0.2, 0.0, 0.0, 0.7])
    assert (env.link_length_1, env.link_length_2, env.link_mass_1, env.link_mass_2) == pytest.approx((1.25, 1.5, 0.5, 1.1))
    np.testing.assert_array_equal(env.torques, [-1.0, 0.0, 1.0])
    env.set_task_state([0, 0, 0, 0, 0, 0, -0.1])
    np.testing.assert_array_equal(env.torques, [1.0, 0.0, -1.0])
    a = rollout(env, seed=1, n=10, task=np.zeros(7, dtype=np.float32))
    b = rollout(env, seed=1, n=10, task=np.array([1, 0, 0, 0, 0, 0, 0], dtype=np.float32))
    assert not np.allclose(a[1:], b[1:])


@pytest.mark.parametrize("cls, dim", [(MTCartPole, 5), (MTAcrobot, 7)])
def test_invalid_task_state(cls, dim):
    with pytest.raises(ValueError, match=f"{dim} values in \\[-1, 1\\]"):
        cls(task_state=[0.0] * (dim - 1))
    with pytest.raises(ValueError):
        cls(task_state=[2.0] * dim)


def test_cartpole_terminates_and_truncates():
    env = gym.make("MT-CartPole-v0")
    env.reset(seed=0, options={"task_state": np.zeros(5, dtype=np.float32)})
    steps, term = 0, False
    while not term:
        _, r, term, trunc, _ = env.step(1)
        steps += 1
        assert r == 1.0 and not trunc
    assert 5 < steps < 100
    assert env.spec.max_episode_steps == 500


def test_acrobot_reward_is_minus_one_until_goal():
    env = gym.make("MT-Acrobat-v0")
    env.reset(seed=0)
    rewards = [env.step(0)[1] for _ in range(5)]
    assert rewards == [-1.0] * 5
