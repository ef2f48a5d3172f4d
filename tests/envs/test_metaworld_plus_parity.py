"""MT-MetaWorldPlus-* against the installed official Meta-World: goal sets, goal draws, trajectories and evaluation."""

import pickle
import warnings

import gymnasium as gym
import metaworld
import numpy as np
import pytest
from gymnasium.utils.env_match import check_environments_match
from metaworld.env_dict import MT10_V3, MT50_V3
from metaworld.evaluation import evaluation
from metaworld.policies import ENV_POLICY_MAP
from stable_baselines3.common.vec_env import DummyVecEnv

import mtgym  # noqa: F401
from mtgym.envs.metaworld import benchmark_goals
from mtgym.vector import make_task_vector_env
from mtsb3.common.callbacks import evaluate_per_task
from mtsb3.common.env_util import make_mt_vec_env

PLUS_MT10 = "MT-MetaWorldPlus-MT10-v0"


def official_goals(benchmark: metaworld.Benchmark, task_name: str) -> np.ndarray:
    return np.stack([pickle.loads(task.data)["rand_vec"] for task in benchmark.train_tasks if task.env_name == task_name])


@pytest.mark.parametrize("seed", [0, 1])
def test_mt10_goal_sets_equal_the_official_benchmark(seed):
    official = metaworld.MT10(seed=seed)
    env = gym.make(PLUS_MT10, seed=seed)
    for task, name in enumerate(MT10_V3):
        env.reset(options={"task_state": task})
        np.testing.assert_array_equal(env.unwrapped.active_env.get_wrapper_attr("goals"), official_goals(official, name))
    env.close()


@pytest.mark.expensive  # metaworld.MT50() builds and resets all 50 tasks 50 times: ~40 s per seed
@pytest.mark.parametrize("seed", [0, 1])
def test_mt50_goal_sets_equal_the_official_benchmark(seed):
    official = metaworld.MT50(seed=seed)
    names = tuple(MT50_V3)
    for task, name in enumerate(names):
        np.testing.assert_array_equal(benchmark_goals(names, seed, task), official_goals(official, name))


def test_flagship_ids_print_no_deprecation_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for env_id in ("MT-MetaWorld-MT10-v0", PLUS_MT10):
            gym.make(env_id).close()


class _Float32EnvObs(gym.ObservationWrapper):
    """Both sides as one float32 Box, so that ``check_environments_match`` compares the 39 values (to 1e-5)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (39,), np.float32)

    def observation(self, obs):
        return np.asarray(obs["env_obs"] if isinstance(obs, dict) else obs, dtype=np.float32)


@pytest.fixture(scope="module")
def official_mt10_seed1():
    envs = gym.make_vec("Meta-World/MT10", seed=1, vector_strategy="sync")
    yield envs
    envs.close()


def test_vector_env_matches_the_official_one_step_for_step(official_mt10_seed1):
    # fresh envs made with the same seed and first reset with it, then autoresets: same goals, same physics
    official = official_mt10_seed1
    ours = gym.make_vec(PLUS_MT10, seed=1, autoreset_mode="SameStep")
    assert ours.num_envs == official.num_envs == 10
    ckpt = official.call("get_checkpoint")
    obs_a, _ = official.reset(seed=1)
    obs_b, _ = ours.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(505):  # past the 500-step truncation: the second episode draws its goal as Meta-World does
        np.testing.assert_allclose(obs_b["env_obs"], obs_a, atol=1e-6)
        actions = rng.uniform(-1, 1, (10, 4)).astype(np.float32)
        obs_a, rew_a, term_a, trunc_a, info_a = official.step(actions)
        obs_b, rew_b, term_b, trunc_b, info_b = ours.step(actions)
        np.testing.assert_array_equal(rew_b, rew_a)
        np.testing.assert_array_equal(trunc_b, trunc_a)
        np.testing.assert_array_equal(term_b, term_a)
        assert ("success" in info_b) == ("success" in info_a)  # absent at a same-step autoreset
        if "success" in info_a:
            np.testing.assert_array_equal(info_b["success"], info_a["success"])
    ours.close()
    official.call("load_checkpoint", ckpt)


@pytest.mark.parametrize("task", [0, 3, 7])
def test_check_environments_match_per_task(official_mt10_seed1, task):
    official = official_mt10_seed1
    ckpt = official.call("get_checkpoint")
    ours = gym.make(PLUS_MT10, seed=1, initial_task_state=task)
    check_environments_match(
        _Float32EnvObs(official.envs[task]), _Float32EnvObs(ours), num_steps=300, seed=1, info_comparison="superset"
    )
    ours.close()
    official.call("load_checkpoint", ckpt)


class ScriptedAgent:
    """Meta-World's scripted policies, one per sub-env: a fixed deterministic agent for both evaluators."""

    def __init__(self, task_names):
        self.policies = [ENV_POLICY_MAP[name]() for name in task_names]

    def eval_action(self, observations):
        return np.stack([policy.get_action(obs) for policy, obs in zip(self.policies, observations, strict=True)])

    def reset(self, env_mask):
        pass

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return self.eval_action(observation).astype(np.float32), state


@pytest.mark.filterwarnings("ignore:Constant")  # a note from Meta-World's scripted policies
def test_evaluation_follows_metaworlds_protocol(official_mt10_seed1):
    official = official_mt10_seed1
    ckpt = official.call("get_checkpoint")
    agent = ScriptedAgent(list(MT10_V3))
    _, _, success_per_task, returns = evaluation(agent, official, num_episodes=2)
    official.call("load_checkpoint", ckpt)
    # our evaluator on the very same sub-envs (restored to the same state), ending episodes at success
    venv = DummyVecEnv([lambda env=env: env for env in official.envs])
    ours = evaluate_per_task(agent, venv, n_eval_episodes=2, terminate_on_success=True)
    assert official.get_attr("terminate_on_success") == (False,) * 10  # both restore Meta-World's training setting
    for i, name in enumerate(MT10_V3):
        assert ours[f"task_{i}"]["mean_reward"] == pytest.approx(np.mean(returns[name]), rel=1e-6)
        assert ours[f"task_{i}"]["success_rate"] == success_per_task[name]
    assert np.mean(list(success_per_task.values())) > 0.5  # the scripted policies succeed, so episodes end early
    assert max(r["mean_ep_length"] for r in ours.values()) < 500
    official.call("load_checkpoint", ckpt)


def test_official_vector_env_arguments():
    envs = gym.make_vec(
        PLUS_MT10,
        seed=0,
        use_one_hot=True,
        terminate_on_success=True,
        reward_function_version="v1",
        max_episode_steps=20,
        vector_strategy="sync",
    )
    assert envs.num_envs == 10  # no num_envs: one sub-env per task, as Meta-World
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (10, 49) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[:, 39:], np.eye(10))
    assert envs.get_attr("terminate_on_success") == (True,) * 10
    assert envs.envs[0].unwrapped.active_env.unwrapped.reward_function_version == "v1"
    truncations = [envs.step(np.zeros((10, 4), np.float32))[3] for _ in range(20)]
    assert truncations[-1].all() and not np.any(truncations[:-1])
    envs.close()
    with pytest.raises(ValueError, match="vector_strategy='sync' and vectorization_mode='async' disagree"):
        make_task_vector_env(PLUS_MT10, vector_strategy="sync", vectorization_mode="async")


@pytest.mark.filterwarnings("ignore:Constant")
def test_success_terminates_when_asked():
    env = gym.make(PLUS_MT10, seed=0, terminate_on_success=True)
    obs, _ = env.reset(seed=0)
    policy = ENV_POLICY_MAP["reach-v3"]()
    for _ in range(499):
        obs, _, terminated, _, info = env.step(policy.get_action(obs["env_obs"]))
        assert terminated == (info["success"] == 1.0)
        if terminated:
            break
    assert terminated
    env.unwrapped.toggle_terminate_on_success(False)
    assert not env.step(policy.get_action(obs["env_obs"]))[2]  # still at the goal, but no longer terminating
    env.close()


class _GoalRecorder:
    """A zero-action agent that records the goal shown at the start of every episode, per sub-env."""

    def __init__(self, n_envs):
        self.goals = [[] for _ in range(n_envs)]

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        for i in np.flatnonzero(episode_start):
            self.goals[i].append(tuple(observation["env_obs"][i, 36:39]))
        return np.zeros((len(episode_start), 4), np.float32), state


def test_one_episode_per_goal_split_between_the_sub_envs_of_a_task():
    venv = make_mt_vec_env(PLUS_MT10, seed=0, tasks=[0, 0], env_kwargs=dict(max_episode_steps=3))
    recorder = _GoalRecorder(2)
    results = evaluate_per_task(recorder, venv, n_eval_episodes=1, one_episode_per_goal=True)
    assert results["reach-v3"]["n_episodes"] == 50
    goals = venv.envs[0].unwrapped.active_env.get_wrapper_attr("goals")  # reach: the goal is rand_vec[-3:]
    expected = {tuple(g) for g in goals[:, -3:].astype(np.float32)}
    assert [len(g) for g in recorder.goals] == [25, 25]
    assert set(recorder.goals[0]) | set(recorder.goals[1]) == expected and len(expected) == 50
    venv.reset()  # the sequence is cleared afterwards: goals are drawn again
    assert venv.get_attr("_goal_queue") == [[], []]
    venv.close()
    with pytest.raises(ValueError, match="one_episode_per_goal=True needs Meta-World sub-envs"):
        evaluate_per_task(recorder, make_mt_vec_env("MT-FiniteBandit-v0", seed=0), one_episode_per_goal=True)
