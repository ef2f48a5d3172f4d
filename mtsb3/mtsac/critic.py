"""The multi-task twin critic of :class:`~mtsb3.mtsac.policies.MTSACPolicy`: task-conditioned Q-networks, optionally with
per-task output heads, all critics run as one batched network (:class:`~mtsb3.common.experts.BatchedMLP`, or a batched
:class:`~mtsb3.common.bronet.BroNet`), each a scalar Q-value or logits over a categorical support."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn

from mtsb3.common.bronet import BroNet
from mtsb3.common.categorical import make_support
from mtsb3.common.experts import BatchedMLP
from mtsb3.common.soft_modularization import SoftModularizedMLP
from mtsb3.common.task_encoder import TaskEncoder
from mtsb3.mtsac.conditioning import TaskConditioning, TaskHeads


class MTCritic(BaseModel):
    """
    Twin (or ``n_critics``) Q-networks fused into one batched ensemble, with task conditioning and optional per-task
    heads.

    The Q-networks are one :class:`~mtsb3.common.experts.BatchedMLP` (weights ``(n_critics, in, out)``), so both are
    evaluated by one matmul per layer instead of SB3's one MLP call per critic. Each network is initialised like
    ``nn.Linear``, as in SB3. :meth:`forward` keeps SB3's ``ContinuousCritic`` interface (a tuple of ``(batch, 1)``).

    A categorical critic (``critic_type="categorical"``, BRC) outputs logits over the atoms of :attr:`support`
    (:meth:`q_outputs`); its Q-values (:meth:`q_values`, :meth:`forward`) are their expectations.

    :param n_critics: number of Q-networks
    :param share_features_extractor: whether the features extractor is the actor's (then it gets no critic gradient)
    :param n_tasks: number of tasks (``None`` when no task index is needed)
    :param multi_head: one output head per task for every Q-network
    :param head_net_arch: hidden sizes of each head
    :param task_encoder: see :class:`MTSACPolicy`
    :param task_heads_class: see :class:`MTSACPolicy`
    :param task_heads_kwargs: see :class:`MTSACPolicy`
    :param trunk: ``"mlp"``, ``"bronet"`` (:class:`~mtsb3.common.bronet.BroNet`, layers as listed in ``net_arch``) or
        ``"soft_modularization"`` (:class:`~mtsb3.common.soft_modularization.SoftModularizedMLP`, mtrl's Q-functions)
    :param critic_type: ``"regression"`` (a scalar Q-value) or ``"categorical"``
    :param categorical_kwargs: the support of a categorical critic (``n_atoms``, ``v_min``, ``v_max``,
        :class:`~mtsb3.common.categorical.CategoricalSupport`)
    :param trunk_kwargs: see :class:`MTSACPolicy`
    """

    features_extractor: BaseFeaturesExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
        n_tasks: int | None = None,
        multi_head: bool = False,
        head_net_arch: list[int] | None = None,
        task_encoder: TaskEncoder | None = None,
        concat_task_encoding: bool = True,
        concat_task_one_hot: bool = False,
        condition_features_extractor_on_task: bool = False,
        detach_task_encoding: bool = False,
        task_heads_class: type[nn.Module] | None = None,
        task_heads_kwargs: dict[str, Any] | None = None,
        trunk: str = "mlp",
        critic_type: str = "regression",
        categorical_kwargs: dict[str, Any] | None = None,
        trunk_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self.conditioning = TaskConditioning(
            observation_space,
            normalize_images,
            n_tasks,
            task_encoder,
            concat_task_encoding,
            concat_task_one_hot,
            condition_features_extractor_on_task,
            detach_task_encoding,
        )
        self.net_arch, self.features_dim, self.activation_fn = list(net_arch), features_dim, activation_fn
        self.n_critics, self.share_features_extractor = n_critics, share_features_extractor
        self.n_tasks, self.multi_head, self.head_net_arch = n_tasks, multi_head, list(head_net_arch or [])
        self.trunk, self.critic_type, self.categorical_kwargs = trunk, critic_type, dict(categorical_kwargs or {})
        self.trunk_kwargs = dict(trunk_kwargs or {})
        self.support = make_support(critic_type, categorical_kwargs)
        n_out = 1 if self.support is None else self.support.n_atoms
        in_dim = features_dim + self.conditioning.extra_dim() + get_action_dim(action_space)
        self.task_heads_class, self.task_heads_kwargs = task_heads_class, dict(task_heads_kwargs or {})
        self.heads: nn.Module | None = None
        if multi_head:
            assert n_tasks is not None, "check_task_options: multi_head=True needs a Discrete task_obs"
            self.q_networks = self._trunk(in_dim, None)
            last_dim = self.net_arch[-1] if self.net_arch else in_dim
            heads_class = task_heads_class or TaskHeads
            self.heads = heads_class(
                n_tasks, last_dim, self.head_net_arch, n_out, activation_fn, n_groups=n_critics, **self.task_heads_kwargs
            )
        else:
            self.q_networks = self._trunk(in_dim, n_out)

    def _trunk(self, in_dim: int, out_features: int | None) -> nn.Module:
        """:return: the ``n_critics`` Q-network trunks as one batched network"""
        if self.trunk == "bronet":
            return BroNet(in_dim, self.net_arch, out_features, self.activation_fn, n_experts=self.n_critics)
        if self.trunk == "soft_modularization":
            # mtrl's Q-functions: [features | task encoding | action], the last modular layer outputs the Q-value
            assert out_features is not None, "check_task_options: no multi_head with trunk='soft_modularization'"
            task_dim, action_dim = self.conditioning.extra_dim(), get_action_dim(self.action_space)
            return SoftModularizedMLP(
                self.features_dim,
                task_dim,
                out_features,
                action_dim,
                net_arch=self.net_arch,
                activation_fn=self.activation_fn,
                n_networks=self.n_critics,
                **self.trunk_kwargs,
            )
        return BatchedMLP(self.n_critics, in_dim, self.net_arch, out_features, self.activation_fn)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            dict(
                net_arch=self.net_arch,
                features_dim=self.features_dim,
                activation_fn=self.activation_fn,
                features_extractor=self.features_extractor,
                n_critics=self.n_critics,
                share_features_extractor=self.share_features_extractor,
                n_tasks=self.n_tasks,
                multi_head=self.multi_head,
                head_net_arch=self.head_net_arch,
                task_heads_class=self.task_heads_class,
                task_heads_kwargs=self.task_heads_kwargs,
                trunk=self.trunk,
                trunk_kwargs=self.trunk_kwargs,
                critic_type=self.critic_type,
                categorical_kwargs=self.categorical_kwargs,
                **self.conditioning.get_constructor_parameters(),
            )
        )
        return data

    def q_outputs(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """:return: every Q-network's outputs: ``(n_critics, batch, 1)`` Q-values or ``(n_critics, batch, n_atoms)`` logits"""
        features, task = self.conditioning(obs, self.features_extractor, features_grad=not self.share_features_extractor)
        # in the actor loss the critic is frozen (MTSAC._actor_step): the features, given as a separate part of the input,
        # then cost the first layer no input-gradient matmul. While the critic trains, one concatenated input: the graph
        # that the per-sample gradients of PCGrad / GradNorm / CAGrad read (mtsb3.common.gradients.per_sample)
        frozen = th.is_grad_enabled() and not any(p.requires_grad for p in self.q_networks.parameters())
        inputs = (features, actions) if frozen else th.cat([features, actions], dim=1)
        hidden = self.q_networks(inputs)
        if self.heads is not None:
            assert task is not None
            hidden = self.heads(hidden, task)
        return hidden

    def q_values(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """:return: the Q-values of every Q-network, ``(n_critics, batch, 1)`` (a categorical critic's expectations)."""
        outputs = self.q_outputs(obs, actions)
        return outputs if self.support is None else self.support.expectation(outputs)

    def forward(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        return tuple(self.q_values(obs, actions).unbind(0))

    def q1_forward(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """Only the first Q-network's value (SB3's TD3 uses it for the actor loss)."""
        return self.q_values(obs, actions)[0]
