"""
BroNet: the residual, layer-normalised MLP of BRO (Nauman et al. 2024, "Bigger, Regularized, Optimistic",
https://arxiv.org/abs/2405.16158, section 3 and figure 3) that BRC scales up as its Q-network and actor (Nauman et al. 2025,
"Bigger, Regularized, Categorical", https://arxiv.org/abs/2505.23150; naumix/BiggerRegularizedCategorical,
jaxrl/networks.py, ``BroNet`` and ``BronetBlock``).

The trunk is ``Linear -> LayerNorm -> ReLU`` followed by ``n_blocks`` residual blocks
``x + LayerNorm(Linear(ReLU(LayerNorm(Linear(x)))))``. Its layers are listed in ``net_arch`` as for an MLP, so
``[width] * (1 + 2 * n_blocks)`` (:func:`bronet_arch`); the policies select it with ``trunk="bronet"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch as th
from torch import nn

from mtsb3.common.experts import BatchedLinear

#: the trunks an actor or critic MLP can be built as (``soft_modularization``:
#: :class:`~mtsb3.common.soft_modularization.SoftModularizedMLP`)
TRUNKS = ("mlp", "bronet", "soft_modularization")


def bronet_arch(width: int, n_blocks: int) -> list[int]:
    """
    :param width: the hidden size of every layer
    :param n_blocks: the number of residual blocks (BRC's ``depth``: 2 for the critic, 1 for the actor)
    :return: the ``net_arch`` of a BroNet: an input layer, then two layers per residual block
    """
    if width < 1 or n_blocks < 0:
        raise ValueError(f"A BroNet needs width >= 1 and n_blocks >= 0, got width={width}, n_blocks={n_blocks}")
    return [width] * (1 + 2 * n_blocks)


def check_bronet_arch(net_arch: Sequence[int]) -> tuple[int, int]:
    """
    :param net_arch: the layer sizes of a BroNet
    :return: ``(width, n_blocks)``
    :raises ValueError: unless ``net_arch`` is ``[width] * (1 + 2 * n_blocks)``
    """
    arch = list(net_arch)
    if not arch or len(arch) % 2 == 0 or len(set(arch)) != 1:
        raise ValueError(
            f"trunk='bronet' needs net_arch = [width] * (1 + 2 * n_blocks) (an input layer, then two layers per residual "
            f"block, all of one width; mtsb3.common.bronet.bronet_arch builds it), got {arch}"
        )
    return arch[0], (len(arch) - 1) // 2


def check_trunk(
    trunk: str | Mapping[str, str], disjoint_policy: bool = False, trunk_kwargs: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """
    :param trunk: one trunk for the actor and the critic, or ``dict(pi=..., qf=...)`` (as ``net_arch``)
    :param disjoint_policy: whether the policy is disjoint (every layer a per-task head: no shared trunk to build)
    :param trunk_kwargs: the Soft Modularization trunk's options (``n_modules``)
    :return: the actor's and the critic's trunk
    :raises ValueError: for an unknown trunk name or dict key, a trunk other than an MLP in a disjoint policy, or
        ``trunk_kwargs`` without a Soft Modularization trunk
    """
    if isinstance(trunk, Mapping):
        if set(trunk) - {"pi", "qf"}:
            raise ValueError(f"A trunk dict has the keys 'pi' and 'qf' (as net_arch), got {sorted(trunk)}")
        pi, qf = trunk.get("pi", "mlp"), trunk.get("qf", "mlp")
    else:
        pi = qf = trunk
    for name in (pi, qf):
        if name not in TRUNKS:
            raise ValueError(f"Unknown trunk {name!r}; choose one of {list(TRUNKS)}")
    if disjoint_policy and {pi, qf} != {"mlp"}:
        raise ValueError(f"disjoint_policy=True puts every layer into per-task heads: it has no shared trunk={trunk!r}")
    if trunk_kwargs and "soft_modularization" not in (pi, qf):
        raise ValueError(
            f"trunk_kwargs={dict(trunk_kwargs)!r} are options of trunk='soft_modularization', got trunk={trunk!r}"
        )
    return pi, qf


def batched_orthogonal_(weight: th.Tensor, gain: float = 1.0) -> th.Tensor:
    """
    ``nn.init.orthogonal_`` for each matrix of an ``(E, in, out)`` stack, in one batched QR decomposition.

    :param weight: the stacked weights, filled in place
    :param gain: the scale of the orthogonal matrices
    :return: ``weight``
    """
    n_experts, rows, cols = weight.shape
    flat = th.randn(n_experts, max(rows, cols), min(rows, cols))
    q, r = th.linalg.qr(flat)
    # the sign correction of torch.nn.init.orthogonal_: a uniform (Haar) distribution over orthogonal matrices
    q = q * th.sign(th.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    if rows < cols:
        q = q.transpose(-2, -1)
    with th.no_grad():
        weight.copy_(gain * q)
    return weight


class BatchedLayerNorm(nn.Module):
    """
    ``E`` independent ``LayerNorm`` layers over the last dimension of an ``(E, batch, features)`` input, with their own
    scale and shift (the per-critic LayerNorms of a fused critic ensemble).

    :param n_experts: number of experts ``E``
    :param features: the normalised size
    :param eps: added to the variance (``nn.LayerNorm``'s default)
    """

    def __init__(self, n_experts: int, features: int, eps: float = 1e-5):
        super().__init__()
        self.features, self.eps = features, eps
        self.weight = nn.Parameter(th.ones(n_experts, 1, features))
        self.bias = nn.Parameter(th.zeros(n_experts, 1, features))

    def forward(self, x: th.Tensor) -> th.Tensor:
        """:param x: ``(E, batch, features)``; :return: the normalised ``x``, same shape."""
        return th.addcmul(self.bias, nn.functional.layer_norm(x, (self.features,), eps=self.eps), self.weight)


class BroNet(nn.Module):
    """
    A BroNet trunk, optionally ``n_experts`` independent ones run as one batched network (the critic ensemble).

    As BRC (jaxrl/networks.py, ``default_init``), every hidden linear layer is initialised orthogonally with gain
    ``sqrt(2)`` and a zero bias. The output layer starts at zero instead (as TD-MPC2's value heads, Hansen et al. 2024,
    https://arxiv.org/abs/2310.16828), so that the first Q-values (a categorical critic: a uniform distribution) carry no
    random action preferences: with normalised returns of a few units, BRC's random initial outputs are as large as the
    values and misled the actor for thousands of updates on MT-PointGoal-v0 (mean return -30 instead of -6 after 4000 steps).

    :param in_features: input size
    :param net_arch: ``[width] * (1 + 2 * n_blocks)`` (:func:`bronet_arch`)
    :param out_features: size of a final linear layer (BRC's critic: the ``n_atoms`` logits); ``None``: the output is the
        trunk's ``width`` features
    :param activation_fn: the activation (BRO: ReLU)
    :param n_experts: ``None`` for one network on ``(batch, in)``; else the number of networks, each layer a
        :class:`~mtsb3.common.experts.BatchedLinear` / :class:`BatchedLayerNorm` on ``(E, batch, in)``
    """

    def __init__(
        self,
        in_features: int,
        net_arch: Sequence[int],
        out_features: int | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        n_experts: int | None = None,
    ):
        super().__init__()
        width, n_blocks = check_bronet_arch(net_arch)
        self.n_experts, self.out_features = n_experts, out_features if out_features is not None else width
        linear: Callable[[int, int], nn.Module]
        norm: Callable[[int], nn.Module]
        if n_experts is None:
            linear, norm = nn.Linear, nn.LayerNorm
        else:
            linear = lambda n_in, n_out: BatchedLinear(n_experts, n_in, n_out)  # noqa: E731
            norm = lambda n: BatchedLayerNorm(n_experts, n)  # noqa: E731
        self.input_layer = nn.Sequential(linear(in_features, width), norm(width), activation_fn())
        self.blocks = nn.ModuleList(
            nn.Sequential(linear(width, width), norm(width), activation_fn(), linear(width, width), norm(width))
            for _ in range(n_blocks)
        )
        self.output_layer = linear(width, out_features) if out_features is not None else None
        for module in self.modules():
            if module is self.output_layer:
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.Linear, BatchedLinear)):
                init = batched_orthogonal_ if isinstance(module, BatchedLinear) else nn.init.orthogonal_
                init(module.weight, math.sqrt(2))
                nn.init.zeros_(module.bias)

    def forward(self, x: th.Tensor | Sequence[th.Tensor]) -> th.Tensor:
        """
        :param x: ``(batch, in)``; with ``n_experts``, ``(E, batch, in)`` or ``(batch, in)`` fed to every network, or the
            input in such parts (see :meth:`~mtsb3.common.experts.BatchedLinear.forward`)
        :return: ``(batch, out)``, or ``(E, batch, out)`` with ``n_experts``
        """
        if self.n_experts is None and not isinstance(x, th.Tensor):
            x = th.cat(list(x), dim=-1)
        x = self.input_layer(x)  # a BatchedLinear feeds a (batch, in) input to every network
        for block in self.blocks:
            x = x + block(x)
        return x if self.output_layer is None else self.output_layer(x)
