import gymnasium as gym
import numpy as np
import pytest

import mtgym  # noqa: F401
from mtgym.envs.tabular_mdp import TMDP, UniformTMDP


def test_spaces_and_task_obs_layout():
    env = gym.make("MT-TabularMDP-v0", n_states=3, n_actions=2)
    obs, _ = env.reset(seed=0)
    assert obs["env_obs"].shape == (4,) and obs["env_obs"][:3].sum() == 1.0 and obs["env_obs"][3] == 0.0
    r, t = env.unwrapped.get_task_state()
    np.testing.assert_allclose(obs["task_obs"], np.concatenate([r.ravel(), t.ravel()]).astype(np.float32))
    assert obs["task_obs"].shape == (3 * 2 + 3 * 2 * 3,)
    np.testing.assert_allclose(t.sum(-1), 1.0)


def test_step_follows_tables():
    env = UniformTMDP(n_states=2, n_actions=1)
    r = np.array([[1.0], [0.0]])
    t = np.array([[[0.0, 1.0]], [[1.0, 0.0]]])
    env.set_task_state((r, t))
    obs, _ = env.reset(seed=0)
    state = int(np.argmax(obs["env_obs"][:2]))
    for _ in range(6):
        obs, reward, term, trunc, _ = env.step(0)
        assert reward == (1.0 if state == 0 else 0.0) and obs["env_obs"][2] == reward
        assert int(np.argmax(obs["env_obs"][:2])) == 1 - state and not term and not trunc
        state = 1 - state


def test_tasks_differ_and_are_reproducible():
    a, b = UniformTMDP(), UniformTMDP()
    a.seed_task(0)
    b.seed_task(0)
    ta, tb = a.sample_task_state(), b.sample_task_state()
    np.testing.assert_array_equal(ta[0], tb[0])
    assert not np.array_equal(ta[0], a.sample_task_state()[0])


def test_invalid_tasks():
    with pytest.raises(NotImplementedError, match="UniformTMDP"):
        TMDP(2, 2).sample_task_state()
    with pytest.raises(ValueError, match="shape"):
        UniformTMDP(2, 2).set_task_state((np.zeros((2, 3)), np.ones((2, 2, 2)) / 2))
    with pytest.raises(ValueError, match="sum to 1"):
        UniformTMDP(2, 2).set_task_state((np.zeros((2, 2)), np.ones((2, 2, 2))))


@pytest.mark.parametrize("action", [-1, 99, 2.0])
def test_invalid_actions(action):
    env = gym.make("MT-TabularMDP-v0", disable_env_checker=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"Invalid action {action!r}: expected an integer in \[0, 4\]"):
        env.step(action)  # -1 used to take the last action, 99 to raise an IndexError


def test_task_state_that_is_not_a_pair():
    env = UniformTMDP(n_states=4, n_actions=5)
    with pytest.raises(ValueError, match=r"Invalid task state 3: expected a pair \(R, T\) with R of shape \(4, 5\)"):
        env.set_task_state(3)
    r, t = env.sample_task_state()
    r[0, 0] = np.nan
    with pytest.raises(ValueError, match="R must hold probabilities"):
        env.set_task_state((r, t))
