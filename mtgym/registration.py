"""Registers every mtgym id with Gymnasium, using string entry points (called once from ``mtgym/__init__``)."""

from __future__ import annotations

import functools

import gymnasium as gym

from mtgym.vector import make_task_vector_env

#: max_episode_steps of the classic control ids. The reference adds no time limit (mtenv/envs/control/); we use Gymnasium's
#: CartPole-v1 / Acrobot-v1 horizons so that any Gymnasium or SB3 training loop sees finite episodes.
CLASSIC_CONTROL_HORIZON = 500


def _register(env_id: str, entry_point: str, max_episode_steps: int | None = None, **kwargs) -> None:
    """Register ``env_id`` with a single-env string entry point and our one-task-per-sub-env vector entry point."""
    if env_id in gym.registry:
        return
    gym.register(
        id=env_id,
        entry_point=entry_point,
        vector_entry_point=functools.partial(make_task_vector_env, env_id),
        max_episode_steps=max_episode_steps,
        kwargs=kwargs,
    )


def _register_classic() -> None:
    _register("MT-CartPole-v0", "mtgym.envs.control.cartpole:MTCartPole", CLASSIC_CONTROL_HORIZON)
    for env_id in ("MT-Acrobat-v0", "MT-Acrobot-v0"):  # "Acrobat" is the reference's spelling, kept as the primary id
        _register(env_id, "mtgym.envs.control.acrobot:MTAcrobot", CLASSIC_CONTROL_HORIZON)
    _register("MT-TabularMDP-v0", "mtgym.envs.tabular_mdp:UniformTMDP", n_states=4, n_actions=5)
    _register("MT-Bandit-v0", "mtgym.envs.bandit:MTBanditEnv", 100, n_arms=5)
    _register("MT-FiniteBandit-v0", "mtgym.envs.bandit:FiniteMTBanditEnv", 100, n_tasks=10, n_arms=5)
    _register("MT-PointGoal-v0", "mtgym.envs.point_goal:MTPointGoal", 30, n_tasks=4)
    _register(
        "MT-TwoGoalMaze-v0", "mtgym.envs.mpte.two_goal_maze:build_two_goal_maze_env", 200, size_x=3, size_y=3, task_seed=169
    )


def _register_metaworld() -> None:
    """Meta-World ids (see :mod:`mtgym.envs.metaworld`)."""
    entry_point = "mtgym.envs.metaworld.env:MetaWorldMTEnv"
    # mtrl protocol: one fixed goal per task, 150 steps (mtrl's hard-coded horizon), v1 reward / running std
    mtrl = dict(goal_mode="fixed", reward_function_version="v1", normalize_reward=True)
    _register("MT-MetaWorld-MT1-v0", entry_point, 150, benchmark="MT1", task_name="pick-place-v3", **mtrl)
    for benchmark in ("MT10", "MT50"):
        _register(f"MT-MetaWorld-{benchmark}-v0", entry_point, 150, benchmark=benchmark, **mtrl)
    # Meta-World+ protocol, under its own name (a second protocol, not a newer version of the mtrl one): the goal set
    # and per-reset goal draws of gym.make_vec("Meta-World/MT10", seed=...), 500 steps, v2 reward, no normalisation
    for benchmark in ("MT10", "MT25", "MT50"):
        _register(
            f"MT-MetaWorldPlus-{benchmark}-v0",
            entry_point,
            500,
            benchmark=benchmark,
            goal_mode="resample",
            goal_set="benchmark",
            reward_function_version="v2",
            normalize_reward=False,
            vector_index=0,  # the vector entry point sets it per sub-env (see MetaWorldMTEnv, "Seeding")
        )


def _register_hipbmdp() -> None:
    """HiP-BMDP ids (see :mod:`mtgym.envs.hipbmdp`)."""
    # Imported here (it does not import dm_control) so that MUJOCO_GL defaults to egl on a display-less machine before
    # anything can import dm_control, whose GL backend is fixed at its first import.
    import mtgym.envs.hipbmdp  # noqa: F401

    # No outer time limit: each task env carries its own TimeLimit of ceil(1000 / frame_skip) steps
    # (mtenv/envs/hipbmdp/env.py).
    for env_id, cls in (
        ("MT-HiPBMDP-Finger-Spin-vary-size-v0", "FingerSpinVarySizeEnv"),
        ("MT-HiPBMDP-Cheetah-Run-vary-torso-length-v0", "CheetahRunVaryTorsoLengthEnv"),
        ("MT-HiPBMDP-Walker-Walk-vary-friction-v0", "WalkerWalkVaryFrictionEnv"),
        ("MT-HiPBMDP-Walker-Walk-vary-len-v0", "WalkerWalkVaryLenEnv"),
    ):
        _register(env_id, f"mtgym.envs.hipbmdp.hipbmdp:{cls}")


def register_envs() -> None:
    """Register every mtgym id. Safe to call twice."""
    _register_classic()
    _register_metaworld()
    _register_hipbmdp()
