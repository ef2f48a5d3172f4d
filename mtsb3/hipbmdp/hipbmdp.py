"""HiP-BMDP: DeepMDP with a learned task parameter θ and a contrastive θ loss (mtrl/agent/hipbmdp.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples

from mtsb3.common.callbacks import SPLIT_LOG_NAMES
from mtsb3.common.env_util import first_sub_env_attr
from mtsb3.common.task import n_tasks_of
from mtsb3.deepmdp import DeepMDP
from mtsb3.hipbmdp.policies import (
    HiPBMDPPolicy,
    MultiInputPolicy,
    MultiTaskPolicy,
    ThetaStrategy,
    check_theta_strategy,
    contrastive_theta_loss,
)

#: mtrl's ``sampling_strategy`` config: ``embedding`` for training and base evaluation, the mean θ over the
#: training tasks for unseen (interpolation and extrapolation) tasks (mtrl's config/setup/hipbmdp.yaml)
DEFAULT_THETA_STRATEGIES: dict[str, ThetaStrategy] = {
    "train": "embedding",
    "base": "embedding",
    "interpolation": "mean_train",
    "extrapolation": "mean_train",
}


class HiPBMDP(DeepMDP):
    """
    HiP-BMDP (Zhang et al., "Learning Robust State Abstractions for Hidden-Parameter Block MDPs",
    https://arxiv.org/abs/2007.07206), as mtrl's ``hipbmdp.Agent`` with the task encoder on.

    A :class:`~mtsb3.deepmdp.DeepMDP` whose latent is ``[encoder(s), θ(task)]``, with θ a per-task embedding and an
    MLP (:class:`~mtsb3.hipbmdp.policies.ThetaModel`). θ is trained by the transition/reward loss, the reconstruction
    loss and the **contrastive** loss :func:`~mtsb3.hipbmdp.policies.contrastive_theta_loss` (weight
    ``contrastive_coef``), whose gradients accumulate over one update before a single ``theta_optimizer`` step, as in
    mtrl. The actor and critic see θ detached.

    Which θ the policy acts with depends on the evaluation split (mtrl's per-mode ``sampling_strategy``):
    ``theta_strategies`` maps ``"train"``, ``"base"``, ``"interpolation"``, ``"extrapolation"`` (or any split name)
    to a strategy. At construction each task gets the strategy of its split in the env's ``task_splits`` (the
    ``"train"`` split is evaluated as ``"base"``, as in mtrl's ``eval_base``; tasks in no split get the ``"train"``
    strategy). So a single batched evaluation of every task, e.g. by
    :class:`~mtsb3.common.callbacks.MultiTaskEvalCallback`, acts on the training tasks with their own θ and on the
    unseen tasks with the mean training θ, and reports ``eval_base``, ``eval_interpolation`` and
    ``eval_extrapolation``. Training only visits training tasks, so the collected data always uses their own θ;
    the representation losses always do. :meth:`set_eval_split` (or the :meth:`eval_split` context manager) forces
    one split's strategy on every task, and ``set_eval_split(None)`` returns to the per-task strategies.

    Differences from mtrl (README, "Differences from mtrl and mtenv"): the task-encoder path works (mtrl crashes on it); task 0
    is a real task (no ``padding_idx``); ``"mean"`` averages all tasks. The training tasks default to the tasks of the training
    env's sub-envs, e.g. ``make_mt_vec_env(env_id, tasks=env.unwrapped.task_splits["train"])``.

    :param policy: the policy (``"MultiInputPolicy"``/``"MultiTaskPolicy"``, or a :class:`HiPBMDPPolicy` subclass)
    :param env: the multi-task env (``Discrete`` task_obs), usually restricted to the training split
    :param contrastive_coef: weight of the contrastive θ loss (mtrl: 0.01); 0 turns it off
    :param theta_strategies: split name -> θ strategy, over :data:`DEFAULT_THETA_STRATEGIES`
    :param kwargs: the other arguments are those of :class:`~mtsb3.deepmdp.DeepMDP`
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MultiInputPolicy": MultiInputPolicy,
        "MultiTaskPolicy": MultiTaskPolicy,
    }
    policy: HiPBMDPPolicy
    policy_base: ClassVar[type[HiPBMDPPolicy]] = HiPBMDPPolicy

    def __init__(
        self,
        policy: str | type[HiPBMDPPolicy],
        env: GymEnv | str,
        contrastive_coef: float = 0.01,
        theta_strategies: Mapping[str, ThetaStrategy] | None = None,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        if contrastive_coef < 0:
            raise ValueError(f"contrastive_coef must be >= 0, got {contrastive_coef}")
        self.contrastive_coef = contrastive_coef
        self.theta_strategies: dict[str, ThetaStrategy] = {**DEFAULT_THETA_STRATEGIES, **(theta_strategies or {})}
        for strategy in self.theta_strategies.values():
            check_theta_strategy(strategy)
        if self.env is not None:
            self.policy_kwargs = {**self.task_kwargs_from_env(), **self.policy_kwargs}
        if _init_setup_model:
            self._setup_model()

    def task_kwargs_from_env(self) -> dict[str, Any]:
        """
        :return: the policy's ``train_tasks`` (the tasks the training sub-envs run, e.g. the ``"train"`` split when
            the env was built with ``make_mt_vec_env(..., tasks=...)``) and ``task_strategies`` (each task's strategy
            from the env's ``task_splits``; a task the env trains on keeps the ``"train"`` strategy unless it is in the
            train split); ``train_tasks`` is left out when the env cannot tell
        :raises ValueError: if a task is in two splits with different strategies
        """
        assert self.env is not None
        n_tasks = n_tasks_of(self.observation_space, "HiP-BMDP's θ")
        kwargs: dict[str, Any] = {}
        try:
            kwargs["train_tasks"] = sorted({int(task) for task in self.env.env_method("get_task_state")})
        except AttributeError:
            pass
        splits = first_sub_env_attr(self.env, "task_splits") or {}
        strategies: list[ThetaStrategy] = [self.theta_strategy("train")] * n_tasks
        owner: dict[int, str] = {}
        for split, tasks in splits.items():
            name = SPLIT_LOG_NAMES.get(split, split)  # the train split is evaluated as "base"
            if name not in self.theta_strategies:
                continue
            for task in tasks:
                if task in owner and self.theta_strategies[owner[task]] != self.theta_strategies[name]:
                    raise ValueError(
                        f"task {task} is in splits {owner[task]!r} and {name!r}, which have different θ strategies "
                        f"({self.theta_strategies[owner[task]]!r} and {self.theta_strategies[name]!r})"
                    )
                owner[int(task)] = name
                strategies[int(task)] = self.theta_strategies[name]
        for task in kwargs.get("train_tasks", []):
            if owner.get(task, "base") != "base":  # a task trained on (outside the train split) acts as trained
                strategies[task] = self.theta_strategy("train")
        kwargs["task_strategies"] = strategies
        return kwargs

    # -- θ strategies ------------------------------------------------------------------------------------------------
    def theta_strategy(self, split: str | None) -> ThetaStrategy:
        """
        :param split: an evaluation split (``"base"``, ``"interpolation"``, ...), ``"train"``, or ``None`` (train)
        :return: the θ strategy used for it
        :raises ValueError: for a split with no strategy, naming the known splits
        """
        split = "train" if split is None else split
        if split not in self.theta_strategies:
            raise ValueError(f"no θ strategy for split {split!r}; known splits: {sorted(self.theta_strategies)}")
        return self.theta_strategies[split]

    def set_eval_split(self, split: str | None) -> None:
        """
        Make the policy act with the θ strategy of ``split`` on every task (``None``: each task's own strategy).

        :param split: the split about to be evaluated, e.g. ``"interpolation"``
        """
        self.policy.theta.strategy = None if split is None else self.theta_strategy(split)

    @contextmanager
    def eval_split(self, split: str | None) -> Iterator[None]:
        """Context manager: act with the θ strategy of ``split`` inside the block, then restore the previous one."""
        previous = self.policy.theta.strategy
        self.set_eval_split(split)
        try:
            yield
        finally:
            self.policy.theta.strategy = previous

    # -- training ------------------------------------------------------------------------------------------------------
    def _representation_step(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        # θ's gradients accumulate over the transition/reward, reconstruction and contrastive losses, then one step
        self.policy.theta_optimizer.zero_grad()
        logs = super()._representation_step(replay_data)
        if self.contrastive_coef > 0:
            logs["contrastive_loss"] = self._contrastive_loss(replay_data)
        self.policy.theta_optimizer.step()
        return logs

    def _contrastive_loss(self, replay_data: ReplayBufferSamples) -> th.Tensor:
        """mtrl ``hipbmdp.update_task_encoder``: backward of the weighted contrastive loss into θ; returns it unweighted."""
        with th.no_grad():  # only θ is trained by this loss: the encoder and transition model are constants
            features, task_idx = self.policy.encode_features(replay_data.observations)
        theta = self.policy.theta(task_idx, "embedding")
        with th.no_grad():
            actions = replay_data.actions
            mu, _ = self.policy.transition_model(th.cat([features, theta, actions], dim=1))
            mu_flipped, _ = self.policy.transition_model(th.cat([features, theta.flip(0), actions], dim=1))
        loss = contrastive_theta_loss(theta, mu, mu_flipped)
        (self.contrastive_coef * loss).backward()
        return loss.detach()
