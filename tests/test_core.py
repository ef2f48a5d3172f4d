import numpy as np
import pytest
from gymnasium import spaces

from mtgym.core import check_action, check_count, check_task_index
from mtgym.envs.bandit import FiniteMTBanditEnv, MTBanditEnv
from mtgym.envs.point_goal import MTPointGoal


def test_check_task_index_accepts_ints_and_numpy():
    assert check_task_index(3, 5) == 3
    assert check_task_index(np.int64(0), 5) == 0
    assert check_task_index(np.array(4), 5) == 4


@pytest.mark.parametrize("bad", [-1, 5, 2.0, "1", True, None])
def test_check_task_index_names_the_valid_range(bad):
    with pytest.raises(ValueError, match=r"\[0, 4\] \(5 tasks\)"):
        check_task_index(bad, 5)


def test_reset_seeds_task_rng_when_unset():
    a, b = MTBanditEnv(4), MTBanditEnv(4)
    a.reset(seed=7)
    b.reset(seed=7)
    np.testing.assert_array_equal(a.get_task_obs(), b.get_task_obs())
    assert [a.sample_task_state().tolist() for _ in range(3)] == [b.sample_task_state().tolist() for _ in range(3)]


def test_seed_task_is_independent_of_env_seed():
    a, b = MTBanditEnv(4), MTBanditEnv(4)
    a.seed_task(1)
    b.seed_task(1)
    a.reset(seed=10)
    b.reset(seed=20)  # a different env seed must not change the tasks drawn
    np.testing.assert_array_equal(a.get_task_obs(), b.get_task_obs())
    # and reset(seed=) does not override an explicit task seed
    c = MTBanditEnv(4)
    c.seed_task(2)
    c.reset(seed=10)
    assert not np.array_equal(a.get_task_obs(), c.get_task_obs())


def test_assert_task_seed_is_set():
    env = MTBanditEnv(3)
    with pytest.raises(RuntimeError, match="seed_task"):
        env.assert_task_seed_is_set()
    env.reset(seed=0)
    env.assert_task_seed_is_set()


def test_plain_reset_keeps_task_and_option_switches():
    env = MTPointGoal(n_tasks=4, initial_task_state=2)
    obs, _ = env.reset(seed=0)
    assert obs["task_obs"] == 2
    obs, _ = env.reset()
    assert obs["task_obs"] == 2 and env.get_task_state() == 2
    obs, _ = env.reset(options={"task_state": 3})
    assert obs["task_obs"] == 3 and env.task_name == "goal_3"
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        env.reset(options={"task_state": 4})


def test_reset_task_state_uses_task_rng():
    env = FiniteMTBanditEnv(n_tasks=50, n_arms=2)
    env.seed_task(3)
    drawn = []
    for _ in range(5):
        env.reset_task_state()
        drawn.append(env.get_task_state())
    env.seed_task(3)
    assert [env.sample_task_state() for _ in range(5)] == drawn
    assert len(set(drawn)) > 1


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True, None])
def test_check_count_names_the_valid_range(bad):
    with pytest.raises(ValueError, match=rf"n_experts must be an integer >= 1, got {bad!r}"):
        check_count(bad, "n_experts")
    assert check_count(np.int64(3), "n") == 3 and check_count(2, "n_layers", minimum=2) == 2


@pytest.mark.parametrize("bad", [-1, 5, 1.5, np.nan, np.array([1]), "1"])
def test_check_action_rejects_what_discrete_cannot_execute(bad):
    with pytest.raises(ValueError, match=r"Invalid action .*: expected an integer in \[0, 4\]"):
        check_action(spaces.Discrete(5), bad)
    check_action(spaces.Discrete(5), np.int64(4))


@pytest.mark.parametrize("bad", [[np.nan, 0.0], [0.0, np.inf], [0.0], [[0.0, 0.0]], ["a", "b"]])
def test_check_action_rejects_non_finite_or_misshapen_box_actions(bad):
    with pytest.raises(ValueError, match=r"expected finite values of shape \(2,\)"):
        check_action(spaces.Box(-1, 1, (2,)), np.asarray(bad) if not isinstance(bad[0], str) else bad)
    check_action(spaces.Box(-1, 1, (2,)), np.array([5.0, -5.0]))  # out of bounds is the env's to clip


def test_point_goal_rejects_non_finite_actions():
    env = MTPointGoal()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"Invalid action array\(\[nan,  0\.\]\): expected finite values of shape \(2,\)"):
        env.step(np.array([np.nan, 0.0]))
    obs, reward, *_ = env.step(np.array([3.0, 0.0]))  # clipped, and the episode goes on with finite values
    assert np.isfinite(obs["env_obs"]).all() and np.isfinite(reward)
