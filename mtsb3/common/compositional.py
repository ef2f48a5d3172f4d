"""
Parameter-compositional layers of PaCo (Sun, Zhang, Xu, Tomizuka, "PaCo: Parameter-Compositional Multi-Task
Reinforcement Learning", NeurIPS 2022, https://arxiv.org/abs/2210.11653, section 3): a shared parameter set
``Phi = [phi_1, ..., phi_K]`` of ``K`` full copies of a network's parameters, and one learned task vector
``w_tau in R^K`` per task; task ``tau`` runs the network with the parameters ``theta_tau = Phi w_tau``.

:class:`CompositionalTaskHeads` is a drop-in for :class:`~mtsb3.mtsac.conditioning.TaskHeads` (the per-task networks
of the multi-head and disjoint policies, ``policy_kwargs=dict(task_heads_class=CompositionalTaskHeads)``): the same
``forward(x, task)``, but every task's network is composed from the shared ``Phi`` instead of owning its parameters.
:func:`mtsb3.recipes.paco` builds the whole actor and each Q-network this way.

**How it is computed.** ALF's ``CompositionalFC`` (alf/layers.py; TToTMooN/paco-mtrl) and metaworld-algorithms' JAX
``PaCoNetwork`` run each of the ``K`` layers on every sample and mix the ``K`` outputs with the sample's ``w``:
``K·B·in·out`` multiply-adds per layer. Here the ``T`` task weight matrices are composed once per forward
(``einsum`` of the ``(T, K)`` task vectors with ``(K, in, out)``: ``T·K·in·out``), then each sample goes through
its own task's matrix on the task blocks of the batch (:func:`~mtsb3.common.task.to_task_blocks`, one ``baddbmm``:
``B·in·out`` with a task-balanced batch). At MT10 sizes (``B`` = 1280, ``T`` = 10, ``K`` = 5, 400 x 400) that is
8M + 205M multiply-adds per layer instead of 1.02G: about ``K`` times cheaper, for the same function (both are
linear in ``w``). Gradients reach ``Phi`` and ``w`` through the ``einsum``.
"""

from __future__ import annotations

import itertools
import math

import torch as th
from torch import nn

from mtgym.core import check_count
from mtsb3.common.task import TaskBatch, apply_by_task


class CompositionalLinear(nn.Module):
    """
    The parameter set ``Phi`` of one linear layer: ``K`` weight matrices and biases per group (e.g. per Q-network),
    composed into one layer per task by :meth:`compose`.

    Each of the ``K`` sets is initialised independently like ``nn.Linear`` (as metaworld-algorithms' PaCo, whose
    ``K`` dense layers split the parameter RNG).

    :param n_param_sets: ``K``
    :param in_features: input size
    :param out_features: output size
    :param n_groups: number of independent parameter sets ``G`` (one per Q-network of a fused twin critic)
    """

    def __init__(self, n_param_sets: int, in_features: int, out_features: int, n_groups: int = 1):
        super().__init__()
        self.n_param_sets, self.n_groups = n_param_sets, n_groups
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(th.empty(n_groups, n_param_sets, in_features, out_features))
        self.bias = nn.Parameter(th.empty(n_groups, n_param_sets, out_features))
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's (and BatchedLinear's) uniform bound
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def compose(self, task_vectors: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        ``theta_tau = Phi w_tau`` for every group and task (PaCo, section 3, eq. 1).

        :param task_vectors: ``(G, T, K)``
        :return: the weights ``(G, T, in, out)`` and biases ``(G, T, out)`` of every task
        """
        weight = th.einsum("gtk,gkio->gtio", task_vectors, self.weight)
        bias = th.einsum("gtk,gko->gto", task_vectors, self.bias)
        return weight, bias

    def extra_repr(self) -> str:
        return (
            f"n_param_sets={self.n_param_sets}, in_features={self.in_features}, out_features={self.out_features}, "
            f"n_groups={self.n_groups}"
        )


class CompositionalTaskHeads(nn.Module):
    """
    One MLP per task (and per group) whose parameters are composed from a shared parameter set: PaCo's network
    (Sun et al. 2022, section 3). Same interface as :class:`~mtsb3.mtsac.conditioning.TaskHeads`.

    ``task_vectors`` holds ``w``, ``(G, T, K)``, one vector per task shared by every layer of the network, as in the
    paper (``theta_tau = Phi w_tau`` for the whole parameter vector). It is drawn from ``N(0, 1/K)``, so that a
    composed weight has, in expectation, the variance of one ``nn.Linear`` initialisation
    (``E||w_tau||^2 = 1``), and different tasks start from different points of the same subspace.

    :param n_tasks: number of tasks ``T``
    :param in_features: input size
    :param net_arch: hidden sizes (``[]``: one linear layer per task)
    :param out_features: output size
    :param activation_fn: activation between layers
    :param n_groups: number of independent networks ``G`` that read a ``(G, batch, in)`` input (twin critics), each
        with its own ``Phi`` and ``w``
    :param n_param_sets: ``K``, the size of the parameter set (PaCo on Meta-World MT10: 5, paco-mtrl's
        paco/examples/metaworld_mt10_paco_conf.py, ``num_of_param_set``)
    :raises ValueError: if ``n_param_sets`` is not an integer >= 1
    """

    def __init__(
        self,
        n_tasks: int,
        in_features: int,
        net_arch: list[int],
        out_features: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        n_groups: int = 1,
        n_param_sets: int = 5,
    ):
        super().__init__()
        n_param_sets = check_count(n_param_sets, "n_param_sets (K, the size of PaCo's parameter set)")
        self.n_tasks, self.n_groups, self.n_param_sets, self.out_features = n_tasks, n_groups, n_param_sets, out_features
        sizes = [in_features, *net_arch, out_features]
        self.layers = nn.ModuleList(
            CompositionalLinear(n_param_sets, n_in, n_out, n_groups) for n_in, n_out in itertools.pairwise(sizes)
        )
        self.activation = activation_fn()
        self.task_vectors = nn.Parameter(th.randn(n_groups, n_tasks, n_param_sets) / math.sqrt(n_param_sets))

    def composed(self) -> list[tuple[th.Tensor, th.Tensor]]:
        """:return: per layer, the composed weights ``(G, T, in, out)`` and biases ``(G, T, out)`` of every task."""
        return [layer.compose(self.task_vectors) for layer in self.layers]

    def forward(self, x: th.Tensor, task: TaskBatch | th.Tensor) -> th.Tensor:
        """
        :param x: ``(batch, in)`` (one group) or ``(n_groups, batch, in)``
        :param task: the task of each sample, a :class:`~mtsb3.common.task.TaskBatch` (whose routing is shared with
            the other networks of the step) or ``(batch,)`` long task indices
        :return: ``(batch, out)`` or ``(n_groups, batch, out)``, matching ``x``
        """
        return apply_by_task(x, task, self.n_tasks, self.n_groups, self._forward_blocks)

    def _forward_blocks(self, h: th.Tensor) -> th.Tensor:
        """``(G * T, slots, in)`` -> ``(G * T, slots, out)``: each block through its task's composed layers."""
        groups_tasks = self.n_groups * self.n_tasks
        for i, (weight, bias) in enumerate(self.composed()):
            h = th.baddbmm(bias.reshape(groups_tasks, 1, -1), h, weight.reshape(groups_tasks, *weight.shape[2:]))
            if i < len(self.layers) - 1:
                h = self.activation(h)
        return h

    @th.no_grad()
    def reset_task_vectors(self, reset: th.Tensor, coefficients: th.Tensor) -> None:
        """
        PaCo's w-reset (section 3.3): replace the task vectors of the ``reset`` tasks by combinations of the others',
        ``w_tau <- sum_j coefficients[tau, j] w_j``, in every group; the other tasks' vectors are kept. No host sync.

        :param reset: ``(T,)`` bool, the tasks to reset
        :param coefficients: ``(T, T)``, row ``tau`` the combination for task ``tau`` (only the rows of ``reset`` are used)
        """
        combined = th.einsum("st,gtk->gsk", coefficients.to(self.task_vectors.dtype), self.task_vectors)
        self.task_vectors.copy_(th.where(reset.view(1, -1, 1), combined, self.task_vectors))

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}, n_groups={self.n_groups}, n_param_sets={self.n_param_sets}"
