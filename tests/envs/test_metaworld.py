"""Meta-World MT envs: mtrl protocol (MT-MetaWorld-*) and Meta-World+ (MT-MetaWorldPlus-*), on MT10 and a few MT50 tasks."""

import pickle

import gymnasium as gym
import metaworld
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from metaworld.env_dict import MT10_V3, MT25_V3, MT50_V3
from metaworld.policies import SawyerReachV3Policy
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mtgym  # noqa: F401
from mtgym.envs.metaworld import N_GOALS, MetaWorldMTEnv, task_goal_seeds
from mtsb3.common.env_util import make_mt_vec_env

# the mtrl/mtenv MT10 order (mtenv/envs/metaworld/env.py), with Meta-World v3 names
MTRL_MT10 = [
    "reach",
    "push",
    "pick-place",
    "door-open",
    "drawer-open",
    "drawer-close",
    "button-press-topdown",
    "peg-insert-side",
    "window-open",
    "window-close",
]
GOAL = slice(36, 39)


def rollout(env, seed, n_steps, task=None, action_seed=0):
    """Reset with ``seed`` (on ``task``) and step ``n_steps`` fixed random actions; return everything seen."""
    options = None if task is None else {"task_state": task}
    obs, _ = env.reset(seed=seed, options=options)
    actions = np.random.default_rng(action_seed).uniform(-1, 1, (n_steps, 4)).astype(np.float32)
    out = [obs["env_obs"]]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out += [obs["env_obs"], reward, terminated, truncated, info["success"]]
    return out


@pytest.fixture(scope="module")
def mt10_v0():
    env = gym.make("MT-MetaWorld-MT10-v0")
    yield env
    env.close()


@pytest.fixture(scope="module")
def mt10_plus():
    env = gym.make("MT-MetaWorldPlus-MT10-v0")
    yield env
    env.close()


def test_task_order_matches_metaworld(mt10_v0, mt10_plus):
    assert mt10_v0.unwrapped.task_names == list(MT10_V3) == [f"{name}-v3" for name in MTRL_MT10]
    assert mt10_plus.unwrapped.task_names == list(MT10_V3)
    assert mt10_v0.observation_space["task_obs"] == gym.spaces.Discrete(10)
    mt25 = gym.make("MT-MetaWorldPlus-MT25-v0")
    mt50 = gym.make("MT-MetaWorld-MT50-v0")
    assert mt25.unwrapped.task_names == list(MT25_V3) and len(MT25_V3) == 25
    assert mt50.unwrapped.task_names == list(MT50_V3) and len(MT50_V3) == 50
    assert mt50.observation_space["task_obs"] == gym.spaces.Discrete(50)
    for env in (mt25, mt50):
        env.close()


def test_goals_are_metaworlds_own_per_task_goal_sets(mt10_v0):
    # the 50 goals of a task are exactly metaworld.MT1(task, seed)'s, with a seed of the task's own
    env = mt10_v0.unwrapped
    env.reset(options={"task_state": 0})
    goal_seed, fixed = task_goal_seeds(0, "reach-v3")
    reference = [pickle.loads(t.data)["rand_vec"] for t in metaworld.MT1("reach-v3", seed=goal_seed).train_tasks]
    goals = env.active_env.get_wrapper_attr("goals")
    assert goals.shape == (N_GOALS, 6)
    np.testing.assert_array_equal(goals, np.stack(reference))
    assert env.goal_index == fixed


def test_fixed_goal_is_kept_for_every_reset_under_v0(mt10_v0):
    env = mt10_v0.unwrapped
    first, _ = mt10_v0.reset(seed=0, options={"task_state": 2})
    index = env.goal_index
    for seed in (0, 1, 123, None, None):
        obs, _ = mt10_v0.reset(seed=seed)
        assert env.goal_index == index
        # the start state is fully determined by the fixed goal: identical observations, goal included
        np.testing.assert_array_equal(obs["env_obs"], first["env_obs"])
    np.testing.assert_array_equal(first["env_obs"][GOAL], env.goal[-3:].astype(np.float32))
    # the goal does not depend on the reset seed, so a second env (e.g. for evaluation) gets the same one
    other = gym.make("MT-MetaWorld-MT10-v0", initial_task_state=2)
    np.testing.assert_array_equal(other.reset(seed=99)[0]["env_obs"], first["env_obs"])
    other.close()


def test_goal_is_resampled_at_every_reset_under_metaworld_plus(mt10_plus):
    env = mt10_plus.unwrapped
    mt10_plus.reset(seed=0, options={"task_state": 0})
    indices, goals = [], []
    for _ in range(6):
        obs, _ = mt10_plus.reset()
        indices.append(env.goal_index)
        goals.append(obs["env_obs"][GOAL])
    assert len(set(indices)) >= 4
    assert len({tuple(g) for g in goals}) == len(set(indices))
    # reset(seed=) is honoured (Meta-World itself ignores it): same seed, same goal; another seed, another goal
    by_seed = {}
    for seed in (0, 1, 0, 1, 2):
        mt10_plus.reset(seed=seed)
        by_seed.setdefault(seed, set()).add(env.goal_index)
    assert all(len(v) == 1 for v in by_seed.values())
    assert len({next(iter(v)) for v in by_seed.values()}) == 3


def test_different_tasks_get_different_goals(mt10_v0):
    env = mt10_v0.unwrapped
    fixed = [task_goal_seeds(0, name)[1] for name in env.task_names]
    assert len(set(fixed)) > 1  # Meta-World's MT10 would give every task the same goal index
    goal_obs = []
    for task in (0, 1, 2):
        obs, _ = mt10_v0.reset(seed=0, options={"task_state": task})
        assert obs["task_obs"] == task and env.goal_index == fixed[task]
        goal_obs.append(obs["env_obs"][GOAL])
    assert len({tuple(g) for g in goal_obs}) == 3
    # the same task has the same goals in MT10 and MT50 (per-task seeds keyed by Meta-World's task id)
    mt50 = gym.make("MT-MetaWorld-MT50-v0", initial_task_state=MT50_V3_INDEX["push-v3"])
    np.testing.assert_array_equal(mt50.reset(seed=5)[0]["env_obs"][GOAL], goal_obs[1])
    mt50.close()


MT50_V3_INDEX = {name: i for i, name in enumerate(MT50_V3)}


@pytest.mark.parametrize("env_id", ["MT-MetaWorld-MT10-v0", "MT-MetaWorldPlus-MT10-v0"])
def test_same_seed_same_trajectory(env_id):
    env_a, env_b = gym.make(env_id, initial_task_state=4), gym.make(env_id, initial_task_state=4)
    run_a, run_b = rollout(env_a, 7, 40), rollout(env_b, 7, 40)
    for x, y in zip(run_a, run_b, strict=True):
        np.testing.assert_array_equal(x, y)
    # a re-seeded reset of the same env replays it too (the reward normaliser restarts with the seed)
    for x, y in zip(rollout(env_a, 7, 40), run_a, strict=True):
        np.testing.assert_array_equal(x, y)
    if "Plus" in env_id:  # another seed draws another goal, hence another trajectory
        assert not np.array_equal(rollout(env_b, 8, 1)[0], run_a[0])
    env_a.close()
    env_b.close()


@pytest.mark.parametrize(("env_id", "horizon"), [("MT-MetaWorld-MT10-v0", 150), ("MT-MetaWorldPlus-MT10-v0", 500)])
def test_truncation_at_the_horizon_never_termination(env_id, horizon):
    env = gym.make(env_id, initial_task_state=9)
    env.reset(seed=0)
    action = np.zeros(4, dtype=np.float32)
    flags = [env.step(action)[2:4] for _ in range(horizon)]
    assert not any(terminated for terminated, _ in flags)
    assert [truncated for _, truncated in flags] == [False] * (horizon - 1) + [True]
    env.close()


def test_max_episode_steps_override_goes_past_metaworlds_500():
    env = gym.make("MT-MetaWorld-MT1-v0", task_name="window-close-v3", max_episode_steps=520)
    env.reset(seed=0)
    action = np.zeros(4, dtype=np.float32)
    truncations = [env.step(action)[3] for _ in range(520)]  # Meta-World alone raises ValueError after 500
    assert truncations[-1] and not any(truncations[:-1])
    env.close()


@pytest.mark.filterwarnings("ignore:Constant")  # a note from Meta-World's scripted policy
def test_success_keys_are_floats_and_a_scripted_policy_succeeds():
    env = gym.make("MT-MetaWorld-MT1-v0", task_name="reach-v3")
    obs, _ = env.reset(seed=0)
    policy = SawyerReachV3Policy()
    successes = []
    for _ in range(150):
        obs, _, _, truncated, info = env.step(policy.get_action(obs["env_obs"]))
        assert type(info["success"]) is float and type(info["is_success"]) is float
        assert info["success"] == info["is_success"] in (0.0, 1.0)
        successes.append(info["success"])
    assert max(successes) == 1.0 and truncated
    env.close()


def test_observations_are_float32_inside_the_space(mt10_v0):
    space = mt10_v0.observation_space
    rng = np.random.default_rng(0)
    for task in (0, 3, 7):
        obs, _ = mt10_v0.reset(seed=task, options={"task_state": task})
        for _ in range(20):
            assert obs["env_obs"].dtype == np.float32 and space.contains(obs), (task, obs)
            obs = mt10_v0.step(rng.uniform(-1, 1, 4).astype(np.float32))[0]


def test_mt1_goal_is_visible_and_task_name_selects_the_task():
    env = gym.make("MT-MetaWorld-MT1-v0")
    assert env.unwrapped.task_names == ["pick-place-v3"] and env.observation_space["task_obs"] == gym.spaces.Discrete(1)
    obs, _ = env.reset(seed=0)
    goal = obs["env_obs"][GOAL]
    assert np.abs(goal).min() > 0  # the reference's ML1-based MT1 zeroed these (README, "Differences from mtrl and mtenv")
    np.testing.assert_allclose(goal, env.unwrapped.goal[-3:], rtol=1e-6)
    space = env.observation_space["env_obs"]  # a single task declares its exact goal bounds
    assert np.all(np.isfinite(space.low[GOAL])) and space.contains(obs["env_obs"])
    env.close()
    with pytest.raises(ValueError, match=r"Unknown Meta-World task 'pick-place-v1'.*reach-v3"):
        gym.make("MT-MetaWorld-MT1-v0", task_name="pick-place-v1")


def test_reward_normalisation_divides_by_running_std_and_can_be_turned_off():
    def rewards(**kwargs):
        run = rollout(gym.make("MT-MetaWorld-MT10-v0", initial_task_state=1, **kwargs), 0, 60)
        return np.array(run[2::5])

    normalised, raw = rewards(), rewards(normalize_reward=False)
    mean, var, expected = 0.0, 1.0, []
    for r in raw:  # mtenv's NormalizedEnvWrapper: EMA with alpha 0.001, mean 0 / var 1 at the start, mean not subtracted
        mean = 0.999 * mean + 0.001 * r
        var = 0.999 * var + 0.001 * (r - mean) ** 2
        expected.append(r / (np.sqrt(var) + 1e-8))
    np.testing.assert_allclose(normalised, expected, rtol=1e-10)
    assert not np.allclose(normalised, raw)
    # v0 uses the original (v1) reward; the v2 reward (Meta-World+) differs in scale
    v2 = rewards(normalize_reward=False, reward_function_version="v2")
    assert not np.allclose(v2, raw)


def test_goal_mode_kwarg_overrides_the_protocol():
    env = gym.make("MT-MetaWorld-MT10-v0", goal_mode="resample")
    indices = set()
    env.reset(seed=0)
    for _ in range(5):
        env.reset()
        indices.add(env.unwrapped.goal_index)
    assert len(indices) > 1
    env.close()
    env = gym.make("MT-MetaWorldPlus-MT10-v0", goal_mode="fixed")
    assert len({(env.reset(seed=s), env.unwrapped.goal_index)[1] for s in range(4)}) == 1
    env.close()


def test_lazy_build_mt50(monkeypatch):
    def eager(*args, **kwargs):
        raise AssertionError("metaworld.MT50() builds all 50 tasks")

    monkeypatch.setattr(metaworld, "MT50", eager)
    env = gym.make("MT-MetaWorld-MT50-v0", initial_task_state=3)
    assert env.unwrapped.n_built == 1
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert env.unwrapped.n_built == 1
    obs, _ = env.reset(options={"task_state": 42})
    assert obs["task_obs"] == 42 and env.unwrapped.n_built == 2 and env.unwrapped.task_name == MT50_V3_LIST[42]
    env.close()


MT50_V3_LIST = list(MT50_V3)


def test_bad_arguments_raise_value_errors(mt10_v0):
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        mt10_v0.unwrapped.set_task_state(10)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        mt10_v0.reset(options={"task_state": -1})
    with pytest.raises(ValueError, match=r"\[0, 49\]"):
        gym.make("MT-MetaWorld-MT50-v0", initial_task_state=50)
    with pytest.raises(ValueError, match=r"goal_mode.*'fixed', 'resample'"):
        gym.make("MT-MetaWorld-MT10-v0", goal_mode="random")
    with pytest.raises(ValueError, match=r"reward_function_version.*'v1', 'v2'"):
        gym.make("MT-MetaWorld-MT10-v0", reward_function_version="v3")
    with pytest.raises(ValueError, match=r"benchmark 'MT20'.*MT25"):
        MetaWorldMTEnv(benchmark="MT20")
    with pytest.raises(ValueError, match="task_name is only used by the MT1"):
        MetaWorldMTEnv(benchmark="MT10", task_name="reach-v3")


def test_make_vec_and_make_mt_vec_env_give_one_task_per_sub_env():
    envs = gym.make_vec("MT-MetaWorld-MT10-v0", num_envs=10)
    obs, _ = envs.reset(seed=0)
    np.testing.assert_array_equal(obs["task_obs"], np.arange(10))
    assert [env.unwrapped.n_built for env in envs.envs] == [1] * 10
    obs, *_ = envs.step(envs.action_space.sample())
    assert obs["env_obs"].shape == (10, 39) and obs["env_obs"].dtype == np.float32
    envs.close()
    venv = make_mt_vec_env("MT-MetaWorld-MT50-v0", seed=0, tasks=[0, 25, 49])
    obs = venv.reset()
    np.testing.assert_array_equal(obs["task_obs"].ravel(), [0, 25, 49])
    assert [task for task in venv.env_method("get_task_state")] == [0, 25, 49]
    assert venv.get_attr("n_built") == [1, 1, 1]
    venv.close()


@pytest.mark.filterwarnings("ignore:.*infinity")  # object positions are unbounded in Meta-World itself
def test_check_env_gymnasium_and_sb3(mt10_plus):
    env = gym.make("MT-MetaWorld-MT10-v0")
    check_env(env.unwrapped)  # includes rendering every declared mode headless (MUJOCO_GL=egl)
    sb3_check_env(env)
    check_env(mt10_plus.unwrapped, skip_render_check=True)
    sb3_check_env(mt10_plus)
    env.close()


def test_render_rgb_array_headless():
    env = gym.make("MT-MetaWorld-MT1-v0", render_mode="rgb_array", width=64, height=48, camera_name="corner")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()
