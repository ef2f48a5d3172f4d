"""
Soft Modularization (Yang et al. 2020, https://arxiv.org/abs/2003.13661): a routing network that softly
re-wires a base network of modules per sample, from the observation and the task
(mtrl/agent/components/soft_modularization.py).

Two ways to use it:

- **mtrl's networks, under** :class:`mtsb3.MTSAC` (the ``soft_modularization`` recipe): :class:`SoftModularizedMLP` is the
  actor and each Q-network (``trunk="soft_modularization"``): a routed hidden layer, then a routed output layer (the
  actor's mean and log std; the Q-value), and the critic routes on a projection of ``[observation encoding | action]``::

      from mtsb3.recipes import soft_modularization

      model = MTSAC("MultiInputPolicy", env, policy_kwargs=soft_modularization(), disentangled_alpha=True)

- **As a features extractor, under any SB3 algorithm** (:class:`SoftModularizationExtractor`): the routed network is
  the body of the actor and the critic, and SB3 puts its usual heads on top (the actor's linear mean/log-std layers;
  the Q-network's ``net_arch`` over ``concat(features, action)``)::

      policy_kwargs = dict(
          features_extractor_class=SoftModularizationExtractor,
          features_extractor_kwargs=dict(n_modules=4, n_layers=2, module_hidden=128),
          net_arch=dict(pi=[], qf=[400]),
      )

  An SB3 features extractor sees the observation only, so there the critic's routing depends on state and task, and
  the action enters in the Q head (keep a hidden layer in ``qf``); mtrl's critic routes on the action too.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
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
    :param n_networks: ``None`` for one routing network; else the number of independent ones (a critic ensemble), run as
        one batched network (:class:`~mtsb3.common.experts.BatchedLinear` layers)
    """

    def __init__(self, embedding_dim: int, n_modules: int, n_routings: int, n_networks: int | None = None):
        super().__init__()
        self.n_modules = n_modules
        n_weights = n_modules * n_modules
        linear = _linear(n_networks)
        self.down = nn.ModuleList(linear(embedding_dim, n_weights) for _ in range(n_routings))
        self.up = nn.ModuleList(linear(n_weights, embedding_dim) for _ in range(n_routings - 1))

    def forward(self, routing_input: th.Tensor) -> list[th.Tensor]:
        """
        :param routing_input: ``r``, ``(B, embedding_dim)``; with ``n_networks``, ``(N, B, embedding_dim)`` or
            ``(B, embedding_dim)`` shared by the networks
        :return: one ``(B, E, E)`` (with ``n_networks``: ``(N, B, E, E)``) routing matrix per routing step; each row sums
            to 1
        """
        # Eq. 2 chains the routing steps (p_{l+1} reads p_l through W_u, a ReLU and the product with r), so their small
        # matmuls run in turn; what the steps share runs once: ReLU(r) for p_1 and one softmax over all the steps' logits.
        logits = [self.down[0](th.relu(routing_input))]
        for up, down in zip(self.up, self.down[1:], strict=True):
            logits.append(down(th.relu(up(logits[-1]) * routing_input)))
        shape = (len(logits), *logits[0].shape[:-1], self.n_modules, self.n_modules)
        return list(th.softmax(th.stack(logits).view(shape), dim=-1).unbind(0))


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
    :param out_features: ``None``: every layer has ``module_hidden`` units and an activation; else the last layer is an
        output layer of this size without activation (mtrl's ``SoftModularizedMLP``, whose last modular layer gives the
        actor's mean and log std, or the Q-value)
    :param n_networks: ``None`` for one network; else the number of independent networks (a critic ensemble), whose
        ``N * E`` modules run as one batched matmul per layer
    """

    def __init__(
        self,
        in_features: int,
        n_modules: int,
        n_layers: int,
        module_hidden: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        out_features: int | None = None,
        n_networks: int | None = None,
    ):
        super().__init__()
        check_count(n_modules, "n_modules")
        check_count(n_layers, "n_layers (Soft Modularization routes between layers)", minimum=2)
        sizes = [in_features] + [module_hidden] * (n_layers - 1) + [module_hidden if out_features is None else out_features]
        n_stacked = n_modules * (n_networks or 1)
        self.layers = nn.ModuleList(BatchedLinear(n_stacked, n_in, n_out) for n_in, n_out in itertools.pairwise(sizes))
        # ReLU (mtrl's and the default) runs in place on each fresh matmul output, as its backward reads the output only:
        # one (E, B, H) tensor fewer per layer to allocate and write, on the largest activations of the network
        self.activation = nn.ReLU(inplace=True) if activation_fn is nn.ReLU else activation_fn()
        self.n_modules, self.n_layers, self.n_networks = n_modules, n_layers, n_networks
        self.out_features, self.activate_output = sizes[-1], out_features is None

    def forward(self, x: th.Tensor, routing: Sequence[th.Tensor]) -> th.Tensor:
        """
        :param x: ``(B, in_features)``; with ``n_networks``, ``(N, B, in_features)`` or ``(B, in_features)`` shared
        :param routing: ``n_layers - 1`` routing matrices ``(B, E, E)`` (with ``n_networks``: ``(N, B, E, E)``)
        :return: ``(B, out)`` (with ``n_networks``: ``(N, B, out)``)
        """
        lead = () if self.n_networks is None else (self.n_networks,)
        if x.ndim == 3:  # one input per network, fed to each of its modules
            x = x.unsqueeze(1).expand(-1, self.n_modules, -1, -1).flatten(0, 1)
        h = self.activation(self.layers[0](x))  # (N * E, B, H), network-major
        for index, (layer, weights) in enumerate(zip(self.layers[1:], routing, strict=True)):
            if index == self.n_layers - 2 and not self.activate_output:
                return self._routed_output(h, weights, layer)
            mixed = th.einsum("...bij,...jbh->...ibh", weights, h.view(*lead, self.n_modules, *h.shape[1:]))
            h = self.activation(layer(mixed.flatten(0, len(lead))))
        # the mean over modules as a sum divided in place: its backward expands the gradient as a view instead of
        # materialising an (E, B, H) quotient (the same values as a mean)
        return h.view(*lead, self.n_modules, *h.shape[1:]).sum(dim=len(lead)).div_(self.n_modules)

    def _routed_output(self, h: th.Tensor, weights: th.Tensor, layer: BatchedLinear) -> th.Tensor:
        """
        The routed output layer and the mean over its modules, ``mean_i(W_i^T sum_j P[b, i, j] h_j + b_i)``, computed as
        ``sum_ij P[b, i, j] (W_i^T h_j)``: one matmul of every hidden module's output with every output module's weights,
        then the small routing sum. The mixed inputs (``E`` times the hidden layer) are never built, and the matmul runs on
        the hidden outputs as they are, where mixing first costs a per-sample matmul and two copies of them.

        :param h: the last hidden layer, ``(N * E, B, H)``
        :param weights: its routing matrices, ``(B, E, E)`` or ``(N, B, E, E)``
        :param layer: the output layer, ``N * E`` modules
        :return: ``(B, out)`` or ``(N, B, out)``
        """
        n_modules, (n_stacked, batch, hidden), out = self.n_modules, h.shape, layer.out_features
        n_networks = n_stacked // n_modules
        # (N, H, E * out): output module i's weights side by side
        stacked = layer.weight.view(n_networks, n_modules, hidden, out).transpose(1, 2).reshape(n_networks, hidden, -1)
        products = th.bmm(h.view(n_networks, n_modules * batch, hidden), stacked)  # [n, (j, b), (i, o)] = W_i^T h_j[b]
        lead = () if self.n_networks is None else (n_networks,)
        products = products.view(*lead, n_modules, batch, n_modules, out)
        routed = th.einsum("...bij,...jbio->...bo", weights, products)
        bias = layer.bias.view(*lead, n_modules, out).sum(dim=-2).unsqueeze(-2)
        return (routed + bias).div_(n_modules)


def _linear(n_networks: int | None) -> Callable[[int, int], nn.Module]:
    """:return: a linear layer builder: ``nn.Linear`` for one network, a :class:`BatchedLinear` for ``n_networks``"""
    return nn.Linear if n_networks is None else functools.partial(BatchedLinear, n_networks)


class SoftModularizedMLP(nn.Module):
    """
    mtrl's Soft Modularization actor or Q-function (mtrl/agent/components/soft_modularization.py, ``SoftModularizedMLP``
    and ``RoutingNetwork``; the Q-function's ``obs_action_projection_layer`` in mtrl/agent/components/critic.py) as the
    trunk of an :class:`~mtsb3.MTSAC` actor or critic (``trunk="soft_modularization"``).

    Its input is ``[s | z | a]``: the observation encoding ``s``, the task encoding ``z`` (of the same size: mtrl multiplies
    them) and, for a Q-function, the action ``a``.

    - A Q-function first projects ``[s | a]`` back to the size of ``s`` (mtrl: ``Linear(obs + |A|, obs)``); this is ``x``.
      For the actor, ``x = s``.
    - Routing: ``r = Linear(obs, hidden)(x * z)`` (mtrl's ``projection_before_routing``), then :class:`RoutingNetwork`.
    - Base network: :class:`SoftModularNetwork` on ``x``, with hidden layers of ``net_arch`` and a last modular layer of
      ``out_features`` without activation (mtrl: ``2 |A|`` for the actor, 1 for a Q-function), averaged over modules.

    :param obs_dim: size of the observation encoding ``s``
    :param task_dim: size of the task encoding ``z`` (must equal ``obs_dim``)
    :param out_features: output size
    :param extra_dim: size of ``a`` (0 for the actor)
    :param n_modules: modules per layer (mtrl: 4)
    :param net_arch: hidden sizes, all equal: ``len(net_arch) + 1`` modular layers (mtrl: ``[400]``, 2 layers)
    :param activation_fn: activation of the hidden modular layers
    :param n_networks: ``None`` for one network; else the number of independent networks (mtrl's Q1 and Q2), batched
    """

    def __init__(
        self,
        obs_dim: int,
        task_dim: int,
        out_features: int,
        extra_dim: int = 0,
        n_modules: int = 4,
        net_arch: Sequence[int] = (400,),
        activation_fn: type[nn.Module] = nn.ReLU,
        n_networks: int | None = None,
    ):
        super().__init__()
        if obs_dim != task_dim:
            raise ValueError(
                f"Soft Modularization multiplies the observation encoding ({obs_dim}) by the task encoding ({task_dim}) "
                "elementwise: give the task encoder output_dim the size of the features extractor's output"
            )
        if not net_arch or len(set(net_arch)) != 1:
            raise ValueError(
                f"trunk='soft_modularization' needs net_arch = [hidden] * n (all modules of one width), got {net_arch}"
            )
        hidden, n_layers = net_arch[0], len(net_arch) + 1
        linear = _linear(n_networks)
        self.obs_dim, self.task_dim, self.extra_dim = obs_dim, task_dim, extra_dim
        self.projection = linear(obs_dim + extra_dim, obs_dim) if extra_dim else None
        self.routing_projection = linear(obs_dim, hidden)
        self.routing = RoutingNetwork(hidden, n_modules, n_layers - 1, n_networks)
        self.base = SoftModularNetwork(obs_dim, n_modules, n_layers, hidden, activation_fn, out_features, n_networks)

    def forward(self, x: th.Tensor | Sequence[th.Tensor]) -> th.Tensor:
        """
        :param x: ``(B, obs + task + extra)``, or its parts (the critic's features and actions)
        :return: ``(B, out_features)`` (with ``n_networks``: ``(N, B, out_features)``)
        """
        x = x if isinstance(x, th.Tensor) else th.cat(list(x), dim=-1)
        obs, task, extra = x.split([self.obs_dim, self.task_dim, self.extra_dim], dim=-1)
        if self.projection is not None:
            obs = self.projection(th.cat([obs, extra], dim=-1))
        return self.base(obs, self.routing(self.routing_projection(obs * task)))


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
