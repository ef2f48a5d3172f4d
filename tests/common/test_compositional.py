"""PaCo's compositional layers: theta_tau = Phi w_tau, gradients to Phi and w, w-reset, and the K checks."""

from __future__ import annotations

import pytest
import torch as th
from torch import nn

from mtsb3.common.compositional import CompositionalTaskHeads
from mtsb3.recipes import paco

th.set_num_threads(1)

N_TASKS, IN, HIDDEN, OUT, K, GROUPS = 3, 5, 7, 2, 4, 2


def _heads(n_groups: int = GROUPS) -> CompositionalTaskHeads:
    th.manual_seed(0)
    return CompositionalTaskHeads(N_TASKS, IN, [HIDDEN], OUT, nn.Tanh, n_groups=n_groups, n_param_sets=K)


def _explicit_network(heads: CompositionalTaskHeads, group: int, task: int) -> nn.Sequential:
    """Task ``task``'s network of group ``group`` as plain nn.Linear layers with weights ``sum_k w[k] Phi_k``."""
    w = heads.task_vectors[group, task]
    linears = []
    for layer in heads.layers:
        linear = nn.Linear(layer.in_features, layer.out_features)
        with th.no_grad():
            linear.weight.copy_(sum(w[k] * layer.weight[group, k] for k in range(K)).T)
            linear.bias.copy_(sum(w[k] * layer.bias[group, k] for k in range(K)))
        linears.append(linear)
    return nn.Sequential(linears[0], nn.Tanh(), linears[1])


def test_composed_network_is_the_explicit_per_task_network():
    heads = _heads()
    x = th.randn(GROUPS, 11, IN)
    task = th.tensor([0, 2, 1, 1, 0, 2, 2, 2, 0, 1, 2])  # unbalanced: the task blocks are padded
    out = heads(x, task)
    assert out.shape == (GROUPS, 11, OUT)
    for group in range(GROUPS):
        for tau in range(N_TASKS):
            rows = task == tau
            expected = _explicit_network(heads, group, tau)(x[group, rows])
            th.testing.assert_close(out[group, rows], expected, rtol=1e-5, atol=1e-6)
    # one group: (batch, in) -> (batch, out)
    single = _heads(n_groups=1)
    x1 = th.randn(6, IN)
    task1 = th.tensor([2, 0, 1, 2, 2, 0])
    expected = th.cat([_explicit_network(single, 0, int(t))(x1[i : i + 1]) for i, t in enumerate(task1)])
    th.testing.assert_close(single(x1, task1), expected, rtol=1e-5, atol=1e-6)


def test_gradients_reach_phi_and_only_the_batch_tasks_vectors():
    heads = _heads()
    task = th.tensor([0, 2, 2, 0])  # task 1 is not in the batch
    heads(th.randn(GROUPS, 4, IN), task).pow(2).sum().backward()
    for layer in heads.layers:
        for param in (layer.weight, layer.bias):
            assert param.grad is not None
            assert param.grad.flatten(2).abs().sum(-1).min() > 0  # every set phi_k of every group
    grad = heads.task_vectors.grad
    assert grad is not None
    assert grad[:, [0, 2]].abs().min() > 0
    assert th.equal(grad[:, 1], th.zeros(GROUPS, K))  # w_tau is moved by its own task's loss only


def test_task_vectors_start_with_the_variance_of_one_nn_linear():
    heads = CompositionalTaskHeads(50, 4, [], 1, n_groups=4, n_param_sets=5)
    # w ~ N(0, 1/K): E||w_tau||^2 = 1, so that a composed weight has nn.Linear's variance
    assert heads.task_vectors.pow(2).sum(-1).mean().item() == pytest.approx(1.0, abs=0.15)


def test_reset_task_vectors_replaces_exactly_the_reset_tasks():
    heads = _heads()
    before = heads.task_vectors.detach().clone()
    reset = th.tensor([False, True, False])
    coefficients = th.tensor([[0.0, 0.0, 0.0], [0.25, 0.0, 0.75], [0.0, 0.0, 0.0]])
    heads.reset_task_vectors(reset, coefficients)
    after = heads.task_vectors.detach()
    assert th.equal(after[:, [0, 2]], before[:, [0, 2]])
    th.testing.assert_close(after[:, 1], 0.25 * before[:, 0] + 0.75 * before[:, 2])


@pytest.mark.parametrize("bad", [0, -1, 2.5, "5", None])
def test_bad_parameter_set_size_is_a_clear_error(bad):
    message = rf"n_param_sets \(K, the size of PaCo's parameter set\) must be an integer >= 1, got {bad!r}"
    with pytest.raises(ValueError, match=message):
        CompositionalTaskHeads(N_TASKS, IN, [HIDDEN], OUT, n_param_sets=bad)
    with pytest.raises(ValueError, match=message):
        paco(n_param_sets=bad)
