"""Distral policies: ``T`` SAC task policies (and their critics) as one batched network, plus the distilled policy π0."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import Actor
from torch import nn

from mtsb3.common.experts import BatchedLinear, BatchedMLP
from mtsb3.common.task import (
    ENV_KEY,
    TaskBatch,
    TaskGrouping,
    check_task_obs,
    from_task_blocks,
    n_tasks_of,
    to_task_blocks,
)
from mtsb3.distral.encoder import DistralEncoder
from mtsb3.mtsac.actor import DEFAULT_LOG_STD_BOUNDS, bound_log_std, check_log_std_bounds


def _split_net_arch(net_arch: list[int] | dict[str, list[int]] | None) -> tuple[list[int], list[int]]:
    if net_arch is None:
        return [256, 256], [256, 256]
    if isinstance(net_arch, dict):
        return list(net_arch["pi"]), list(net_arch["qf"])
    return list(net_arch), list(net_arch)


class TaskActors(nn.Module):
    """
    ``T`` squashed-Gaussian SAC actors (SB3's ``Actor`` architecture) with stacked weights.

    Sample ``b`` is acted on by the actor of its task ``task_idx[b]`` only, in one batched pass over the batch split by
    task (:func:`~mtsb3.common.task.group_by_task`).

    :param n_tasks: number of tasks
    :param obs_dim: size of the flattened ``env_obs``
    :param action_dim: action size
    :param net_arch: hidden sizes
    :param activation_fn: activation
    :param log_std_bounds: bounds of the log std
    :param squash_log_std: tanh-squash the log std into the bounds as mtrl (:func:`~mtsb3.mtsac.actor.bound_log_std`)
    """

    def __init__(
        self,
        n_tasks: int,
        obs_dim: int,
        action_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module],
        log_std_bounds: tuple[float, float] = DEFAULT_LOG_STD_BOUNDS,
        squash_log_std: bool = False,
    ):
        super().__init__()
        self.n_tasks = n_tasks
        self.log_std_bounds, self.squash_log_std = check_log_std_bounds(log_std_bounds), squash_log_std
        self.latent_pi = BatchedMLP(n_tasks, obs_dim, net_arch, None, activation_fn)
        self.mu = BatchedLinear(n_tasks, self.latent_pi.out_features, action_dim)
        self.log_std = BatchedLinear(n_tasks, self.latent_pi.out_features, action_dim)
        self.action_dist = SquashedDiagGaussianDistribution(action_dim)

    def get_action_dist_params(self, env_obs: th.Tensor, grouping: TaskGrouping) -> tuple[th.Tensor, th.Tensor]:
        """:return: the pre-tanh Gaussian mean and (bounded) log std of each sample's task actor, ``(batch, A)``."""
        latent = self.latent_pi(to_task_blocks(env_obs, grouping, self.n_tasks))
        mean = from_task_blocks(self.mu(latent), grouping)
        log_std = bound_log_std(from_task_blocks(self.log_std(latent), grouping), self.log_std_bounds, self.squash_log_std)
        return mean, log_std

    def forward(self, env_obs: th.Tensor, grouping: TaskGrouping, deterministic: bool = False) -> th.Tensor:
        mean, log_std = self.get_action_dist_params(env_obs, grouping)
        return self.action_dist.actions_from_params(mean, log_std, deterministic=deterministic)

    def sample(self, env_obs: th.Tensor, grouping: TaskGrouping) -> tuple[th.Tensor, ...]:
        """
        Reparametrised sample of each sample's task policy.

        :return: squashed actions, pre-tanh Gaussian actions, log π_i(a|s) ``(batch,)``, mean and log std
        """
        mean, log_std = self.get_action_dist_params(env_obs, grouping)
        dist = self.action_dist.proba_distribution(mean, log_std)
        actions = dist.sample()
        gaussian_actions = dist.gaussian_actions
        assert gaussian_actions is not None
        return actions, gaussian_actions, dist.log_prob(actions, gaussian_actions), mean, log_std


class TaskCritics(nn.Module):
    """
    ``n_critics`` Q-networks per task (SB3's ``ContinuousCritic`` architecture), all ``n_critics * T`` stacked in one
    :class:`~mtsb3.common.experts.BatchedMLP`; each sample is scored by its own task's critics.

    :param n_tasks: number of tasks
    :param obs_dim: size of the flattened ``env_obs``
    :param action_dim: action size
    :param net_arch: hidden sizes
    :param activation_fn: activation
    :param n_critics: critics per task (clipped double Q: 2)
    """

    def __init__(
        self,
        n_tasks: int,
        obs_dim: int,
        action_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module],
        n_critics: int = 2,
    ):
        super().__init__()
        self.n_tasks, self.n_critics = n_tasks, n_critics
        self.q_networks = BatchedMLP(n_critics * n_tasks, obs_dim + action_dim, net_arch, 1, activation_fn)

    def forward(self, env_obs: th.Tensor, actions: th.Tensor, grouping: TaskGrouping) -> th.Tensor:
        """:return: ``(batch, n_critics)`` Q-values of each sample's task critics."""
        blocks = to_task_blocks(th.cat([env_obs, actions], dim=1), grouping, self.n_tasks)
        q = self.q_networks(blocks.repeat(self.n_critics, 1, 1))  # (n_critics * T, slots, 1)
        q = q.view(self.n_critics, self.n_tasks, grouping.n_slots).permute(1, 2, 0)  # (T, slots, n_critics)
        return from_task_blocks(q, grouping)


class DistralPolicy(BasePolicy):
    """
    Policy of :class:`~mtsb3.distral.Distral`: one SAC actor and ``n_critics`` critics per task, each set stacked into
    one batched network, and the distilled policy π0 (a plain SB3 SAC ``Actor`` on ``env_obs``, shared by all tasks).

    The task networks read only ``env_obs`` (through :class:`~mtsb3.distral.encoder.DistralEncoder`: as is, or the
    latent of a SAC-AE pixel encoder for image observations): the task index routes each sample to its own task's
    weights. Acting (``predict``) uses the task policy of each observation's task; with ``evaluate_with_distilled``,
    deterministic actions (evaluation) are π0's mean instead, as mtrl's ``distral.Agent`` evaluates.

    :param observation_space: a ``Dict`` with a 1-D or ``uint8`` image ``env_obs`` and a ``Discrete`` ``task_obs``
    :param action_space: a ``Box`` action space
    :param lr_schedule: learning rate schedule of the three optimizers
    :param net_arch: hidden sizes of the task actors and critics (a list, or ``dict(pi=..., qf=...)``)
    :param distilled_net_arch: hidden sizes of π0 (default: the task actors')
    :param activation_fn: activation
    :param n_critics: critics per task
    :param optimizer_class: optimizer
    :param optimizer_kwargs: its kwargs
    :param use_sde: must be False (set by SB3's off-policy base class)
    :param log_std_bounds: bounds of the task actors' log std
    :param squash_log_std: tanh-squash the task actors' log std into the bounds, as mtrl's actors
    :param evaluate_with_distilled: deterministic actions come from π0's mean (mtrl's evaluation); stochastic ones
        (training) always from the task policies
    :param encoder_kwargs: ``features_dim``, ``num_layers``, ``num_filters`` of the pixel encoder (image observations)
    :param decoder_weight_decay: weight decay of the pixel decoder's parameters (mtrl: 1e-7)
    """

    actor: TaskActors
    critic: TaskCritics
    critic_target: TaskCritics
    distilled: Actor

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        distilled_net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        n_critics: int = 2,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
        log_std_bounds: tuple[float, float] = DEFAULT_LOG_STD_BOUNDS,
        squash_log_std: bool = False,
        evaluate_with_distilled: bool = False,
        encoder_kwargs: dict[str, Any] | None = None,
        decoder_weight_decay: float = 1e-7,
    ):
        if use_sde:
            raise ValueError("Distral does not support gSDE (use_sde=True)")
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=True,
            normalize_images=False,
        )
        self.n_tasks = n_tasks_of(observation_space, "Distral (one policy per task)")
        env_space = observation_space[ENV_KEY]
        if not isinstance(env_space, spaces.Box):
            raise ValueError(f"Distral needs a 1-D Box env_obs or uint8 (C, H, W) images, got {env_space}")
        self.net_arch, self.distilled_net_arch = net_arch, distilled_net_arch
        self.activation_fn, self.n_critics = activation_fn, n_critics
        self.log_std_bounds, self.squash_log_std = check_log_std_bounds(log_std_bounds), squash_log_std
        self.evaluate_with_distilled = evaluate_with_distilled
        self.encoder_kwargs, self.decoder_weight_decay = dict(encoder_kwargs or {}), decoder_weight_decay
        self.encoder = DistralEncoder(env_space, **self.encoder_kwargs)
        pi_arch, qf_arch = _split_net_arch(net_arch)
        obs_dim, action_dim = self.encoder.features_dim, get_action_dim(action_space)

        log_std = dict(log_std_bounds=self.log_std_bounds, squash_log_std=squash_log_std)
        self.actor = TaskActors(self.n_tasks, obs_dim, action_dim, pi_arch, activation_fn, **log_std)
        self.critic = TaskCritics(self.n_tasks, obs_dim, action_dim, qf_arch, activation_fn, n_critics)
        self.critic_target = TaskCritics(self.n_tasks, obs_dim, action_dim, qf_arch, activation_fn, n_critics)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        # π0 reads what the task actors read (the pixel latent, detached, for images)
        features_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32) if self.encoder.pixels else env_space
        self.distilled = Actor(
            features_space,
            action_space,
            list(pi_arch if distilled_net_arch is None else distilled_net_arch),
            FlattenExtractor(features_space),
            obs_dim,
            activation_fn=activation_fn,
        )
        self._build_optimizers(lr_schedule)
        self.set_training_mode(False)

    def _build_optimizers(self, lr_schedule: Schedule) -> None:
        """One optimizer per network; the critic's also trains the pixel encoder, the decoder's the encoder and decoder."""
        params = {
            self.actor: list(self.actor.parameters()),
            self.critic: [*self.critic.parameters(), *self.encoder.encoder_parameters()],
            self.distilled: list(self.distilled.parameters()),
        }
        for module, module_params in params.items():
            module.optimizer = self.optimizer_class(  # type: ignore[assignment]
                module_params, lr=lr_schedule(1), **self.optimizer_kwargs
            )
        self.decoder_optimizer: th.optim.Optimizer | None = None
        if self.encoder.decoder is not None:
            # SAC-AE's encoder and decoder optimizers (mtrl/agent/sac_ae.py), as one optimizer with two groups
            groups = [
                {"params": self.encoder.encoder_parameters()},
                {"params": list(self.encoder.decoder.parameters()), "weight_decay": self.decoder_weight_decay},
            ]
            self.decoder_optimizer = self.optimizer_class(groups, lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            distilled_net_arch=self.distilled_net_arch,
            activation_fn=self.activation_fn,
            n_critics=self.n_critics,
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            log_std_bounds=self.log_std_bounds,
            squash_log_std=self.squash_log_std,
            evaluate_with_distilled=self.evaluate_with_distilled,
            encoder_kwargs=self.encoder_kwargs,
            decoder_weight_decay=self.decoder_weight_decay,
        )
        return data

    def obs_to_tensor(self, observation: np.ndarray | dict[str, np.ndarray]) -> tuple[PyTorchObs, bool]:
        """Check ``task_obs`` (:func:`~mtsb3.common.task.check_task_obs`), then convert it as SB3 does for ``predict``."""
        check_task_obs(observation, self.observation_space)
        return super().obs_to_tensor(observation)

    def split_obs(self, obs: PyTorchObs, target: bool = False) -> tuple[th.Tensor, TaskGrouping]:
        """
        :param obs: an observation batch
        :param target: encode with the target encoder (the target critics' input)
        :return: the encoded ``env_obs`` (the flattened float ``env_obs`` for states) and the routing of each sample
            to its task
        """
        assert isinstance(obs, dict)
        return self.encoder(obs[ENV_KEY], target), TaskBatch.from_obs(obs, self.n_tasks).grouping

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        env_obs, grouping = self.split_obs(observation)
        if deterministic and self.evaluate_with_distilled:
            return self.distilled(env_obs, deterministic=True)
        return self.actor(env_obs, grouping, deterministic)

    def set_training_mode(self, mode: bool) -> None:
        self.actor.train(mode)
        self.encoder.train(mode)
        self.critic.train(mode)
        self.distilled.train(mode)
        self.training = mode


MlpPolicy = MultiInputPolicy = MultiTaskPolicy = DistralPolicy
