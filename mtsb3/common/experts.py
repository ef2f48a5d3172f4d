"""Stacked expert (or per-task head) layers: E independent linear maps run as one batched matmul."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch as th
from torch import nn


class BatchedLinear(nn.Module):
    """
    ``E`` independent linear layers with weights ``(E, in, out)``, applied as one ``baddbmm``.

    It replaces a Python loop over experts or task heads (mtrl's ``moe_layer.Linear``, mtrl/agent/components/moe_layer.py).
    Each expert is initialised like ``nn.Linear``.

    :param n_experts: number of experts ``E``
    :param in_features: input size
    :param out_features: output size
    """

    def __init__(self, n_experts: int, in_features: int, out_features: int):
        super().__init__()
        self.n_experts, self.in_features, self.out_features = n_experts, in_features, out_features
        self.weight = nn.Parameter(th.empty(n_experts, in_features, out_features))
        self.bias = nn.Parameter(th.empty(n_experts, 1, out_features))
        bound = 1.0 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: th.Tensor | Sequence[th.Tensor]) -> th.Tensor:
        """
        :param x: ``(E, batch, in)``, or ``(batch, in)`` to feed the same input to every expert; or the input in parts
            (each of these shapes), whose concatenation along the last axis is the input
        :return: ``(E, batch, out)``
        """
        if isinstance(x, th.Tensor):
            return th.baddbmm(self.bias, self._per_expert(x), self.weight)
        # one matmul per part with its rows of the weights: a part that needs no gradient (the critic's features in the
        # actor loss, where the critic is frozen) then costs no input-gradient matmul, which a concatenation would compute
        # for the whole input (for a 400-wide features part, the size of one forward matmul of the layer)
        sizes = [part.shape[-1] for part in x]
        if sum(sizes) != self.in_features:
            raise ValueError(f"the input parts have {sizes} features, the layer takes {self.in_features}")
        out, start = None, 0
        for part in x:
            weight = self.weight[:, start : start + part.shape[-1]]
            start += part.shape[-1]
            # in place after the first part: a matmul's backward does not read its output
            part = self._per_expert(part)
            out = th.baddbmm(self.bias, part, weight) if out is None else out.baddbmm_(part, weight)
        assert out is not None
        return out

    def _per_expert(self, x: th.Tensor) -> th.Tensor:
        """:return: ``x`` as ``(E, batch, in)``, a ``(batch, in)`` input expanded (a view) to every expert"""
        return x.unsqueeze(0).expand(self.n_experts, -1, -1) if x.ndim == 2 else x

    def forward_selected(self, x: th.Tensor, index: th.Tensor) -> th.Tensor:
        """
        Apply expert ``index[b]`` to sample ``b`` only (e.g. a per-task output head), as one batched matmul.

        :param x: ``(batch, in)``
        :param index: ``(batch,)`` long expert indices
        :return: ``(batch, out)``
        """
        return th.bmm(x.unsqueeze(1), self.weight[index]).squeeze(1) + self.bias[index, 0]

    def extra_repr(self) -> str:
        return f"n_experts={self.n_experts}, in_features={self.in_features}, out_features={self.out_features}"


class BatchedMLP(nn.Module):
    """
    ``E`` independent MLPs with the same architecture, each layer a :class:`BatchedLinear`.

    :param n_experts: number of experts
    :param in_features: input size
    :param net_arch: hidden sizes
    :param out_features: output size (``None``: the output is the last hidden layer)
    :param activation_fn: activation between layers
    """

    def __init__(
        self,
        n_experts: int,
        in_features: int,
        net_arch: list[int],
        out_features: int | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        sizes = [in_features, *net_arch] + ([out_features] if out_features is not None else [])
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(BatchedLinear(n_experts, n_in, n_out))
            if i < len(sizes) - 2 or out_features is None:
                layers.append(activation_fn())
        self.layers = nn.Sequential(*layers)
        self.n_experts = n_experts
        self.out_features = sizes[-1]

    def forward(self, x: th.Tensor | Sequence[th.Tensor]) -> th.Tensor:
        """
        :param x: ``(E, batch, in)`` or ``(batch, in)``, or the input in such parts (see :meth:`BatchedLinear.forward`)
        :return: ``(E, batch, out)``
        """
        if not isinstance(x, th.Tensor) and len(self.layers) == 0:
            x = th.cat(list(x), dim=-1)
        if isinstance(x, th.Tensor) and x.ndim == 2:
            x = x.unsqueeze(0).expand(self.n_experts, -1, -1)
        return self.layers(x)
