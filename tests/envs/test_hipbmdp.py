"""Tests for the HiP-BMDP dm_control families (:mod:`mtgym.envs.hipbmdp`, mtenv/envs/hipbmdp/env.py)."""

import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mtgym  # noqa: F401  (registers the ids)
from mtgym.envs.hipbmdp import (  # sets MUJOCO_GL before dm_control loads
    CHEETAH_TORSO_LENGTH,
    FINGER_SIZE,
    WALKER_FRICTION,
    DMCEnv,
)
from mtgym.vector import async_start_method
from mtgym.wrappers.frame_stack import FrameStack
from mtgym.wrappers.sticky_observation import StickyObservation

pytest.importorskip("dm_control")

FINGER = "MT-HiPBMDP-Finger-Spin-vary-size-v0"
CHEETAH = "MT-HiPBMDP-Cheetah-Run-vary-torso-length-v0"
FRICTION = "MT-HiPBMDP-Walker-Walk-vary-friction-v0"
LEN = "MT-HiPBMDP-Walker-Walk-vary-len-v0"
ALL_IDS = [FINGER, CHEETAH, FRICTION, LEN]


def _finger_radius(physics):
    # touchtop and touchbottom both take the "finger" default-class site size
    top, bottom = physics.named.model.site_size[["touchtop", "touchbottom"], 0]
    assert top == bottom
    assert physics.named.model.site_size["touchtop", 1] == pytest.approx(0.03)  # only the x radius varies
    return top


def _torso_half_length(physics):
    assert physics.named.model.geom_pos["torso", 0] == pytest.approx(0.0)  # fromto is symmetric, -L .. L
    return physics.named.model.geom_size["torso", 1]


def _friction(physics):
    sliding = physics.model.geom_friction[:, 0]
    np.testing.assert_allclose(sliding, sliding[0])  # every geom, floor included, inherits the default
    np.testing.assert_allclose(physics.model.geom_friction[:, 1:], [[0.1, 0.1]] * len(sliding))
    return sliding[0]


def _left_foot(physics):
    assert physics.named.model.geom_size["right_foot", 1] == pytest.approx(0.1)  # the right foot keeps the stock size
    return physics.named.model.geom_size["left_foot", 1]


# mtenv/envs/hipbmdp/env.py, written out independently of the implementation's tables: (reader, {task index: value}).
SPEC_VALUES = {
    FINGER: (_finger_radius, [0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25]),
    CHEETAH: (_torso_half_length, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]),
    FRICTION: (_friction, [0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6]),
    LEN: (_left_foot, [0.08, 0.09, 0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17]),
}


def _state_env(env_id, **kwargs):
    return gym.make(env_id, from_pixels=False, **kwargs)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_varied_parameter_read_back_from_physics(env_id):
    reader, values = SPEC_VALUES[env_id]
    env = _state_env(env_id, initial_task_state=0)
    env.unwrapped.set_task_state(9)
    assert env.unwrapped.n_built == 2
    for task in (0, 9):
        env.unwrapped.set_task_state(task)
        assert reader(env.unwrapped.physics) == pytest.approx(values[task], abs=1e-12)
        assert env.unwrapped.read_task_parameter() == pytest.approx(values[task], abs=1e-12)
    assert env.unwrapped.task_parameters == pytest.approx(values)
    assert env.observation_space["task_obs"] == gym.spaces.Discrete(10)
    assert env.unwrapped.task_names[0].endswith("_1") and env.unwrapped.task_names[9].endswith("_10")


def test_all_ten_finger_variants_match_spec():
    reader, values = SPEC_VALUES[FINGER]
    env = _state_env(FINGER)
    for task in range(10):
        env.unwrapped.set_task_state(task)
        assert reader(env.unwrapped.physics) == pytest.approx(values[task], abs=1e-12)


@pytest.mark.parametrize(("env_id", "stock_task"), [(FINGER, 0), (CHEETAH, 0), (FRICTION, 0), (LEN, 2)])
def test_stock_variant_equals_suite_model(env_id, stock_task):
    """Variant 1 is the stock model (variant 3 for ``len``, whose stock foot half-length 0.10 is the third value)."""
    from dm_control import suite

    env = _state_env(env_id, initial_task_state=stock_task)
    domain, task = {FINGER: ("finger", "spin"), CHEETAH: ("cheetah", "run")}.get(env_id, ("walker", "walk"))
    ours, stock = env.unwrapped.physics.model, suite.load(domain, task).physics.model
    for field in ("geom_size", "geom_pos", "geom_friction", "site_size", "body_mass", "opt.timestep"):
        obj_ours, obj_stock = ours, stock
        for part in field.split("."):
            obj_ours, obj_stock = getattr(obj_ours, part), getattr(obj_stock, part)
        np.testing.assert_array_equal(obj_ours, obj_stock, err_msg=field)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_splits(env_id):
    env = _state_env(env_id)
    splits = env.unwrapped.task_splits
    assert splits == {"train": [3, 4, 7, 8], "interpolation": [5, 6], "extrapolation": [2, 9]}
    # the rule: the two middle values of the used ones interpolate, the two extremes extrapolate
    values = env.unwrapped.task_parameters
    used = sorted(values[i] for split in splits.values() for i in split)
    assert sorted(values[i] for i in splits["extrapolation"]) == [used[0], used[-1]]
    assert sorted(values[i] for i in splits["interpolation"]) == used[3:5]


def test_finger_split_radii():
    env = _state_env(FINGER)
    radii = {k: [env.unwrapped.task_parameters[i] for i in v] for k, v in env.unwrapped.task_splits.items()}
    expected = {"train": [0.1, 0.125, 0.2, 0.225], "interpolation": [0.15, 0.175], "extrapolation": [0.075, 0.25]}
    assert radii.keys() == expected.keys()
    for split, values in expected.items():  # pytest 9.2's approx no longer compares nested dicts
        assert radii[split] == pytest.approx(values), split


@pytest.mark.parametrize(
    ("variant", "domain", "task"),
    [(FINGER_SIZE, "finger", "spin"), (CHEETAH_TORSO_LENGTH, "cheetah", "run"), (WALKER_FRICTION, "walker", "walk")],
)
def test_state_matches_raw_dm_control_with_summed_rewards(variant, domain, task):
    """Task 0 is the stock model: our state env follows ``suite.load`` exactly, two control steps per env step."""
    from dm_control import suite

    env = DMCEnv(variant, 0, from_pixels=False, seed=7)
    raw = suite.load(domain, task, task_kwargs={"random": 7})

    def flat(ts):
        return np.concatenate([np.ravel(v) for v in ts.observation.values()]).astype(np.float32)

    obs, _ = env.reset()
    np.testing.assert_array_equal(obs, flat(raw.reset()))
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(-1, 1, size=env.action_space.shape)
        obs, reward, terminated, truncated, info = env.step(action)
        first = raw.step(action)
        second = raw.step(action)
        assert reward == pytest.approx(first.reward + second.reward, abs=1e-12)
        np.testing.assert_array_equal(obs, flat(second))
        np.testing.assert_array_equal(info["internal_state"].shape, raw.physics.get_state().shape)
        assert not (terminated or truncated) and info["discount"] == 1.0


def test_pixels_match_raw_dm_control_render():
    from dm_control import suite

    env = DMCEnv(FINGER_SIZE, 0, from_pixels=True, seed=3)
    raw = suite.load("finger", "spin", task_kwargs={"random": 3})
    obs, _ = env.reset()
    raw.reset()
    assert obs.shape == (3, 84, 84) and obs.dtype == np.uint8
    np.testing.assert_array_equal(obs, raw.physics.render(84, 84, camera_id=0).transpose(2, 0, 1))


def test_actions_are_normalised_and_clamped():
    env = _state_env(CHEETAH)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (6,), np.float32)
    inside = np.array([0.5, -0.25, 1.0, -1.0, 0.0, 1.0], dtype=np.float32)
    outside = np.array([0.5, -0.25, 2.0, -3.0, 0.0, 1.0], dtype=np.float32)
    after = []
    for action in (inside, outside):
        env.reset(seed=0)
        after.append(env.step(action)[0]["env_obs"])
        # [-1, 1] is the suite's own range: the control is applied unscaled (MuJoCo clamps it to ctrlrange)
        np.testing.assert_allclose(env.unwrapped.physics.data.ctrl, action)
    np.testing.assert_array_equal(after[0], after[1])


def test_pixel_obs_shape_dtype_bounds_and_stacking():
    env = gym.make(FINGER)
    space = env.observation_space["env_obs"]
    assert space.shape == (9, 84, 84) and space.dtype == np.uint8
    assert (space.low == 0).all() and (space.high == 255).all()  # the reference declared [0, 1]
    obs, _ = env.reset(seed=0)
    frames = obs["env_obs"]
    assert frames.shape == (9, 84, 84) and frames.dtype == np.uint8 and obs["task_obs"] == 1
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(frames[:3], frames[6:])  # the reset frame fills the stack
    assert frames.max() > frames.min()  # a real rendered image
    obs2, *_ = env.step(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(obs2["env_obs"][:6], frames[3:])  # oldest frame dropped, newest appended
    assert not np.array_equal(obs2["env_obs"][6:], frames[6:])
    assert env.render() is None


def test_same_seed_same_pixels():
    actions = np.random.default_rng(0).uniform(-1, 1, size=(3, 2)).astype(np.float32)

    def rollout(seed):
        env = gym.make(FINGER, height=32, width=32, initial_task_state=4, render_mode="rgb_array")
        out = [env.reset(seed=seed)[0]["env_obs"]]
        out += [env.step(a)[0]["env_obs"] for a in actions]
        assert env.render().shape == (32, 32, 3)
        return np.stack(out)

    a, b, c = rollout(3), rollout(3), rollout(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("env_id", [CHEETAH, FRICTION])
def test_same_seed_same_states(env_id):
    actions = np.random.default_rng(1).uniform(-1, 1, size=(20, 6)).astype(np.float32)

    def rollout(seed):
        env = _state_env(env_id)
        obs, _ = env.reset(seed=seed, options={"task_state": 7})
        out = [obs["env_obs"]]
        for a in actions:
            out.append(env.step(a)[0]["env_obs"])
        return np.stack(out)

    a, b, c = rollout(5), rollout(5), rollout(6)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape[1] == (17 if env_id == CHEETAH else 24)
    assert not np.array_equal(a, c)


def test_constructor_seed_is_the_first_reset_seed():
    first = [_state_env(FINGER, seed=11).reset()[0]["env_obs"] for _ in range(2)]
    np.testing.assert_array_equal(*first)
    np.testing.assert_array_equal(first[0], _state_env(FINGER).reset(seed=11)[0]["env_obs"])
    env = _state_env(FINGER, seed=11)
    env.reset(seed=12)  # an explicit seed wins, and the constructor seed is not used later
    assert not np.array_equal(env.reset()[0]["env_obs"], first[0])


@pytest.mark.parametrize(("frame_skip", "horizon"), [(2, 500), (3, 334)])
def test_truncation_at_time_limit(frame_skip, horizon):
    env = _state_env(FINGER, frame_skip=frame_skip)
    assert env.unwrapped.max_episode_steps == horizon
    env.reset(seed=0)
    action = np.zeros(2, dtype=np.float32)
    for t in range(1, horizon + 1):
        _, _, terminated, truncated, info = env.step(action)
        assert not terminated
        assert truncated == (t == horizon), t
    assert info["discount"] == 1.0  # dm_control's own episode ended at the same step, as a time limit


def test_sticky_observation_cfg():
    cfg = {"should_use": True, "sticky_probability": 1.0, "last_k": 1}
    env = _state_env(CHEETAH, sticky_observation_cfg=cfg)
    inner = env.unwrapped.active_env
    assert isinstance(inner.env, StickyObservation) and inner.env.sticky_probability == 1.0
    obs0, _ = env.reset(seed=0)
    obs1, *_ = env.step(np.ones(6, dtype=np.float32))
    obs2, *_ = env.step(np.ones(6, dtype=np.float32))
    np.testing.assert_array_equal(obs1["env_obs"], obs0["env_obs"])  # p = 1, last_k = 1: always one step stale
    assert not np.array_equal(obs2["env_obs"], obs1["env_obs"])
    # off by default, and the pixel chain is DMC -> FrameStack -> StickyObservation -> TimeLimit
    assert not isinstance(_state_env(CHEETAH).unwrapped.active_env.env, StickyObservation)
    with pytest.raises(ValueError, match="sticky_observation_cfg"):
        _state_env(CHEETAH, sticky_observation_cfg={"probability": 0.5})


def test_pixel_wrapper_order():
    env = gym.make(FINGER, sticky_observation_cfg={"should_use": True})
    chain = env.unwrapped.active_env
    assert isinstance(chain, gym.wrappers.TimeLimit)
    assert isinstance(chain.env, StickyObservation) and chain.env.sticky_probability == 0.1 and chain.env.last_k == 1
    assert isinstance(chain.env.env, FrameStack) and chain.env.env.num_stack == 3
    assert isinstance(chain.env.env.env, DMCEnv) and chain.env.env.env.frame_skip == 2


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_state(env_id):
    env = _state_env(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(_state_env(env_id), warn=True)


def test_check_env_pixels():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 warns on image spaces whose bounds are not [0, 255]
        sb3_check_env(gym.make(FINGER), warn=True)
    check_env(gym.make(FINGER, render_mode="rgb_array").unwrapped)


def test_lazy_build():
    env = _state_env(FRICTION)
    assert env.unwrapped.n_built == 1 and env.unwrapped.get_task_state() == 1
    obs, _ = env.reset(seed=0, options={"task_state": 5})
    assert obs["task_obs"] == 5 and env.unwrapped.n_built == 2
    env.reset()
    assert env.unwrapped.get_task_state() == 5 and env.unwrapped.n_built == 2


def test_bad_task_index():
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        _state_env(FINGER, initial_task_state=10)
    with pytest.raises(ValueError, match=r"Invalid task state 1\.5: expected an integer task index in \[0, 9\]"):
        _state_env(FINGER, initial_task_state=1.5)
    env = _state_env(FINGER)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        env.unwrapped.set_task_state(-1)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        env.reset(options={"task_state": 10})


def test_make_vec_one_task_per_sub_env():
    envs = gym.make_vec(CHEETAH, num_envs=3, from_pixels=False)
    obs, _ = envs.reset(seed=0)
    assert obs["task_obs"].tolist() == [0, 1, 2] and obs["env_obs"].shape == (3, 17)
    envs.close()


def test_async_start_method_is_fork_safe():
    assert async_start_method(FINGER) == "forkserver"  # every HiP-BMDP family renders through EGL
    assert async_start_method("MT-PointGoal-v0") is None  # the platform default: scripts need no __main__ guard


@pytest.mark.timeout(180)
def test_async_make_vec_after_parent_rendered():
    # A forked worker hung at its first render once the parent had made and reset a pixel env (EGL state inherited).
    env = gym.make(FINGER, height=32, width=32)
    env.reset(seed=0)
    envs = gym.make_vec(FINGER, num_envs=2, vector_strategy="async", height=32, width=32)
    try:
        assert envs.context == "forkserver"
        obs, _ = envs.reset(seed=0)
        assert obs["task_obs"].tolist() == [0, 1] and obs["env_obs"].shape == (2, 9, 32, 32)
        assert obs["env_obs"].any()  # the workers really rendered
    finally:
        envs.close()
        env.close()


def test_missing_dm_control_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "dm_control" or m.startswith("dm_control.")]:
        monkeypatch.setitem(sys.modules, name, None)  # a None entry makes `import` fail as if not installed
    monkeypatch.setitem(sys.modules, "dm_control", None)
    with pytest.raises(ImportError, match=r'The HiP-BMDP envs need dm_control \(.*\): pip install "mtgym\[dmc\]"'):
        gym.make(FINGER, from_pixels=False)


def test_headless_gl_default():
    # importing mtgym picks the backend, and must not import dm_control itself (its GL backend is fixed at import)
    code = "import os, sys, mtgym; assert 'dm_control' not in sys.modules; print(os.environ['MUJOCO_GL'])"
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "egl"
    env["MUJOCO_GL"] = "osmesa"  # an explicit choice is respected
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "osmesa"


def test_sb3_vec_env_on_train_split():
    from mtsb3.common.env_util import make_mt_vec_env

    train = _state_env(LEN).unwrapped.task_splits["train"]
    venv = make_mt_vec_env(LEN, env_kwargs={"from_pixels": False}, tasks=train)
    obs = venv.reset()
    assert obs["task_obs"].ravel().tolist() == [3, 4, 7, 8] and obs["env_obs"].shape == (4, 24)
    parameters = [venv.envs[i].unwrapped.read_task_parameter() for i in range(4)]
    assert parameters == pytest.approx([0.11, 0.12, 0.15, 0.16])
    venv.close()
