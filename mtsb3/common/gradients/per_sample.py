"""
Per-task gradients of per-task losses: the per-sample engine (one ordinary backward pass) and the batched backward.

This is the only module of mtsb3 that reads autograd internals (graph nodes and their saved tensors); every name it
reads is listed, and tested, in :mod:`mtsb3.common.private_api`.

* :func:`per_sample_task_gradients`: **one ordinary backward pass** of ``sum_t L_t`` that records, at every layer
  holding the parameters (``nn.Linear``, :class:`~mtsb3.common.experts.BatchedLinear`, per-task heads,
  ``nn.Embedding``), the layer input ``x_b`` and output gradient ``delta_b`` of each sample. As each sample's loss
  depends on that sample only, ``delta_b`` is the gradient of the loss of the sample's own task, so task ``t``'s
  weight gradient is ``sum_{b in t} x_b^T delta_b``: one batched matmul over the samples split by the given task
  index, the same cost as the weight gradient of a plain backward.
* :func:`per_task_gradients`: one batched backward pass (``torch.autograd.grad`` with ``is_grads_batched=True`` over
  the rows of the identity), fully general, but each of the ``T`` backward rows costs a full backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch as th

from mtsb3.common.task import TaskGrouping, group_by_task, to_task_blocks


def per_task_gradients(task_losses: th.Tensor, params: Sequence[th.Tensor], retain_graph: bool = False) -> th.Tensor:
    """
    The gradient of each task loss with respect to ``params``, in one batched backward pass.

    ``torch.autograd.grad(task_losses, params, grad_outputs=eye(T), is_grads_batched=True)`` backpropagates the ``T``
    rows of the identity at once (autograd vmaps the backward graph), instead of ``T`` separate backward passes.

    :param task_losses: ``(T,)`` per-task losses
    :param params: parameters (those that no task loss depends on get zero gradients)
    :param retain_graph: keep the graph for another backward
    :return: ``(T, P)`` matrix, row ``t`` the flattened gradient of ``task_losses[t]`` over all ``params``
    """
    n_tasks, params = task_losses.shape[0], list(params)
    eye = th.eye(n_tasks, dtype=task_losses.dtype, device=task_losses.device)
    grads = th.autograd.grad(
        task_losses,
        params,
        grad_outputs=eye,
        is_grads_batched=True,
        retain_graph=retain_graph,
        allow_unused=True,
    )
    # (materialize_grads=True would give unbatched zeros for unused parameters, so fill them in here)
    return th.cat(
        [
            task_losses.new_zeros(n_tasks, p.numel()) if g is None else g.reshape(n_tasks, -1)
            for g, p in zip(grads, params, strict=True)
        ],
        dim=1,
    )


# -- per-sample fast path -----------------------------------------------------------------------------------------------
class _LinearUse(NamedTuple):
    """One use of a linear layer in the graph: ``out = x @ W (+ bias)``."""

    node: Any
    # "rows": AddmmBackward0, x (B, in) whose rows are the batch samples, W.T (in, out) (nn.Linear);
    # "expert_rows": BaddbmmBackward0, x (E, B, in), W (E, in, out) (BatchedLinear on the whole batch);
    # "task_blocks": BaddbmmBackward0, x (E, m, in) with E a multiple of T and block e holding only samples of task
    #     e % T, zero padded (per-task heads, e.g. MTSAC's multi-head); checked like the rest on first use;
    # "embedding": EmbeddingBackward0, indices (B, ...) with rows the batch samples, W (num, dim)
    kind: str
    weight: th.Tensor
    bias: th.Tensor | None
    inputs: th.Tensor  # x (the indices of an embedding), read before the backward pass frees it
    padding_idx: int = -1  # an embedding's row that gets no gradient (-1: none)


def _graph_edges(root: Any) -> dict[Any, list[Any]]:
    """Parents of every node reachable from ``root`` (one entry per edge)."""
    parents: dict[Any, list[Any]] = {root: []}
    stack = [root]
    while stack:
        node = stack.pop()
        for child, _ in node.next_functions:
            if child is None:
                continue
            if child not in parents:
                parents[child] = []
                stack.append(child)
            parents[child].append(node)
    return parents


class _Unsupported(Exception):
    """A parameter is used in a way the per-sample path cannot split by task."""


def _parameter_of(fn: Any, wanted: set[int]) -> th.Tensor | None:
    """The parameter accumulated by graph node ``fn`` if it is one of ``wanted``."""
    variable = getattr(fn, "variable", None)
    return variable if variable is not None and id(variable) in wanted else None


def _embedding_use(node: Any, wanted: set[int], batch_size: int, covered: set[tuple[int, int]]) -> _LinearUse | None:
    weight_fn = node.next_functions[0][0]
    weight = _parameter_of(weight_fn, wanted)
    if weight is None:
        return None
    indices = node._saved_indices
    if indices.shape[0] != batch_size or bool(node._saved_scale_grad_by_freq):
        raise _Unsupported
    covered.add((id(weight_fn), id(node)))
    return _LinearUse(node, "embedding", weight, None, indices, int(node._saved_padding_idx))


def _matmul_use(
    node: Any, parents: dict[Any, list[Any]], wanted: set[int], batch_size: int, n_tasks: int, covered: set[tuple[int, int]]
) -> _LinearUse | None:
    rows = type(node).__name__ == "AddmmBackward0"  # nn.Linear; else BaddbmmBackward0 (BatchedLinear)
    bias_fn, _, weight_fn = (fn for fn, _ in node.next_functions)
    weight_parent = node
    if rows:  # addmm(bias, x, W.t())
        if weight_fn is None or type(weight_fn).__name__ != "TBackward0" or len(parents[weight_fn]) != 1:
            return None
        weight_parent, weight_fn = weight_fn, weight_fn.next_functions[0][0]
    weight = _parameter_of(weight_fn, wanted)
    if weight is None:
        return None
    x = node._saved_mat1 if rows else node._saved_batch1
    kind = "rows" if rows else "expert_rows"
    if not rows and x.shape[1] != batch_size and x.shape[0] % n_tasks == 0:
        kind = "task_blocks"
    if float(node._saved_alpha) != 1.0 or float(node._saved_beta) != 1.0:
        raise _Unsupported
    if kind != "task_blocks" and x.shape[-2] != batch_size:
        raise _Unsupported
    bias = None
    if bias_fn is not None:
        bias = _parameter_of(bias_fn, wanted)
        expected = (weight.shape[0],) if rows else (weight.shape[0], 1, weight.shape[2])
        if bias is None or bias.shape != expected:
            raise _Unsupported
        covered.add((id(bias_fn), id(node)))
    covered.add((id(weight_fn), id(weight_parent)))
    return _LinearUse(node, kind, weight, bias, x)


def _linear_uses(
    parents: dict[Any, list[Any]], params: list[th.Tensor], batch_size: int, n_tasks: int
) -> list[_LinearUse] | None:
    """
    Every use of ``params`` in the graph as the weight or bias of a layer that the per-sample path can split by task,
    or ``None`` if some parameter is used in any other way (then only the batched backward is exact).
    """
    wanted = {id(p) for p in params}
    covered: set[tuple[int, int]] = set()  # (id of AccumulateGrad node, id of its parent) edges explained by a layer
    uses = []
    try:
        for node in parents:
            name = type(node).__name__
            use = None
            if name == "EmbeddingBackward0":  # a task encoder's table (mtrl's task embedding)
                use = _embedding_use(node, wanted, batch_size, covered)
            elif name in ("AddmmBackward0", "BaddbmmBackward0"):
                use = _matmul_use(node, parents, wanted, batch_size, n_tasks, covered)
            if use is not None:
                uses.append(use)
    except _Unsupported:
        return None
    # every edge into a wanted parameter must be one of these layer slots
    for node, node_parents in parents.items():
        if _parameter_of(node, wanted) is not None:
            if any((id(node), id(parent)) not in covered for parent in node_parents):
                return None
    return uses


def _layer_task_gradients(
    use: _LinearUse, delta: th.Tensor, grouping: TaskGrouping, n_tasks: int
) -> tuple[th.Tensor, th.Tensor | None]:
    """Per-task gradients ``(T, *weight.shape)`` and ``(T, *bias.shape)`` of one layer use: ``sum_{b in t} x_b^T delta_b``."""
    if use.kind == "embedding":  # row idx_b of the table gets delta_b, in the table of the sample's task
        n_per_sample = use.inputs[0].numel()
        indices = use.inputs.reshape(-1)
        rows = delta.reshape(indices.shape[0], -1)
        if use.padding_idx >= 0:
            rows = rows * (indices != use.padding_idx).unsqueeze(1).to(rows.dtype)
        weight = use.weight.new_zeros(n_tasks, *use.weight.shape)
        weight.index_put_((grouping.task.repeat_interleave(n_per_sample), indices), rows, accumulate=True)
        return weight, None
    if use.kind == "task_blocks":  # block e only holds samples of task e % T: its gradient belongs to that task
        n_blocks = use.inputs.shape[0]
        weight = use.weight.new_zeros(n_tasks, *use.weight.shape)
        owner, blocks = th.arange(n_blocks, device=weight.device) % n_tasks, th.arange(n_blocks, device=weight.device)
        weight[owner, blocks] = th.bmm(use.inputs.transpose(1, 2), delta)
        if use.bias is None:
            return weight, None
        bias = use.weight.new_zeros(n_tasks, *use.bias.shape)
        bias[owner, blocks] = delta.sum(dim=1, keepdim=True)
        return weight, bias
    if use.kind == "rows":  # x (B, in), delta (B, out), weight (out, in)
        x = to_task_blocks(use.inputs, grouping, n_tasks)
        d = to_task_blocks(delta, grouping, n_tasks)
        weight = th.bmm(d.transpose(1, 2), x)
        return weight, None if use.bias is None else d.sum(dim=1)
    # x (E, B, in), delta (E, B, out), weight (E, in, out), bias (E, 1, out)
    x = to_task_blocks(use.inputs.transpose(0, 1), grouping, n_tasks)  # (T, m, E, in)
    d = to_task_blocks(delta.transpose(0, 1), grouping, n_tasks)  # (T, m, E, out)
    n_experts = x.shape[2]
    x = x.permute(0, 2, 3, 1).reshape(n_tasks * n_experts, x.shape[3], grouping.n_slots)
    d_flat = d.permute(0, 2, 1, 3).reshape(n_tasks * n_experts, grouping.n_slots, d.shape[3])
    weight = th.bmm(x, d_flat).view(n_tasks, *use.weight.shape)
    return weight, None if use.bias is None else d.sum(dim=1).unsqueeze(2)


def per_sample_task_gradients(
    task_losses: th.Tensor, params: Sequence[th.Tensor], task_idx: th.Tensor, retain_graph: bool = False
) -> th.Tensor | None:
    """
    The per-task gradients (as :func:`per_task_gradients`) from one ordinary backward pass, when the graph allows it.

    ``task_losses`` must come from :func:`~mtsb3.common.task.per_task_mean` of per-sample losses, and every parameter
    must be used only as the weight or bias of linear layers (``nn.Linear``, ``BatchedLinear``) applied to the batch
    rows, as an ``nn.Embedding`` table looked up once per sample (a task encoder), or in per-task heads: a
    ``BatchedLinear`` on a ``(k T, m, in)`` block whose block ``e`` holds samples of task ``e % T`` only (MTSAC's
    ``multi_head``). The result is exact when no layer mixes samples (no batch normalisation) and the blocks are really
    per task, which this function cannot see: :class:`GradCombiner` checks it once per parameter list.

    :param task_losses: ``(T,)`` per-task losses from ``per_task_mean``
    :param params: parameters
    :param task_idx: ``(batch,)`` task index of each sample, the one given to ``per_task_mean``
    :param retain_graph: keep the graph for another backward
    :return: ``(T, P)`` per-task gradients, or ``None`` when the graph is not of that form
    """
    params = list(params)
    if task_losses.grad_fn is None:
        return None
    parents = _graph_edges(task_losses.grad_fn)
    uses = _linear_uses(parents, params, task_idx.shape[0], task_losses.shape[0])
    if not uses:
        return None
    n_tasks = task_losses.shape[0]
    deltas: list[th.Tensor | None] = [None] * len(uses)

    def recorder(i: int) -> Callable[[Any, Any], None]:
        def hook(grad_inputs: Any, grad_outputs: Any) -> None:
            deltas[i] = grad_outputs[0]

        return hook

    handles = [use.node.register_hook(recorder(i)) for i, use in enumerate(uses)]
    try:
        # differentiate w.r.t. the biases only (cheap): the engine still runs every layer node and records its delta,
        # but skips the full weight gradients, which are recomputed per task below
        inputs = list({id(t): t for t in (use.bias if use.bias is not None else use.weight for use in uses)}.values())
        th.autograd.grad(task_losses, inputs, grad_outputs=th.ones_like(task_losses), retain_graph=retain_graph)
    finally:
        for handle in handles:
            handle.remove()
    grouping = group_by_task(task_idx, n_tasks)
    grads: dict[int, th.Tensor] = {}
    with th.no_grad():  # (the saved layer inputs are part of the graph)
        for use, delta in zip(uses, deltas, strict=True):
            assert delta is not None
            weight_grad, bias_grad = _layer_task_gradients(use, delta, grouping, n_tasks)
            for param, grad in ((use.weight, weight_grad), (use.bias, bias_grad)):
                if param is not None and grad is not None:
                    grads[id(param)] = grads[id(param)] + grad if id(param) in grads else grad
    return th.cat(
        [grads[id(p)].reshape(n_tasks, -1) if id(p) in grads else task_losses.new_zeros(n_tasks, p.numel()) for p in params],
        dim=1,
    )
