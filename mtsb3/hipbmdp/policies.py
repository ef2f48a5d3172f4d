"""HiP-BMDP θ model (mtrl/agent/hipbmdp.py), its sampling strategies, the contrastive θ loss, and the policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from mtsb3.common.task_encoder import TaskEncoder
from mtsb3.deepmdp.policies import DeepMDPPolicy

ThetaStrategy = Literal["embedding", "zero", "mean", "mean_train"]
THETA_STRATEGIES: tuple[str, ...] = ("embedding", "zero", "mean", "mean_train")


def check_theta_strategy(strategy: str) -> str:
    """:raises ValueError: naming the valid strategies, if ``strategy`` is not one of them."""
    if strategy not in THETA_STRATEGIES:
        raise ValueError(f"theta strategy must be one of {THETA_STRATEGIES}, got {strategy!r}")
    return strategy


def contrastive_theta_loss(theta: th.Tensor, mu: th.Tensor, mu_flipped: th.Tensor) -> th.Tensor:
    """
    HiP-BMDP's contrastive θ loss (mtrl/agent/hipbmdp.py): each sample's θ is paired with the batch-reversed θ' (``flip`` along
    the batch axis), and the distance between the θs is matched to the distance between the transitions they
    predict, with whole-batch Frobenius norms: ``(‖θ - θ'‖_F - ‖μ - μ'‖_F)²``.

    :param theta: ``(B, d)`` θ of each sample, with gradient
    :param mu: ``(B, latent)`` predicted next latent from ``[h, θ, a]``; detached inside
    :param mu_flipped: ``(B, latent)`` predicted next latent from ``[h, θ', a]``; detached inside
    :return: scalar loss (unweighted; the algorithm scales it by ``contrastive_coef``)
    """
    theta_distance = th.linalg.vector_norm(theta - theta.flip(0))
    mu_distance = th.linalg.vector_norm(mu.detach() - mu_flipped.detach())
    return (theta_distance - mu_distance).pow(2)


class ThetaModel(nn.Module):
    """
    The HiP-BMDP task parameter θ (Zhang et al., "Learning Robust State Abstractions for Hidden-Parameter Block MDPs",
    https://arxiv.org/abs/2007.07206) with mtrl's sampling strategies, around a
    :class:`~mtsb3.common.task_encoder.TaskEncoder` ``f(emb[i])`` (mtrl's ``ThetaModel``: ``Embedding(n, d)``, then
    ``ReLU → Linear(d, 2d) → ReLU → Linear(2d, out)``, i.e. ``TaskEncoder(n, out, d, net_arch=[2d])``).

    Strategies (what θ is for a sample of task ``i``):

    - ``"embedding"``: ``f(emb[i])``, the task's own θ (training, and evaluation on training tasks);
    - ``"zero"``: the MLP applied to a zero embedding;
    - ``"mean"``: the mean of ``f(emb[j])`` over **all** tasks;
    - ``"mean_train"``: the mean of ``f(emb[j])`` over the training tasks (evaluation on unseen tasks).

    Which strategy applies: the one passed to :meth:`forward`, else :attr:`strategy` if set, else the task's own
    entry of ``task_strategies`` (one strategy per task, e.g. from the task's evaluation split). The per-task
    choice is batched: a batch mixing tasks of several splits gets each task's θ in one pass.

    mtrl created the embedding with ``padding_idx=0``, so task 0's θ was frozen at ``f(0)`` and ``"mean"``
    averaged tasks 1..9 only (README, "Differences from mtrl and mtenv"). Task indices here are real tasks from 0: there is no
    padding row and ``"mean"`` covers every task.

    :param task_encoder: the embedding + MLP (shared with the policy's task conditioning)
    :param train_tasks: the training task indices, for ``"mean_train"``
    :param task_strategies: the strategy of each task (``None``: ``"embedding"`` for all)
    :param strategy: a strategy for every task, overriding ``task_strategies`` (``None``: per task)
    """

    def __init__(
        self,
        task_encoder: TaskEncoder,
        train_tasks: Sequence[int],
        task_strategies: Sequence[ThetaStrategy] | None = None,
        strategy: ThetaStrategy | None = None,
    ):
        super().__init__()
        n_tasks = task_encoder.n_tasks
        train_tasks = sorted({int(t) for t in train_tasks})
        if not train_tasks or not all(0 <= t < n_tasks for t in train_tasks):
            raise ValueError(f"train_tasks must be a non-empty list of task indices in [0, {n_tasks}), got {train_tasks}")
        task_strategies = list(task_strategies) if task_strategies is not None else ["embedding"] * n_tasks
        if len(task_strategies) != n_tasks:
            raise ValueError(f"task_strategies needs one strategy per task ({n_tasks}), got {len(task_strategies)}")
        self.task_encoder = task_encoder
        self.n_tasks, self.output_dim = n_tasks, task_encoder.output_dim
        # type: ignore[assignment]
        self.strategy: ThetaStrategy | None = None if strategy is None else check_theta_strategy(strategy)
        self.register_buffer("train_tasks", th.tensor(train_tasks, dtype=th.long))
        codes = [THETA_STRATEGIES.index(check_theta_strategy(s)) for s in task_strategies]
        self.register_buffer("task_strategy_codes", th.tensor(codes, dtype=th.long))

    @property
    def task_strategies(self) -> list[str]:
        """The strategy of each task when no global :attr:`strategy` is set."""
        return [THETA_STRATEGIES[code] for code in self.task_strategy_codes.tolist()]

    def f(self, embedding: th.Tensor) -> th.Tensor:
        """The MLP after the embedding."""
        return self.task_encoder.mlp(embedding)

    def all_thetas(self) -> th.Tensor:
        """:return: ``(n_tasks, output_dim)``, the ``"embedding"`` θ of every task."""
        return self.f(self.task_encoder.embedding.weight)

    def pooled_thetas(self) -> th.Tensor:
        """:return: ``(3, output_dim)``: the θ of ``"zero"``, ``"mean"`` and ``"mean_train"`` (the same for every task)."""
        embedding = self.task_encoder.embedding
        zero = self.f(embedding.weight.new_zeros(1, embedding.embedding_dim))
        all_thetas = self.all_thetas()
        return th.cat([zero, all_thetas.mean(0, keepdim=True), all_thetas[self.train_tasks].mean(0, keepdim=True)])

    def forward(self, task_idx: th.Tensor, strategy: ThetaStrategy | None = None) -> th.Tensor:
        """
        :param task_idx: ``(B,)`` long task indices
        :param strategy: one of :data:`THETA_STRATEGIES`; ``None`` uses :attr:`strategy`, else each task's own
        :return: ``(B, output_dim)`` θ per sample
        """
        strategy = strategy if strategy is not None else self.strategy
        if strategy is None:  # per task, batched: each sample picks its row of [own θ, zero, mean, mean_train]
            codes = self.task_strategy_codes[task_idx]
            pooled = self.pooled_thetas()[(codes - 1).clamp(min=0)]
            return th.where((codes == 0).unsqueeze(1), self.task_encoder(task_idx), pooled)
        code = THETA_STRATEGIES.index(check_theta_strategy(strategy))
        if code == 0:
            return self.task_encoder(task_idx)
        return self.pooled_thetas()[code - 1].expand(task_idx.shape[0], -1)

    def extra_repr(self) -> str:
        return f"strategy={self.strategy!r}, train_tasks={self.train_tasks.tolist()}, task_strategies={self.task_strategies}"


#: mtrl's θ sizes: embedding 50, hidden 100, output 50
THETA_ENCODER_KWARGS: dict[str, Any] = dict(embedding_dim=50, net_arch=[100], output_dim=50)


class HiPBMDPPolicy(DeepMDPPolicy):
    """
    :class:`~mtsb3.deepmdp.policies.DeepMDPPolicy` whose task encoder is HiP-BMDP's θ (:class:`ThetaModel`).

    θ is concatenated to the encoder features everywhere (mtrl's ``should_concatenate_task_info_with_encoder``,
    the "task encoder on" path that crashes at mtrl's HEAD, README, "Differences from mtrl and mtenv"): the actor and critic
    see ``[encoder(s), θ]`` with θ **detached** (θ is not trained by the SAC losses, mtrl's ``losses_to_train``), and the
    transition model, reward decoder and pixel decoder work on the latent ``[encoder(s), θ]`` with gradient into θ.
    θ has its own optimizer, ``theta_optimizer``. The critic target keeps a Polyak-averaged copy of θ, like its
    encoder.

    :param train_tasks: the training task indices (for the ``"mean_train"`` strategy); ``None`` means all tasks.
        :class:`~mtsb3.hipbmdp.HiPBMDP` fills it from the training env.
    :param task_strategies: the θ strategy of each task when acting (``None``: ``"embedding"``);
        :class:`~mtsb3.hipbmdp.HiPBMDP` fills it from the env's ``task_splits``
    :param task_encoder_kwargs: kwargs of θ's :class:`~mtsb3.common.task_encoder.TaskEncoder`, over
        :data:`THETA_ENCODER_KWARGS`
    :param args: the other arguments are those of :class:`~mtsb3.deepmdp.policies.DeepMDPPolicy`
    :param kwargs: see ``args``
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        train_tasks: Sequence[int] | None = None,
        task_strategies: Sequence[ThetaStrategy] | None = None,
        use_task_encoder: bool = True,
        task_encoder_kwargs: dict[str, Any] | None = None,
        concat_task_encoding: bool = True,
        **kwargs: Any,
    ):
        if not use_task_encoder or not concat_task_encoding:
            raise ValueError(
                "HiP-BMDP's θ is the task encoder, concatenated to the features: it needs use_task_encoder=True and "
                "concat_task_encoding=True (use DeepMDP for the model without θ)"
            )
        self.train_tasks = None if train_tasks is None else [int(t) for t in train_tasks]
        self.task_strategies = None if task_strategies is None else list(task_strategies)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            *args,
            use_task_encoder=True,
            task_encoder_kwargs={**THETA_ENCODER_KWARGS, **(task_encoder_kwargs or {})},
            concat_task_encoding=True,
            **kwargs,
        )

    def _build_networks(self) -> None:
        super()._build_networks()
        assert self.task_encoder is not None and self.n_tasks is not None
        train_tasks = self.train_tasks if self.train_tasks is not None else range(self.n_tasks)
        self.theta = ThetaModel(self.task_encoder, train_tasks, self.task_strategies).to(self.device)
        # the actor and critic read θ with the current strategy; the critic target keeps its own copy of the encoder
        # (set after the target copied the critic, whose state dict then had the encoder's layout)
        self.actor.conditioning.task_encoder = self.theta
        self.critic.conditioning.task_encoder = self.theta
        self.critic.conditioning.detach_task_encoding = True  # θ is not in mtrl's losses_to_train for the critic

    def _theta_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.task_encoder.parameters() if p.requires_grad]  # type: ignore[union-attr]

    def critic_parameters(self) -> list[nn.Parameter]:
        # θ has its own optimizer (theta_optimizer)
        theta_ids = {id(p) for p in self._theta_parameters()}
        return [p for p in super().critic_parameters() if id(p) not in theta_ids]

    def _build_optimizers(self, lr_schedule: Schedule) -> None:
        super()._build_optimizers(lr_schedule)
        self.theta_optimizer = self._make_optimizer(self._theta_parameters(), lr_schedule)

    def _encoder_parameters(self) -> list[nn.Parameter]:
        # θ has its own optimizer (theta_optimizer), stepped once per update after all representation losses
        return list(self.critic.features_extractor.parameters())

    def representation_optimizers(self) -> dict[str, th.optim.Optimizer]:
        return {**super().representation_optimizers(), "theta_optimizer": self.theta_optimizer}

    def encode_features(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """:return: the critic encoder's features of raw observations (with gradient) and their task indices."""
        task_idx = self.critic.conditioning.task_index(obs)
        assert task_idx is not None
        preprocessed = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        return self.critic.features_extractor(preprocessed), task_idx

    def encode(self, obs: PyTorchObs) -> th.Tensor:
        """The latent ``[encoder(s), θ]`` of raw observations, with gradient into θ (its training strategy)."""
        features, task_idx = self.encode_features(obs)
        return th.cat([features, self.theta(task_idx, "embedding")], dim=1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(train_tasks=self.train_tasks, task_strategies=self.task_strategies)
        return data


MultiInputPolicy = HiPBMDPPolicy
MultiTaskPolicy = HiPBMDPPolicy
