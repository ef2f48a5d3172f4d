"""
MOORE, the Mixture Of ORthogonal Experts (Hendawy, Peters, D'Eramo, "Multi-Task Reinforcement Learning with Mixture of
Orthogonal Experts", ICLR 2024, https://arxiv.org/abs/2311.11385, section 4 and Fig. 1): ``k`` experts encode the state as
``k`` representations, a Gram-Schmidt process makes them an orthonormal basis of a ``k``-dimensional subspace (a point
of the Stiefel manifold), and a task-specific weight vector ``w_c`` picks the task's representation ``v_c = V_s w_c``
inside that subspace.

As a :class:`~stable_baselines3.common.torch_layers.BaseFeaturesExtractor` it plugs into :class:`mtsb3.MTSAC` (and SB3's
SAC, TD3, PPO) through ``policy_kwargs``; the actor and the critic each build their own copy, as in the authors' code
(moore/utils/networks_sac.py, ``MetaworldSACMixtureMHActorNetwork`` and ``MetaworldSACMixtureMHCriticNetwork``).
:func:`mtsb3.recipes.moore` adds the per-task output heads of the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch as th
from gymnasium import spaces
from torch import nn

from mtgym.core import check_count
from mtsb3.common.experts import BatchedMLP
from mtsb3.common.torch_layers import TaskConditionedExtractor


def gram_schmidt(vectors: th.Tensor, eps: float = 1e-6) -> th.Tensor:
    """
    Classical Gram-Schmidt over the first axis, for every sample at once (MOORE, section 4; the authors'
    ``OrthogonalLayer1D``, moore/utils/mixture_layers.py): vector ``i`` of a sample loses its projections on that sample's
    orthonormalised vectors ``0 .. i-1``, then is normalised.

    The Python loop runs over the ``k`` vectors only (the authors' MetaWorld runs use 4 and 6); each step is a few
    elementwise ops over the whole batch. ``torch.linalg.qr`` of the ``(B, d, k)`` stack gives the same basis up to
    column signs (tests/common/test_orthogonal_experts.py); Gram-Schmidt is the authors' algorithm and needs no LAPACK
    call.

    :param vectors: ``(k, batch, d)``: ``k`` vectors of size ``d`` per sample, ``k <= d``
    :param eps: floor of the norm, so that a zero vector comes out as zero instead of NaN (the authors divide by the
        bare norm); a vector in the span of the earlier ones comes out as normalised rounding noise, of norm at most 1
    :return: ``(k, batch, d)``: for every sample, ``k`` orthonormal vectors spanning the same flag of subspaces
    """
    basis: list[th.Tensor] = []
    for vector in vectors.unbind(0):
        if basis:
            previous = th.stack(basis)  # (i, batch, d)
            # classical (not modified) Gram-Schmidt: all coefficients against the original vector, as the authors
            coefficients = (previous * vector).sum(dim=-1, keepdim=True)
            vector = vector - (coefficients * previous).sum(dim=0)
        basis.append(vector * th.rsqrt((vector * vector).sum(dim=-1, keepdim=True).clamp_min(eps * eps)))
    return th.stack(basis)


class MixtureOfOrthogonalExperts(TaskConditionedExtractor):
    """
    MOORE's representation (MOORE, section 4): ``n_experts`` MLPs of ``env_obs`` (one :class:`BatchedMLP`), their outputs
    orthonormalised per sample by :func:`gram_schmidt`, mixed with task weights ``w_c`` and squashed by
    ``output_activation_fn``: ``features = tanh(sum_j w_c[j] * q_j(s))``, of size ``features_dim``.

    The authors' MetaWorld networks (run/metaworld/run_metaworld_mt10_mhsac_mt_moore.sh; moore/utils/networks_sac.py):
    experts of 3 linear layers of 400 (ReLU between them, none after the last: ``--activation Linear``), no activation
    before the mixture and tanh after it (``--agg_activation Linear Tanh``), 4 experts on MT10 and 6 on MT50. The defaults
    here are those sizes: ``net_arch=[400, 400]`` hidden layers, then the linear ``features_dim=400`` output. The experts
    are initialised like ``nn.Linear`` (the authors use Xavier-uniform).

    The task weights ``w_c`` (``n_experts`` per task) are, by default, the authors' task encoder: a bias-free linear map
    of the task one-hot (``nn.Linear(n_tasks, n_experts, bias=False)``, Xavier-uniform), i.e. one free weight vector
    per task, stored here as an embedding table (the same map, without the one-hot matmul). With a task encoding
    (``task_encoder_kwargs``, or the policy's encoder through ``task_encoding_dim``) a bias-free linear layer maps the
    encoding to the weights instead, e.g. to start from pretrained task-description embeddings.

    :param observation_space: ``Dict(env_obs=Box, task_obs=Discrete(n_tasks))``
    :param n_experts: number of experts ``k`` (the dimension of the shared subspace), at most ``features_dim``
    :param net_arch: hidden sizes of each expert
    :param features_dim: size ``d`` of each expert's representation, and of the output
    :param activation_fn: activation between the expert layers
    :param output_activation_fn: activation after the mixture (authors: tanh); ``None`` for none
    :param eps: norm floor of :func:`gram_schmidt`
    :param task_encoder_kwargs: ``None`` (default): the weights are a linear map of the task one-hot; otherwise build a
        task encoder with these kwargs (:func:`~mtsb3.common.torch_layers.make_task_encoder`) and map its encoding
    :param task_encoding_dim: take a task encoding of this size from the caller instead (see
        :class:`~mtsb3.common.torch_layers.TaskConditionedExtractor`)
    :raises ValueError: if ``n_experts`` is not an integer in ``[1, features_dim]``
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        n_experts: int = 4,
        net_arch: Sequence[int] = (400, 400),
        features_dim: int = 400,
        activation_fn: type[nn.Module] = nn.ReLU,
        output_activation_fn: type[nn.Module] | None = nn.Tanh,
        eps: float = 1e-6,
        task_encoder_kwargs: dict[str, Any] | None = None,
        task_encoding_dim: int | None = None,
    ):
        n_experts = check_count(n_experts, "n_experts")
        features_dim = check_count(features_dim, "features_dim")
        if n_experts > features_dim:
            raise ValueError(
                f"n_experts={n_experts} orthonormal representations need features_dim >= n_experts, got "
                f"features_dim={features_dim}: Gram-Schmidt makes at most features_dim orthonormal vectors"
            )
        super().__init__(observation_space, task_encoder_kwargs, task_encoding_dim)
        self.n_experts, self.eps = n_experts, eps
        self._features_dim = features_dim
        self.experts = BatchedMLP(n_experts, self.env_obs_dim, list(net_arch), features_dim, activation_fn)
        self.output_activation = output_activation_fn() if output_activation_fn is not None else nn.Identity()
        self.uses_task_encoding = self.task_encoder is not None or self.external_task_encoding
        self.task_weights: nn.Module
        if self.uses_task_encoding:
            self.task_weights = nn.Linear(self.task_encoding_dim, n_experts, bias=False)
            nn.init.xavier_uniform_(self.task_weights.weight)
        else:
            # the authors' Linear(n_tasks, n_experts, bias=False) of the one-hot: row c of this table is w_c
            self.task_weights = nn.Embedding(self.n_tasks, n_experts)
            nn.init.xavier_uniform_(self.task_weights.weight)

    def expert_weights(self, task_idx: th.Tensor, task_encoding: th.Tensor | None = None) -> th.Tensor:
        """
        :param task_idx: ``(B,)`` long task indices
        :param task_encoding: the task encoding, when it comes from the caller
        :return: ``(B, n_experts)`` task weights ``w_c`` (unnormalised, as the authors')
        """
        if self.uses_task_encoding:
            return self.task_weights(self.encode_task(task_idx, task_encoding))
        return self.task_weights(task_idx)

    def orthogonal_representations(self, env_obs: th.Tensor) -> th.Tensor:
        """:param env_obs: ``(B, obs_dim)``; :return: ``(n_experts, B, features_dim)``, orthonormal per sample."""
        return gram_schmidt(self.experts(env_obs), self.eps)

    def forward(self, observations: dict[str, th.Tensor], task_encoding: th.Tensor | None = None) -> th.Tensor:
        """
        :param observations: the preprocessed ``Dict`` observation batch
        :param task_encoding: the task encoding, when it comes from the caller
        :return: ``(B, features_dim)`` task representations
        """
        env_obs, task_idx = self.split(observations)
        basis = self.orthogonal_representations(env_obs)
        weights = self.expert_weights(task_idx, task_encoding)
        return self.output_activation(th.einsum("bk,kbd->bd", weights, basis))
