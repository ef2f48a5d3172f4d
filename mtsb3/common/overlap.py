"""
Overlapped collection: the gradient steps run while subprocess simulators compute the next vector step.

SB3's off-policy loop (``OffPolicyAlgorithm.learn``) alternates a rollout and the gradient steps it earned, so with a
``SubprocVecEnv`` the simulators sit idle during the update and the update waits for the simulators. With
``overlap_collection=True`` the gradient steps earned by a rollout run inside the first vector step of the next
rollout, between ``step_async`` (the actions are sent) and ``step_wait`` (the results are collected):

.. code-block:: text

    SB3:      act(t)  step(t) ........  store(t)  update(t)  act(t+1)  step(t+1) ........  store(t+1)  update(t+1)
    overlap:  act(t)  step(t) ........  store(t)  act(t+1)  step_async(t+1)  update(t)  step_wait(t+1)  store(t+1)

Each update samples exactly the buffer SB3's would (everything up to vector step ``t``), and callbacks see the same
number of updates at every step. The one difference: the actions of vector step ``t + 1`` are chosen by the policy
before update ``t``, not after it; put the other way round, an update sees data one vector step older than the
actions it will influence first (the transition of step ``t + 1`` is stored after the update, not before). The
gradient steps of the last rollout of a ``learn`` call have no next step to hide behind: they run at the end, so
``learn`` performs exactly SB3's number of gradient steps.

Every transition is stored exactly once and in order, with SB3's ``terminal_observation`` handling, because the
rollout itself is SB3's ``collect_rollouts``; only its ``env.step`` goes through :class:`OverlappedSteps`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback, RolloutReturn
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

SelfOverlap = TypeVar("SelfOverlap", bound="OverlapCollectionMixin")


def check_overlap_env(env: VecEnv | None) -> None:
    """
    Raise a ``ValueError`` unless ``env`` steps in the background between ``step_async`` and ``step_wait``.

    ``DummyVecEnv`` runs its sub-envs inside ``step_wait``, so there would be nothing to overlap with the update.

    :param env: the training env (VecEnv wrappers such as ``VecNormalize`` are looked through)
    """
    if env is None:
        return
    if isinstance(env.unwrapped, DummyVecEnv):
        raise ValueError(
            "overlap_collection=True runs the gradient steps while the sub-envs step in the background, which needs a "
            "VecEnv that steps in other processes, e.g. make_mt_vec_env(env_id, vec_env_cls=SubprocVecEnv) "
            "(rl-zoo: --vec-env subproc); DummyVecEnv steps inside step_wait, so nothing would overlap"
        )


class OverlappedSteps(VecEnvWrapper):
    """
    ``step(actions)`` = ``step_async(actions)``, then the pending gradient steps, then ``step_wait()``.

    :param venv: the training env
    :param train: runs ``n`` gradient steps
    """

    def __init__(self, venv: VecEnv, train: Callable[[int], None]):
        super().__init__(venv)
        self._train = train
        #: gradient steps to run during the next vector step
        self.pending = 0

    def run_pending(self) -> None:
        """Run the pending gradient steps now."""
        steps, self.pending = self.pending, 0
        if steps > 0:
            self._train(steps)

    def step(self, actions: np.ndarray) -> VecEnvStepReturn:
        self.venv.step_async(actions)
        self.run_pending()
        return self.venv.step_wait()

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        return self.venv.step_wait()


class OverlapCollectionMixin:
    """
    ``overlap_collection`` for an :class:`~stable_baselines3.common.off_policy_algorithm.OffPolicyAlgorithm` (see the
    module docstring): with it set, :meth:`learn` runs each rollout's gradient steps during the next rollout's first
    vector step. The class using the mixin sets ``self.overlap_collection`` in its constructor.
    """

    overlap_collection: bool = False

    def learn(
        self: SelfOverlap,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfOverlap:
        if not self.overlap_collection:
            return super().learn(  # type: ignore[misc]
                total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar
            )
        algo: OffPolicyAlgorithm = self  # type: ignore[assignment]
        check_overlap_env(algo.env)
        total_timesteps, callback = algo._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert algo.env is not None
        env = OverlappedSteps(algo.env, self._overlapped_train)
        while algo.num_timesteps < total_timesteps:
            rollout = algo.collect_rollouts(
                env,  # type: ignore[arg-type]
                train_freq=algo.train_freq,  # type: ignore[arg-type]
                action_noise=algo.action_noise,
                callback=callback,
                learning_starts=algo.learning_starts,
                replay_buffer=algo.replay_buffer,  # type: ignore[arg-type]
                log_interval=log_interval,
            )
            if not rollout.continue_training:
                break  # (this rollout's first step already ran the earlier rollout's gradient steps)
            env.pending = self._gradient_steps_due(rollout)
        env.run_pending()
        callback.on_training_end()
        return self

    def _gradient_steps_due(self, rollout: RolloutReturn) -> int:
        """:return: the gradient steps SB3's ``learn`` would run after ``rollout`` (same rule)"""
        algo: OffPolicyAlgorithm = self  # type: ignore[assignment]
        if algo.num_timesteps > 0 and algo.num_timesteps > algo.learning_starts:
            return algo.gradient_steps if algo.gradient_steps >= 0 else rollout.episode_timesteps
        return 0

    def _overlapped_train(self, gradient_steps: int) -> None:
        algo: OffPolicyAlgorithm = self  # type: ignore[assignment]
        algo.train(batch_size=algo.batch_size, gradient_steps=gradient_steps)
        # the rollout goes on with the policy in evaluation mode (SB3 sets it once, at the start of collect_rollouts)
        algo.policy.set_training_mode(False)
