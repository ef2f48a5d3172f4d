"""
Categorical value functions: a Q-network that outputs logits over fixed return atoms and is trained by cross-entropy
(C51, Bellemare et al. 2017, https://arxiv.org/abs/1707.06887, algorithm 1; the BRC critic, Nauman et al. 2025,
https://arxiv.org/abs/2505.23150, section 3, and naumix/BiggerRegularizedCategorical, jaxrl/agent/update.py,
``update_critic``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch as th
from torch import nn

#: the critic types of :class:`~mtsb3.mtsac.policies.MTSACPolicy`
CRITIC_TYPES = ("regression", "categorical")


class CategoricalSupport(nn.Module):
    """
    The fixed support ``z_i = v_min + i · (v_max - v_min) / (n_atoms - 1)`` of a categorical critic, and the maps
    between logits, distributions and values on it. BRC: 101 atoms on ``[-10, 10]``.

    :param n_atoms: number of atoms (at least 2)
    :param v_min: the smallest representable value
    :param v_max: the largest representable value
    """

    def __init__(self, n_atoms: int = 101, v_min: float = -10.0, v_max: float = 10.0):
        super().__init__()
        if isinstance(n_atoms, bool) or not isinstance(n_atoms, int) or n_atoms < 2:
            raise ValueError(f"n_atoms must be an int >= 2, got {n_atoms!r}")
        if not float(v_min) < float(v_max):
            raise ValueError(f"The support needs v_min < v_max, got v_min={v_min}, v_max={v_max}")
        self.n_atoms, self.v_min, self.v_max = n_atoms, float(v_min), float(v_max)
        self.delta = (self.v_max - self.v_min) / (n_atoms - 1)
        # derived from the arguments: not in the state dict
        self.register_buffer("atoms", th.linspace(self.v_min, self.v_max, n_atoms), persistent=False)

    def expectation(self, logits: th.Tensor) -> th.Tensor:
        """:param logits: ``(..., n_atoms)``; :return: the expected value ``(..., 1)`` of ``softmax(logits)``."""
        return th.softmax(logits, dim=-1) @ self.atoms.unsqueeze(-1)

    def project(self, values: th.Tensor, probs: th.Tensor) -> th.Tensor:
        """
        Project a distribution with mass ``probs[b, j]`` at ``values[b, j]`` onto the support: each value is clipped into
        ``[v_min, v_max]`` and its mass split between its two neighbouring atoms in proportion to closeness (C51's
        projection, Bellemare et al. 2017, algorithm 1; BRC's ``update_critic``). The mean is kept exactly for values
        inside the support.

        :param values: ``(batch, m)`` the locations (e.g. the Bellman-updated atoms ``r + gamma (1 - d) (z - alpha log pi)``)
        :param probs: ``(batch, m)`` their probabilities
        :return: ``(batch, n_atoms)`` the projected distribution
        """
        position = ((values.clamp(self.v_min, self.v_max) - self.v_min) / self.delta).clamp(0, self.n_atoms - 1)
        lower, upper = position.floor(), position.ceil()
        upper_weight = position - lower  # 0 where the value sits on an atom (lower == upper): all mass to lower
        projected = th.zeros(*values.shape[:-1], self.n_atoms, dtype=probs.dtype, device=probs.device)
        projected.scatter_add_(-1, lower.long(), probs * (1.0 - upper_weight))
        return projected.scatter_add_(-1, upper.long(), probs * upper_weight)

    def two_hot(self, values: th.Tensor) -> th.Tensor:
        """:param values: ``(batch,)`` scalars; :return: ``(batch, n_atoms)`` their two-hot encodings on the support."""
        values = values.reshape(-1, 1)
        return self.project(values, th.ones_like(values))

    def extra_repr(self) -> str:
        return f"n_atoms={self.n_atoms}, v_min={self.v_min}, v_max={self.v_max}"


def make_support(critic_type: str, categorical_kwargs: Mapping[str, Any] | None = None) -> CategoricalSupport | None:
    """
    :param critic_type: ``"regression"`` (a scalar Q-value, SB3) or ``"categorical"`` (logits over a support)
    :param categorical_kwargs: the kwargs of :class:`CategoricalSupport` (``n_atoms``, ``v_min``, ``v_max``)
    :return: the support of a categorical critic, else ``None``
    :raises ValueError: for an unknown critic type, or ``categorical_kwargs`` without ``critic_type="categorical"``
    """
    if critic_type not in CRITIC_TYPES:
        raise ValueError(f"Unknown critic_type {critic_type!r}; choose one of {list(CRITIC_TYPES)}")
    if critic_type != "categorical":
        if categorical_kwargs:
            raise ValueError(f"categorical_kwargs={dict(categorical_kwargs)!r} needs critic_type='categorical'")
        return None
    return CategoricalSupport(**dict(categorical_kwargs or {}))


def cross_entropy(logits: th.Tensor, target: th.Tensor) -> th.Tensor:
    """:return: ``-sum_i target_i · log softmax(logits)_i`` over the last dimension."""
    return -(target * th.log_softmax(logits, dim=-1)).sum(dim=-1)
