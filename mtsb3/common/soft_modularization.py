"""
Soft Modularization (Yang et al. 2020, https://arxiv.org/abs/2003.13661): a routing network that softly
re-wires a base network of modules per sample, from the observation and the task
(mtrl/agent/components/soft_modularization.py).

Usage as the body of the SB3 actor and critic::

    from mtsb3.common.soft_modularization import SoftModularizationExtractor

    policy_kwargs = dict(
        features_extractor_class=SoftModularizationExtractor,
        features_extractor_kwargs=dict(n_modules=4, n_layers=2, module_hidden=128),
        net_arch=dict(pi=[], qf=[400]),
    )

The modular network is the actor's and the critic's body; SB3 puts its usual heads on top (the actor's linear
mean/log-std layers; the Q-network's ``net_arch`` over ``concat(features, action)``). Divergence from mtrl, whose
critic routes on a projection of ``concat(obs encoding, action)``: an SB3 features extractor sees the observation
only, so here the critic's routing depends on state and task, and the action enters in the Q head (keep a hidden
layer in ``qf``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

from mtgym.core import check_count
from mtsb3.common.experts import BatchedLinear
from mtsb3.common.torch_layers import TaskConditionedExtractor


class RoutingNetwork(nn.Module):
    """
    The routing network of Soft Modularization (Yang et al. 2020, Eqs. 1-2).

    With ``r = f(s) * h(z)`` (the observation embedding times the task embedding, elementwise):

    - ``p_1 = W_d[0](ReLU(r))``
    - ``p_{l+1} = W_d[l](ReLU(W_u[l-1](p_l) * r))``, from the raw (pre-softmax) ``p_l`` as in the paper and mtrl

    Each ``p_l`` is reshaped to ``(B, E, E)`` and normalised by a softmax over its last axis: row ``i`` holds the
    weights with which module ``i`` of layer ``l + 1`` reads the modules of layer ``l``.

    :param embedding_dim: size of ``r``
    :param n_modules: modules per layer ``E``
    :param n_routings: number of routing matrices (modular layers - 1)
    """

    def __init__(self, embedding_dim: int, n_modules: int, n_routings: int):
        super().__init__()
        self.n_modules = n_modules
        n_weights = n_modules * n_modules
        self.down = nn.ModuleList(nn.Linear(embedding_dim, n_weights) for _ in range(n_routings))
        self.up = nn.ModuleList(nn.Linear(n_weights, embedding_dim) for _ in range(n_routings - 1))

    def forward(self, routing_input: th.Tensor) -> list[th.Tensor]:
        """
        :param routing_input: ``r``, ``(B, embedding_dim)``
        :return: one ``(B, E, E)`` routing matrix per routing step; each row sums to 1
        """
        # Eq. 2 chains the routing steps (p_{l+1} reads p_l through W_u, a ReLU and the product with r), so their small
        # matmuls run in turn; what the steps share runs once: ReLU(r) for p_1 and one softmax over all the steps' logits.
        logits = [self.down[0](th.relu(routing_input))]
        for up, down in zip(self.up, self.down[1:], strict=True):
            logits.append(down(th.relu(up(logits[-1]) * routing_input)))
        shape = (len(logits), routing_input.shape[0], self.n_modules, self.n_modules)
        return list(th.softmax(th.stack(logits).view(shape), dim=3).unbind(0))


class SoftModularNetwork(nn.Module):
    """
    The base network of Soft Modularization: ``n_layers`` layers of ``E`` modules, each module a ``Linear`` +
    activation, all modules of a layer run as one batched matmul (:class:`~mtsb3.common.experts.BatchedLinear`,
    weights ``(E, in, out)``). Layer 0 gives every module the same input; module ``i`` of layer ``l + 1`` reads
    ``sum_j P_l[b, i, j] * out_l[j]`` (one ``einsum``). The output is the mean over the last layer's modules.

    :param in_features: input size
    :param n_modules: ``E``
    :param n_layers: modular layers (>= 2: with one layer there is nothing to route)
    :param module_hidden: output size of every module
    :param activation_fn: activation after each module
    """

    def __init__(
        self, in_features: int, n_modules: int, n_layers: int, module_hidden: int, activation_fn: type[nn.Module] = nn.ReLU
    ):
        super().__init__()
        check_count(n_modules, "n_modules")
        check_count(n_layers, "n_layers (Soft Modularization routes between layers)", minimum=2)
        sizes = [in_features] + [module_hidden] * n_layers
        self.layers = nn.ModuleList(BatchedLinear(n_modules, n_in, n_out) for n_in, n_out in itertools.pairwise(sizes))
        # ReLU (mtrl's and the default) runs in place on each fresh matmul output, as its backward reads the output only:
        # one (E, B, H) tensor fewer per layer to allocate and write, on the largest activations of the network
        self.activation = nn.ReLU(inplace=True) if activation_fn is nn.ReLU else activation_fn()
        self.n_modules, self.n_layers, self.out_features = n_modules, n_layers, module_hidden

    def forward(self, x: th.Tensor, routing: Sequence[th.Tensor]) -> th.Tensor:
        """
        :param x: ``(B, in_features)``
        :param routing: ``n_layers - 1`` routing matrices ``(B, E, E)``
        :return: ``(B, module_hidden)``
        """
        h = self.activation(self.layers[0](x))  # (E, B, H)
        for layer, weights in zip(self.layers[1:], routing, strict=True):
            h = self.activation(layer(th.einsum("bij,jbh->ibh", weights, h)))
        # the mean over modules as a sum divided in place: its backward expands the gradient as a view instead of
        # materialising an (E, B, H) quotient (the same values as h.mean(dim=0))
        return h.sum(dim=0).div_(self.n_modules)


class SoftModularizationExtractor(TaskConditionedExtractor):
    """
    Soft Modularization (Yang et al. 2020, https://arxiv.org/abs/2003.13661) as a features extractor: the
    modular network, routed per sample by the observation and the task, is the body of the SB3 actor and critic.

    - ``f(s)``: an MLP embedding of ``env_obs`` (``embedding_net_arch``, ReLU) to ``embedding_dim``.
    - ``h(z)``: a linear map of the task encoding ``z`` to ``embedding_dim``.
    - routing :class:`RoutingNetwork` on ``f(s) * h(z)``; base :class:`SoftModularNetwork` on ``f(s)``.

    Every routing, embedding and module parameter is trained by the loss of the network that owns the extractor.

    :param observation_space: ``Dict(env_obs=Box, task_obs=Discrete(n_tasks))``
    :param n_modules: modules per layer (mtrl: 4)
    :param n_layers: modular layers (mtrl: 2)
    :param module_hidden: output size of each module; this is the features size
    :param embedding_dim: size of ``f(s)`` and ``h(z)``
    :param embedding_net_arch: hidden sizes of ``f`` before its last layer
    :param activation_fn: activation of the modules and of ``f``
    :param task_encoder_kwargs: the task encoder (see :func:`mtsb3.common.torch_layers.make_task_encoder`)
    :param task_encoding_dim: take the task encoding, of this size, from the caller instead
        (see :class:`~mtsb3.common.torch_layers.TaskConditionedExtractor`)
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        n_modules: int = 4,
        n_layers: int = 2,
        module_hidden: int = 128,
        embedding_dim: int = 400,
        embedding_net_arch: Sequence[int] = (),
        activation_fn: type[nn.Module] = nn.ReLU,
        task_encoder_kwargs: dict[str, Any] | None = None,
        task_encoding_dim: int | None = None,
    ):
        check_count(n_modules, "n_modules")
        check_count(n_layers, "n_layers (Soft Modularization routes between layers)", minimum=2)
        super().__init__(observation_space, task_encoder_kwargs or {}, task_encoding_dim)
        self._features_dim = module_hidden
        self.obs_embedding = nn.Sequential(
            *create_mlp(self.env_obs_dim, embedding_dim, list(embedding_net_arch), activation_fn), activation_fn()
        )
        self.task_embedding = nn.Linear(self.task_encoding_dim, embedding_dim)
        self.routing = RoutingNetwork(embedding_dim, n_modules, n_layers - 1)
        self.base = SoftModularNetwork(embedding_dim, n_modules, n_layers, module_hidden, activation_fn)

    def _embed_and_route(
        self, observations: dict[str, th.Tensor], task_encoding: th.Tensor | None
    ) -> tuple[th.Tensor, list[th.Tensor]]:
        env_obs, task_idx = self.split(observations)
        embedding = self.obs_embedding(env_obs)
        return embedding, self.routing(embedding * self.task_embedding(self.encode_task(task_idx, task_encoding)))

    def routing_weights(self, observations: dict[str, th.Tensor], task_encoding: th.Tensor | None = None) -> list[th.Tensor]:
        """:return: the ``(B, E, E)`` routing matrices for a batch of observations (for inspection and tests)."""
        return self._embed_and_route(observations, task_encoding)[1]

    def forward(self, observations: dict[str, th.Tensor], task_encoding: th.Tensor | None = None) -> th.Tensor:
        """
        :param observations: the preprocessed ``Dict`` observation batch
        :param task_encoding: the task encoding, when it comes from the caller
        """
        return self.base(*self._embed_and_route(observations, task_encoding))
