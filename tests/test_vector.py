import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from mtgym.vector import task_env_fns
from mtsb3 import make_mt_vec_env


@pytest.mark.parametrize("strategy", ["sync", "async"])
def test_make_vec_one_task_per_sub_env(strategy):
    envs = gym.make_vec("MT-PointGoal-v0", num_envs=6, vector_strategy=strategy)
    obs, _ = envs.reset(seed=0)
    np.testing.assert_array_equal(obs["task_obs"], [0, 1, 2, 3, 0, 1])
    obs, *_ = envs.step(envs.action_space.sample())
    np.testing.assert_array_equal(obs["task_obs"], [0, 1, 2, 3, 0, 1])
    envs.close()


def test_make_vec_async_context_is_overridable():
    envs = gym.make_vec("MT-PointGoal-v0", num_envs=2, vector_strategy="async", context="spawn")
    try:
        assert envs.context == "spawn"
        np.testing.assert_array_equal(envs.reset(seed=0)[0]["task_obs"], [0, 1])
    finally:
        envs.close()


def test_make_vec_bad_strategy():
    with pytest.raises(ValueError, match="'sync' or 'async'"):
        gym.make_vec("MT-PointGoal-v0", num_envs=2, vector_strategy="threads")


def test_make_vec_continuous_tasks_differ_per_sub_env():
    envs = gym.make_vec("MT-CartPole-v0", num_envs=3)
    obs, _ = envs.reset(seed=0)
    assert len({tuple(t) for t in obs["task_obs"].round(6)}) == 3
    envs.close()


def test_make_mt_vec_env_tasks_and_seeds():
    venv = make_mt_vec_env("MT-PointGoal-v0", seed=3)
    assert venv.num_envs == 4
    obs = venv.reset()
    np.testing.assert_array_equal(obs["task_obs"].ravel(), [0, 1, 2, 3])
    assert venv.get_attr("task_names") == [["goal_0", "goal_1", "goal_2", "goal_3"]] * 4
    # seeded with seed + i: start positions differ across sub-envs but repeat across constructions
    again = make_mt_vec_env("MT-PointGoal-v0", seed=3).reset()
    np.testing.assert_array_equal(obs["env_obs"], again["env_obs"])
    assert len({tuple(p) for p in obs["env_obs"]}) == 4
    venv.close()


def test_make_mt_vec_env_subprocesses_match_dummy():
    # two sub-envs only: each subprocess imports torch and every env package, which is slow on 2 cores
    sub = make_mt_vec_env("MT-PointGoal-v0", seed=3, tasks=[2, 3], vec_env_cls=SubprocVecEnv)
    dummy = make_mt_vec_env("MT-PointGoal-v0", seed=3, tasks=[2, 3], vec_env_cls=DummyVecEnv)
    a, b = sub.reset(), dummy.reset()
    np.testing.assert_array_equal(a["task_obs"].ravel(), [2, 3])
    np.testing.assert_array_equal(a["env_obs"], b["env_obs"])
    sub.close()


def test_make_mt_vec_env_round_robin_and_split():
    venv = make_mt_vec_env("MT-PointGoal-v0", n_envs=3, tasks=[1, 3])
    np.testing.assert_array_equal(venv.reset()["task_obs"].ravel(), [1, 3, 1])
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        make_mt_vec_env("MT-PointGoal-v0", tasks=[4])
    with pytest.raises(ValueError, match="no finite task set"):
        make_mt_vec_env("MT-CartPole-v0")


def test_make_mt_vec_env_wrapper_and_monitor(tmp_path):
    venv = make_mt_vec_env(
        "MT-PointGoal-v0",
        monitor_dir=str(tmp_path),
        wrapper_class=gym.wrappers.ClipReward,
        wrapper_kwargs={"min_reward": -0.5},
    )
    venv.reset()
    _, rewards, _, _ = venv.step(np.zeros((4, 2), dtype=np.float32))
    assert np.all(rewards >= -0.5)
    for _ in range(30):
        venv.step(np.zeros((4, 2), dtype=np.float32))
    files = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.monitor.csv"))
    assert files == ["task0", "task1", "task2", "task3"]


def test_task_env_fns_are_picklable():
    import pickle

    fns = task_env_fns("MT-PointGoal-v0", 2)
    env = pickle.loads(pickle.dumps(fns[1]))()
    assert env.unwrapped.get_task_state() == 1


@pytest.mark.parametrize("tasks", [[2.7], [0, 4], [-1]])
def test_tasks_must_be_integer_indices(tasks):
    message = rf"Invalid `tasks` entry {tasks[-1]!r}: expected an integer task index in \[0, 3\] \(4 tasks\)"
    with pytest.raises(ValueError, match=message):
        make_mt_vec_env("MT-PointGoal-v0", tasks=tasks)  # 2.7 used to run task 2
    with pytest.raises(ValueError, match=message):
        gym.make_vec("MT-PointGoal-v0", num_envs=2, tasks=tasks)


@pytest.mark.parametrize("n", [0, -2, 1.5])
def test_number_of_sub_envs_must_be_positive(n):
    with pytest.raises(ValueError, match=rf"n_envs must be an integer >= 1, got {n!r}"):
        make_mt_vec_env("MT-PointGoal-v0", n_envs=n)  # 0 used to raise an IndexError
    with pytest.raises(ValueError, match=rf"num_envs must be an integer >= 1, got {n!r}"):
        gym.make_vec("MT-PointGoal-v0", num_envs=n)
