"""
Multi-task SAC policies: task-conditioned actor and twin critic, optional per-task output heads and task encoder.

Everything is composed through ``policy_kwargs`` (mtrl/agent/components/actor.py for the mtrl flags they mirror)::

    MTSAC("MultiTaskPolicy", env, policy_kwargs=dict(
        net_arch=[400, 400, 400],
        multi_head=True,                       # mtrl should_use_multi_head_policy
        use_task_encoder=True,                 # mtrl should_use_task_encoder
        task_encoder_kwargs=dict(output_dim=50, pretrained_embeddings="mt10.json"),
        concat_task_encoding=True,             # mtrl should_concatenate_task_info_with_encoder
        condition_features_extractor_on_task=False,  # mtrl should_condition_encoder_on_task_info
    ))

Any ``BaseFeaturesExtractor`` over the Dict observation works (``features_extractor_class``). The task of each sample
(:class:`mtsb3.common.task.TaskBatch`), used by the heads, the task encoder and task-conditioned extractors, is derived
once per batch: by :class:`~mtsb3.MTSAC` for a training step (the observations are then a
:class:`~mtsb3.common.task.TaskObs`), by the actor's conditioning for ``predict``.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

from mtsb3.common.bronet import BroNet, check_trunk
from mtsb3.common.soft_modularization import SoftModularizedMLP
from mtsb3.common.task import check_task_obs
from mtsb3.common.task_encoder import TaskEncoder
from mtsb3.mtsac.actor import DEFAULT_LOG_STD_BOUNDS, bound_log_std, check_log_std_bounds
from mtsb3.mtsac.conditioning import TaskConditioning, TaskHeads, check_task_options
from mtsb3.mtsac.critic import MTCritic
from mtsb3.mtsac.disjoint import disjoint_net_arch

__all__ = [
    "MTActor",
    "MTCritic",
    "MTSACPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "MultiTaskPolicy",
    "TaskConditioning",
    "TaskHeads",
    "check_task_options",
]


class MTActor(Actor):
    """
    SAC actor with task conditioning and optional per-task output heads.

    See :class:`MTSACPolicy` for the multi-task parameters and ``trunk``; the others are those of SB3's SAC ``Actor``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: nn.Module,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        use_sde: bool = False,
        log_std_init: float = -3,
        full_std: bool = True,
        use_expln: bool = False,
        clip_mean: float = 2.0,
        normalize_images: bool = True,
        n_tasks: int | None = None,
        multi_head: bool = False,
        head_net_arch: list[int] | None = None,
        task_encoder: TaskEncoder | None = None,
        concat_task_encoding: bool = True,
        concat_task_one_hot: bool = False,
        condition_features_extractor_on_task: bool = False,
        detach_task_encoding: bool = True,
        log_std_bounds: tuple[float, float] = DEFAULT_LOG_STD_BOUNDS,
        squash_log_std: bool = False,
        task_heads_class: type[nn.Module] | None = None,
        task_heads_kwargs: dict[str, Any] | None = None,
        trunk: str = "mlp",
        trunk_kwargs: dict[str, Any] | None = None,
    ):
        conditioning = TaskConditioning(
            observation_space,
            normalize_images,
            n_tasks,
            task_encoder,
            concat_task_encoding,
            concat_task_one_hot,
            condition_features_extractor_on_task,
            detach_task_encoding,
        )
        super().__init__(
            observation_space,
            action_space,
            net_arch,
            features_extractor,
            features_dim + conditioning.extra_dim(),
            activation_fn,
            use_sde,
            log_std_init,
            full_std,
            use_expln,
            clip_mean,
            normalize_images,
        )
        self.features_dim = features_dim  # without the conditioning, as passed (for _get_constructor_parameters)
        self.conditioning = conditioning
        self.trunk, self.trunk_kwargs = trunk, dict(trunk_kwargs or {})
        if trunk == "bronet":
            # SB3's Actor has no hook for its MLP: the BroNet, with the same layer sizes (the same output width), replaces it
            self.latent_pi = BroNet(features_dim + conditioning.extra_dim(), net_arch, activation_fn=activation_fn)
        elif trunk == "soft_modularization":
            # mtrl's actor: the last modular layer outputs the mean and the log std (no SB3 mu/log_std layers on top)
            out_dim = 2 * get_action_dim(action_space)
            extra = conditioning.extra_dim()
            self.latent_pi = SoftModularizedMLP(
                features_dim, extra, out_dim, net_arch=net_arch, activation_fn=activation_fn, **self.trunk_kwargs
            )
            del self.mu, self.log_std
        self.n_tasks, self.multi_head, self.head_net_arch = n_tasks, multi_head, list(head_net_arch or [])
        self.task_heads_class, self.task_heads_kwargs = task_heads_class, dict(task_heads_kwargs or {})
        self.heads: nn.Module | None = None
        if multi_head:
            assert n_tasks is not None, "check_task_options: multi_head=True needs a Discrete task_obs"
            last_dim = net_arch[-1] if net_arch else features_dim + conditioning.extra_dim()
            # one head outputs mean and log_std together: a single batched op per layer
            del self.mu, self.log_std
            heads_class = task_heads_class or TaskHeads
            out_dim = 2 * get_action_dim(action_space)
            self.heads = heads_class(n_tasks, last_dim, self.head_net_arch, out_dim, activation_fn, **self.task_heads_kwargs)
        self.log_std_bounds, self.squash_log_std = check_log_std_bounds(log_std_bounds), squash_log_std

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            log_std_bounds=self.log_std_bounds,
            squash_log_std=self.squash_log_std,
            n_tasks=self.n_tasks,
            multi_head=self.multi_head,
            head_net_arch=self.head_net_arch,
            task_heads_class=self.task_heads_class,
            task_heads_kwargs=self.task_heads_kwargs,
            trunk=self.trunk,
            trunk_kwargs=self.trunk_kwargs,
            **self.conditioning.get_constructor_parameters(),
        )
        return data

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        features, task = self.conditioning(obs, self.features_extractor)
        latent_pi = self.latent_pi(features)
        if self.heads is not None:
            assert task is not None
            mean_actions, log_std = self.heads(latent_pi, task).chunk(2, dim=1)
        elif self.trunk == "soft_modularization":
            mean_actions, log_std = latent_pi.chunk(2, dim=1)
        else:
            mean_actions = self.mu(latent_pi)
            if self.use_sde:
                return mean_actions, self.log_std, dict(latent_sde=latent_pi)
            log_std = self.log_std(latent_pi)  # type: ignore[operator]
        return mean_actions, bound_log_std(log_std, self.log_std_bounds, self.squash_log_std), {}


class MTSACPolicy(SACPolicy):
    """
    SAC policy for multi-task observations: SB3's ``SACPolicy`` plus task conditioning, per-task heads and a task
    encoder, with a fused twin critic (:class:`MTCritic`).

    The task index is read from ``obs["task_obs"]`` (``Discrete``); options that need it raise a ``ValueError`` for
    any other task space. With the default ``CombinedExtractor`` the features already contain the task one-hot, which
    is what SB3 users expect; mtrl's "MT-SAC" without task encoder gives the networks ``env_obs`` only
    (mtrl/agent/components/actor.py), which an extractor over ``env_obs`` reproduces.

    mtrl's third flag, ``should_condition_model_on_task_info``, hands the task to the actor/critic MLP itself; only
    Soft Modularization uses it, and here that network is the ``"soft_modularization"`` trunk, which reads the task
    encoding concatenated after the features (``concat_task_encoding=True``).

    The options are checked together by :func:`~mtsb3.mtsac.conditioning.check_task_options`: a combination that
    cannot be built raises a ``ValueError`` naming the options. Subclasses add networks and optimizers by extending
    ``_build_networks`` and ``_build_optimizers``, and change what an optimizer trains by overriding
    :meth:`actor_parameters` / :meth:`critic_parameters`: every optimizer is built once, after every network.

    :param multi_head: one output head per task for the actor (mean and log std) and each Q-network
        (mtrl ``should_use_multi_head_policy``)
    :param head_net_arch: hidden sizes of each head; ``[]`` (default) makes each head a linear layer. mtrl's heads
        have one hidden layer, ``[400]``, on a trunk with one layer less.
    :param use_task_encoder: build a :class:`~mtsb3.common.task_encoder.TaskEncoder` shared by the actor and critic
        (mtrl ``should_use_task_encoder``); it is trained by the critic loss only, as in mtrl (``losses_to_train``)
    :param task_encoder_kwargs: kwargs of the ``TaskEncoder`` (``output_dim``, ``pretrained_embeddings``, ...);
        :class:`~mtsb3.MTSAC` fills ``task_names`` from the env
    :param concat_task_encoding: with a task encoder, concatenate the task encoding to the features before the MLPs
        (mtrl ``should_concatenate_task_info_with_encoder``)
    :param condition_features_extractor_on_task: pass the task encoding to the features extractor as
        ``features_extractor(obs, task_encoding)`` (mtrl ``should_condition_encoder_on_task_info``), for extractors
        that take it (FiLM, mixtures of encoders); one with a ``task_encoding_dim`` argument gets the encoder's size
    :param concat_task_one_hot: concatenate the task one-hot to the features (for extractors that drop ``task_obs``)
    :param train_task_encoder_with_actor: also train the task encoder with the actor loss (mtrl does not)
    :param log_std_bounds: ``(lo, hi)`` bounds of the actor's log std (SB3 and mtrl's MetaWorld actor: ``(-20, 2)``;
        mtrl's DMC actor: ``(-10, 2)``)
    :param squash_log_std: squash the log std into ``log_std_bounds`` with tanh as mtrl
        (:func:`~mtsb3.mtsac.actor.bound_log_std`), instead of SB3's clamp
    :param disjoint_policy: one whole actor and one whole pair of Q-networks per task (mtrl
        ``should_use_disjoint_policy``): every layer of ``net_arch`` becomes a per-task head
        (:mod:`mtsb3.mtsac.disjoint`)
    :param task_heads_class: the class of the per-task heads (``multi_head`` or ``disjoint_policy``), called as
        ``task_heads_class(n_tasks, in_features, head_net_arch, out_features, activation_fn, n_groups=..., **kwargs)``
        with ``task_heads_kwargs`` and the interface of :class:`~mtsb3.mtsac.conditioning.TaskHeads` (the default), e.g. PaCo's
        :class:`~mtsb3.common.compositional.CompositionalTaskHeads`
    :param task_heads_kwargs: its extra kwargs (``n_param_sets`` for PaCo)
    :param trunk: how the layers of ``net_arch`` are wired: ``"mlp"`` (SB3), ``"bronet"``, the residual LayerNorm MLP
        of BRO/BRC (:class:`~mtsb3.common.bronet.BroNet`, ``net_arch = [width] * (1 + 2 * n_blocks)``), or
        ``"soft_modularization"``, mtrl's Soft Modularization network
        (:class:`~mtsb3.common.soft_modularization.SoftModularizedMLP`: ``net_arch = [hidden] * n`` routed hidden layers, then
        a routed output layer; it reads the task encoding after the features, ``concat_task_encoding=True``); one name for
        both networks or ``dict(pi=..., qf=...)``. Per-task heads go on top of an MLP or BroNet trunk.
    :param trunk_kwargs: the Soft Modularization trunk's ``n_modules`` (mtrl: 4)
    :param critic_type: ``"regression"`` (a scalar Q-value, SB3) or ``"categorical"`` (logits over a fixed support,
        trained by cross-entropy, BRC; :mod:`mtsb3.common.categorical`)
    :param categorical_kwargs: the support of a categorical critic: ``n_atoms`` (BRC: 101), ``v_min``, ``v_max``
        (BRC: -10, 10)
    :param kwargs: the other arguments are those of SB3's ``SACPolicy``
    """

    actor: MTActor
    critic: MTCritic
    critic_target: MTCritic

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        use_sde: bool = False,
        log_std_init: float = -3,
        use_expln: bool = False,
        clip_mean: float = 2.0,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        multi_head: bool = False,
        head_net_arch: list[int] | None = None,
        use_task_encoder: bool = False,
        task_encoder_kwargs: dict[str, Any] | None = None,
        concat_task_encoding: bool = True,
        condition_features_extractor_on_task: bool = False,
        concat_task_one_hot: bool = False,
        train_task_encoder_with_actor: bool = False,
        log_std_bounds: tuple[float, float] = DEFAULT_LOG_STD_BOUNDS,
        squash_log_std: bool = False,
        disjoint_policy: bool = False,
        task_heads_class: type[nn.Module] | None = None,
        task_heads_kwargs: dict[str, Any] | None = None,
        trunk: str | dict[str, str] = "mlp",
        critic_type: str = "regression",
        categorical_kwargs: dict[str, Any] | None = None,
        trunk_kwargs: dict[str, Any] | None = None,
    ):
        self.trunk, (self.pi_trunk, self.qf_trunk) = trunk, check_trunk(trunk, disjoint_policy, trunk_kwargs)
        self.trunk_kwargs = dict(trunk_kwargs or {})
        self.critic_type, self.categorical_kwargs = critic_type, dict(categorical_kwargs or {})
        self.log_std_bounds, self.squash_log_std = check_log_std_bounds(log_std_bounds), squash_log_std
        if squash_log_std and use_sde:
            raise ValueError("squash_log_std=True bounds the actor's log std output: gSDE (use_sde=True) learns its own")
        self.disjoint_policy, self.disjoint_net_arch = disjoint_policy, None
        if disjoint_policy:
            # all layers become per-task heads on an empty shared trunk
            self.disjoint_net_arch = disjoint_net_arch(net_arch, multi_head, head_net_arch)
            net_arch, multi_head, head_net_arch = [], True, self.disjoint_net_arch
        # plain attributes only: nn.Module is not initialised yet, and _build (called by super) reads them
        self.n_tasks = check_task_options(
            observation_space,
            use_sde=use_sde,
            multi_head=multi_head,
            head_net_arch=head_net_arch,
            use_task_encoder=use_task_encoder,
            task_encoder_kwargs=task_encoder_kwargs,
            condition_features_extractor_on_task=condition_features_extractor_on_task,
            concat_task_one_hot=concat_task_one_hot,
            train_task_encoder_with_actor=train_task_encoder_with_actor,
            custom_task_heads=task_heads_class is not None or bool(task_heads_kwargs),
            soft_modularization_trunk="soft_modularization" in (self.pi_trunk, self.qf_trunk),
            concat_task_encoding=concat_task_encoding,
        )
        self.multi_head, self.head_net_arch = multi_head, list(head_net_arch or [])
        self.task_heads_class, self.task_heads_kwargs = task_heads_class, dict(task_heads_kwargs or {})
        self.use_task_encoder, self.task_encoder_kwargs = use_task_encoder, dict(task_encoder_kwargs or {})
        self.concat_task_encoding = concat_task_encoding
        self.condition_features_extractor_on_task = condition_features_extractor_on_task
        self.concat_task_one_hot = concat_task_one_hot
        self.train_task_encoder_with_actor = train_task_encoder_with_actor
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            use_sde,
            log_std_init,
            use_expln,
            clip_mean,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
            n_critics,
            share_features_extractor,
        )

    def _task_kwargs(self, task_encoder: TaskEncoder | None, detach: bool) -> dict[str, Any]:
        return dict(
            n_tasks=self.n_tasks,
            multi_head=self.multi_head,
            head_net_arch=self.head_net_arch,
            task_heads_class=self.task_heads_class,
            task_heads_kwargs=self.task_heads_kwargs,
            task_encoder=task_encoder,
            concat_task_encoding=self.concat_task_encoding,
            concat_task_one_hot=self.concat_task_one_hot,
            condition_features_extractor_on_task=self.condition_features_extractor_on_task,
            detach_task_encoding=detach,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        # every network first, then every optimizer, once: subclasses extend the two steps and the parameter lists
        self._build_networks()
        self._build_optimizers(lr_schedule)

    def make_task_encoder(self) -> TaskEncoder | None:
        """:return: the task encoder shared by the actor and the critic (``use_task_encoder=True``), else ``None``."""
        if not self.use_task_encoder:
            return None
        assert self.n_tasks is not None
        return TaskEncoder(self.n_tasks, **self.task_encoder_kwargs).to(self.device)

    def _build_networks(self) -> None:
        """Build the task encoder, the actor, the critic and its target; subclasses add their networks after these."""
        self.task_encoder = self.make_task_encoder()
        self.actor = self.make_actor()
        self.critic = self.make_critic(
            features_extractor=self.actor.features_extractor if self.share_features_extractor else None
        )
        # the target critic has its own copy of the task encoder, Polyak-averaged with the online one
        self.critic_target = self.make_critic(features_extractor=None, task_encoder=copy.deepcopy(self.task_encoder))
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)

    def actor_parameters(self) -> list[nn.Parameter]:
        """
        :return: what the actor optimizer trains: the actor, without the shared task encoder (trained by the critic loss,
            mtrl's ``losses_to_train``) unless ``train_task_encoder_with_actor=True``
        """
        return [
            p for name, p in self.actor.named_parameters() if self.train_task_encoder_with_actor or "task_encoder" not in name
        ]

    def critic_parameters(self) -> list[nn.Parameter]:
        """:return: what the critic optimizer trains: the critic, without an extractor shared with the actor (as in SB3)."""
        if self.share_features_extractor:
            return [p for name, p in self.critic.named_parameters() if "features_extractor" not in name]
        return list(self.critic.parameters())

    def _make_optimizer(self, params: list[nn.Parameter], lr_schedule: Schedule, **overrides: Any) -> th.optim.Optimizer:
        """:return: an ``optimizer_class`` over ``params`` with ``optimizer_kwargs`` (``overrides`` on top)."""
        # type: ignore[call-arg]
        return self.optimizer_class(params, lr=lr_schedule(1), **{**self.optimizer_kwargs, **overrides})

    def _build_optimizers(self, lr_schedule: Schedule) -> None:
        """Build the actor and critic optimizers, once every network exists; subclasses add theirs after these."""
        self.actor.optimizer = self._make_optimizer(self.actor_parameters(), lr_schedule)
        self.critic.optimizer = self._make_optimizer(self.critic_parameters(), lr_schedule)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            dict(
                share_features_extractor=self.share_features_extractor,
                multi_head=self.multi_head,
                head_net_arch=self.head_net_arch,
                use_task_encoder=self.use_task_encoder,
                task_encoder_kwargs=self.task_encoder_kwargs,
                concat_task_encoding=self.concat_task_encoding,
                condition_features_extractor_on_task=self.condition_features_extractor_on_task,
                concat_task_one_hot=self.concat_task_one_hot,
                train_task_encoder_with_actor=self.train_task_encoder_with_actor,
                log_std_bounds=self.log_std_bounds,
                squash_log_std=self.squash_log_std,
                disjoint_policy=self.disjoint_policy,
                task_heads_class=self.task_heads_class,
                task_heads_kwargs=self.task_heads_kwargs,
                trunk=self.trunk,
                trunk_kwargs=self.trunk_kwargs,
                critic_type=self.critic_type,
                categorical_kwargs=self.categorical_kwargs,
            )
        )
        if self.disjoint_policy:
            # the sizes as the user gave them: the constructor moves them into the heads again
            data.update(net_arch=self.disjoint_net_arch, multi_head=False, head_net_arch=[])
        return data

    def make_features_extractor(self) -> BaseFeaturesExtractor:
        """
        SB3's, plus the size of the policy's task encoding for an extractor conditioned on it
        (``condition_features_extractor_on_task=True``) that takes a ``task_encoding_dim`` argument, as the extractors of
        :mod:`mtsb3.common.torch_layers` do.

        :raises ValueError: if ``features_extractor_kwargs`` give another ``task_encoding_dim``
        """
        kwargs = self.features_extractor_kwargs
        if self.task_encoder is not None and self.condition_features_extractor_on_task:
            if "task_encoding_dim" in inspect.signature(self.features_extractor_class).parameters:
                size = self.task_encoder.output_dim
                if kwargs.get("task_encoding_dim", size) != size:
                    raise ValueError(
                        f"features_extractor_kwargs has task_encoding_dim={kwargs['task_encoding_dim']}, but the policy's "
                        f"task encoder outputs {size} (task_encoder_kwargs output_dim): leave task_encoding_dim out"
                    )
                kwargs = {**kwargs, "task_encoding_dim": size}
        return self.features_extractor_class(self.observation_space, **kwargs)

    def obs_to_tensor(self, observation: np.ndarray | dict[str, np.ndarray]) -> tuple[PyTorchObs, bool]:
        """Check ``task_obs`` (:func:`~mtsb3.common.task.check_task_obs`), then convert it as SB3 does for ``predict``."""
        check_task_obs(observation, self.observation_space)
        return super().obs_to_tensor(observation)

    def _trunk_kwargs(self, trunk: str) -> dict[str, Any]:
        """:return: the actor's or critic's ``trunk`` and ``trunk_kwargs`` (the options of a Soft Modularization trunk only)"""
        return dict(trunk=trunk, trunk_kwargs=self.trunk_kwargs if trunk == "soft_modularization" else None)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> MTActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        detach = not self.train_task_encoder_with_actor
        log_std = dict(log_std_bounds=self.log_std_bounds, squash_log_std=self.squash_log_std)
        task_kwargs = self._task_kwargs(self.task_encoder, detach)
        return MTActor(**actor_kwargs, **task_kwargs, **log_std, **self._trunk_kwargs(self.pi_trunk)).to(self.device)

    def make_critic(
        self, features_extractor: BaseFeaturesExtractor | None = None, task_encoder: TaskEncoder | None = None
    ) -> MTCritic:
        """
        :param features_extractor: a features extractor to share, ``None`` builds a new one
        :param task_encoder: the task encoder of this critic; ``None`` uses the policy's (shared with the actor)
        """
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        task_encoder = task_encoder if task_encoder is not None else self.task_encoder
        value = dict(
            critic_type=self.critic_type, categorical_kwargs=self.categorical_kwargs, **self._trunk_kwargs(self.qf_trunk)
        )
        return MTCritic(**critic_kwargs, **self._task_kwargs(task_encoder, detach=False), **value).to(self.device)


class MultiInputPolicy(MTSACPolicy):
    """:class:`MTSACPolicy` with SB3's ``CombinedExtractor`` (Dict observations) as the default features extractor."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ):
        if not isinstance(observation_space, spaces.Dict):
            raise ValueError(
                f"{type(self).__name__} (MultiTaskPolicy) needs a Dict observation space such as "
                f"Dict(env_obs=..., task_obs=...), got {observation_space}; use 'MlpPolicy' for a Box observation space"
            )
        super().__init__(
            observation_space, action_space, lr_schedule, *args, features_extractor_class=features_extractor_class, **kwargs
        )


MlpPolicy = MTSACPolicy
MultiTaskPolicy = MultiInputPolicy
