"""
Gradient combiners: methods that turn per-task losses into one update of shared parameters.

A combiner is selected by name (``grad_method="pcgrad" | "gradnorm" | "cagrad" | None``) and built with
:func:`make_grad_combiner`. On each update the algorithm averages its per-sample loss within each task
(:func:`mtsb3.common.task.per_task_mean`) and calls ``combiner.backward(task_losses, params, task_present)``, which
leaves the combined gradient in every ``p.grad``; the algorithm then calls ``optimizer.step()`` as usual.

Per-task gradients never take a loop of ``T`` backward passes. Two exact ways are built in:

* :func:`per_sample_task_gradients` (the default when it applies): **one ordinary backward pass** of ``sum_t L_t``
  that records, at every layer holding the parameters (``nn.Linear``, :class:`~mtsb3.common.experts.BatchedLinear`,
  per-task heads, ``nn.Embedding``), the layer input ``x_b`` and output gradient ``delta_b`` of each sample. As each
  sample's loss depends on that sample only, ``delta_b`` is the gradient of the loss of the sample's own task, so task
  ``t``'s weight gradient is ``sum_{b in t} x_b^T delta_b``: one batched matmul over the samples split by task, the
  same cost as the weight gradient of a plain backward. It reads the task index from the graph of
  :func:`~mtsb3.common.task.per_task_mean` and the layer inputs from autograd's saved tensors. It applies when every
  parameter is used only in such layers; the first call for a parameter list also checks it against an ordinary
  backward of ``sum_t v_t L_t`` (it fails e.g. with batch normalisation, which mixes samples) and falls back for good
  if they differ.
* :func:`per_task_gradients`: one batched backward pass (``torch.autograd.grad`` with ``is_grads_batched=True`` over the
  rows of the identity), fully general, but each of the ``T`` backward rows costs a full backward pass.

PCGrad and CAGrad then work in the ``T x T`` Gram matrix of the task gradients: every direction
they produce is a linear combination ``beta @ G`` of the task gradients ``G`` (shape ``(T, P)``), so the surgery
costs one ``(T, P) x (P, T)`` product, a few ``T x T`` operations, and one ``(T,) x (T, P)`` product.

**Tasks missing from a batch.** ``task_present[t] = False`` (no sample of task ``t`` in the batch) excludes task ``t``
from the surgery: its gradient is treated as absent (not as a zero vector that "agrees" with everyone), means are
taken over the present tasks only, and GradNorm takes no step on its weight (only the common renormalisation to sum
to ``T``) and does not record its initial loss.

Add your own method with :func:`register_grad_method`; it is then available by name everywhere
(``MTSAC(..., grad_method="sum")``, the rl-zoo YAML files):

.. code-block:: python

    import torch as th
    from mtsb3.common.gradients import GradCombiner, register_grad_method

    @register_grad_method("sum")
    class SumOfTaskGradients(GradCombiner):
        \"\"\"Plain sum of the task gradients (no surgery).\"\"\"

        def combine(self, grads: th.Tensor, task_present: th.Tensor) -> tuple[th.Tensor, dict[str, float]]:
            return grads[task_present].sum(dim=0), {}

A subclass either implements :meth:`GradCombiner.combine` (it receives the ``(T, P)`` per-task gradient matrix) or
overrides :meth:`GradCombiner.backward` altogether (as :class:`GradNorm` does) and calls
:meth:`GradCombiner.task_gradients`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch as th
from torch import nn

from mtsb3.common.task import TaskGrouping, group_by_task, to_task_blocks

_EPS = 1e-8

GRAD_METHODS: dict[str, type[GradCombiner]] = {}
"""Registered gradient combiners, by name."""

_C = TypeVar("_C", bound="type[GradCombiner]")


def register_grad_method(name: str) -> Callable[[_C], _C]:
    """
    Class decorator: register a :class:`GradCombiner` subclass under ``name`` (see the module docstring).

    :param name: the ``grad_method`` string that selects it
    :raises ValueError: if ``name`` is already registered to another class
    """

    def decorator(cls: _C) -> _C:
        if not (isinstance(cls, type) and issubclass(cls, GradCombiner)):
            raise TypeError(f"register_grad_method({name!r}) expects a GradCombiner subclass, got {cls!r}")
        if name in GRAD_METHODS and GRAD_METHODS[name] is not cls:
            raise ValueError(f"grad_method {name!r} is already registered to {GRAD_METHODS[name].__name__}")
        GRAD_METHODS[name] = cls
        return cls

    return decorator


def make_grad_combiner(name: str | None, n_tasks: int, seed: int | None = None, **kwargs: Any) -> GradCombiner | None:
    """
    :param name: a registered method name (``"pcgrad"``, ``"gradnorm"``, ``"cagrad"``, or your own), or ``None``
    :param n_tasks: number of tasks ``T``
    :param seed: seed of the combiner's random generator (PCGrad's task order); use the algorithm's seed
    :param kwargs: method parameters (e.g. ``alpha`` for GradNorm, ``c`` for CAGrad)
    :return: the combiner, or ``None`` when ``name`` is ``None`` (plain mean-loss backward)
    :raises ValueError: for an unknown name, listing the registered ones
    """
    if name is None:
        return None
    if name not in GRAD_METHODS:
        raise ValueError(f"Unknown grad_method {name!r}; registered methods: {sorted(GRAD_METHODS)} (or None)")
    return GRAD_METHODS[name](n_tasks=n_tasks, seed=seed, **kwargs)


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


def _task_index_of(task_losses: th.Tensor) -> th.Tensor | None:
    """The per-sample task index saved in the graph of :func:`mtsb3.common.task.per_task_mean` (``sums / counts``)."""
    node = task_losses.grad_fn
    if node is None or type(node).__name__ != "DivBackward0":
        return None
    for child, _ in node.next_functions:
        if child is not None and type(child).__name__ == "IndexAddBackward0" and int(child._saved_dim) == 0:
            return child._saved_index
    return None


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
    task_losses: th.Tensor, params: Sequence[th.Tensor], retain_graph: bool = False
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
    :param retain_graph: keep the graph for another backward
    :return: ``(T, P)`` per-task gradients, or ``None`` when the graph is not of that form
    """
    params = list(params)
    task_idx = _task_index_of(task_losses)
    if task_idx is None:
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


def assign_flat_grad(params: Sequence[th.Tensor], flat_grad: th.Tensor) -> None:
    """Write ``flat_grad`` (``(P,)``, the concatenation of all parameters) into ``p.grad``, replacing what was there."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat_grad[offset : offset + n].view_as(p).clone()
        offset += n
    assert offset == flat_grad.numel(), "flat gradient size does not match the parameters"


class GradCombiner(nn.Module):
    """
    Base class of gradient combiners.

    The default :meth:`backward` computes the ``(T, P)`` per-task gradients (:meth:`task_gradients`), calls
    :meth:`combine`, and writes the result into ``p.grad``.

    A combiner is an ``nn.Module`` only so that SB3 checkpoints it like the networks: :meth:`state_dict` /
    :meth:`load_state_dict` hold its RNG state and any learned state (GradNorm's task weights), so a resumed run
    continues the same way.

    :param n_tasks: number of tasks ``T``
    :param seed: seed of the combiner's random generator
    :param per_sample: use :func:`per_sample_task_gradients` where it applies (checked once per parameter list),
        else :func:`per_task_gradients`; ``False``: always the batched backward
    """

    def __init__(self, n_tasks: int, seed: int | None = None, per_sample: bool = True):
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
        self.n_tasks = n_tasks
        self.rng = np.random.default_rng(seed)
        self.per_sample = per_sample
        # per parameter list: True (the per-sample path is exact there), False (it is not, or does not apply)
        self._per_sample_ok: dict[tuple[int, ...], bool] = {}

    def _check_inputs(
        self, task_losses: th.Tensor, params: Sequence[th.Tensor], task_present: th.Tensor | None
    ) -> tuple[list[th.Tensor], th.Tensor]:
        """
        Validate the arguments of :meth:`backward`.

        :return: the parameters that require a gradient and the ``(T,)`` bool mask of the tasks present
        :raises ValueError: on a wrong ``task_losses`` or ``task_present`` shape, or when no task is present
        """
        if task_losses.shape != (self.n_tasks,):
            raise ValueError(f"task_losses must have shape ({self.n_tasks},), got {tuple(task_losses.shape)}")
        params = [p for p in params if p.requires_grad]  # (a frozen parameter keeps no gradient)
        if task_present is None:
            present = th.ones(task_losses.shape[0], dtype=th.bool, device=task_losses.device)
        elif task_present.shape != task_losses.shape:
            raise ValueError(f"task_present has shape {tuple(task_present.shape)}, expected {tuple(task_losses.shape)}")
        else:
            present = task_present.to(dtype=th.bool, device=task_losses.device)
        if not bool(present.any()):
            raise ValueError("no task is present in the batch")
        return params, present

    def task_gradients(self, task_losses: th.Tensor, params: list[th.Tensor], retain_graph: bool = False) -> th.Tensor:
        """
        :return: the ``(T, P)`` per-task gradients, by the per-sample path where it is exact, else the batched backward
        """
        grads = self.per_sample_gradients(task_losses, params, retain_graph)
        return per_task_gradients(task_losses, params, retain_graph=retain_graph) if grads is None else grads

    def per_sample_gradients(
        self, task_losses: th.Tensor, params: list[th.Tensor], retain_graph: bool = False
    ) -> th.Tensor | None:
        """
        :return: the ``(T, P)`` per-task gradients by :func:`per_sample_task_gradients` if it is enabled, applies, and
            passed its check on the first use of ``params``; else ``None`` (the graph is then kept)
        """
        key = tuple(id(p) for p in params)
        known = self._per_sample_ok.get(key)
        if self.per_sample and known is not False:
            grads = per_sample_task_gradients(task_losses, params, retain_graph=retain_graph or not known)
            if grads is not None and known:
                return grads
            if grads is not None:
                # first use: check sum_t v_t g_t against an ordinary backward (distinct v_t catch a wrong attribution of
                # samples to tasks, and a layer that mixes samples)
                v = th.arange(1, self.n_tasks + 1, dtype=task_losses.dtype, device=task_losses.device)
                reference = th.autograd.grad((v * task_losses).sum(), params, retain_graph=True, allow_unused=True)
                flat = th.cat(
                    [p.new_zeros(p.numel()) if g is None else g.reshape(-1) for g, p in zip(reference, params, strict=True)]
                )
                ok = bool(th.allclose(v @ grads, flat, rtol=1e-3, atol=1e-5 * float(flat.abs().max()) + 1e-12))
                self._per_sample_ok[key] = ok
                if ok:
                    return grads
                warnings.warn(
                    "The per-sample per-task gradients do not match an ordinary backward pass for these parameters "
                    "(a layer mixes samples?); using the batched backward pass from now on",
                    RuntimeWarning,
                )
            else:
                self._per_sample_ok[key] = False
        return None

    def backward(
        self, task_losses: th.Tensor, params: Sequence[th.Tensor], task_present: th.Tensor | None = None
    ) -> dict[str, float]:
        """
        Compute the combined gradient and store it in ``p.grad`` for every ``p`` in ``params``.

        :param task_losses: ``(T,)`` per-task mean losses (from :func:`mtsb3.common.task.per_task_mean`)
        :param params: the parameters to update (e.g. ``optimizer.param_groups``' parameters)
        :param task_present: ``(T,)`` bool, which tasks have samples in the batch; ``None``: all
        :return: scalars to log
        """
        params, present = self._check_inputs(task_losses, params, task_present)
        grads = self.task_gradients(task_losses, params)
        # A missing task's loss is a constant 0, so its row is exactly zero; masking keeps that true for any caller.
        grads = grads * present.unsqueeze(1).to(grads.dtype)
        combined, info = self.combine(grads, present)
        assign_flat_grad(params, combined)
        return info

    def combine(self, grads: th.Tensor, task_present: th.Tensor) -> tuple[th.Tensor, dict[str, float]]:
        """
        :param grads: ``(T, P)`` per-task gradients (rows of missing tasks are zero)
        :param task_present: ``(T,)`` bool mask of the tasks present in the batch
        :return: the ``(P,)`` combined gradient and scalars to log
        """
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """:return: the combiner's state (its RNG state; subclasses add learned state), for checkpoints."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:  # type: ignore[override]
        """Restore a state from :meth:`state_dict` (``strict`` is accepted for SB3's ``set_parameters``)."""
        self.rng.bit_generator.state = state["rng"]


def _gram(grads: th.Tensor) -> np.ndarray:
    """``G @ G.T`` as a float64 numpy array (the ``T x T`` surgery runs on it in numpy: microseconds per op)."""
    return (grads @ grads.T).double().cpu().numpy()


def _conflict_fraction(gram: np.ndarray, present: np.ndarray) -> float:
    """Fraction of pairs of present tasks whose gradients conflict (negative dot product)."""
    sub = gram[np.ix_(present, present)]
    n = sub.shape[0]
    if n < 2:
        return 0.0
    upper = sub[np.triu_indices(n, k=1)]
    return float((upper < 0).mean())


def pcgrad_orders(n_tasks: int, rng: np.random.Generator) -> np.ndarray:
    """
    The random projection orders of PCGrad: row ``t`` is a random permutation of the tasks other than ``t``.

    :return: ``(T, T-1)`` int array
    """
    keys = rng.random((n_tasks, n_tasks))
    np.fill_diagonal(keys, 2.0)  # sorts each task itself last, out of the first T-1 columns
    return np.argsort(keys, axis=1)[:, : n_tasks - 1]


def pcgrad_coefficients(gram: np.ndarray, present: np.ndarray, orders: np.ndarray, reduction: str = "mean") -> np.ndarray:
    """
    PCGrad in the coefficient space of the task gradients.

    Every projected gradient stays a linear combination ``g'_t = sum_m C[t, m] g_m`` of the original ones, and
    ``g'_t . g_j = (C @ K)[t, j]`` with the Gram matrix ``K``, so the sequential projections (spec §B9, step 4) run on
    ``T x T`` arrays only: in round ``k`` every task ``t`` is projected (all at once) off the *original* normalised
    gradient of task ``orders[t, k]`` if they conflict.

    :param gram: ``(T, T)`` Gram matrix ``G @ G.T``
    :param present: ``(T,)`` bool mask; missing tasks neither project nor are projected off, nor count in the mean
    :param orders: ``(T, T-1)`` projection orders (:func:`pcgrad_orders`)
    :param reduction: ``"mean"`` (the reference, §B9.5) or ``"sum"`` (the paper) over the present tasks
    :return: ``(T,)`` coefficients ``beta``: the PCGrad gradient is ``beta @ G``
    """
    n_tasks = gram.shape[0]
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None)) + _EPS
    coef = np.eye(n_tasks)
    rows = np.arange(n_tasks)
    for k in range(n_tasks - 1):  # T-1 sequential rounds (each depends on the last), each vectorised over tasks
        j = orders[:, k]
        dots = np.einsum("tm,tm->t", coef, gram[j])  # g'_t . g_j  (gram is symmetric: gram[j_t] = K[:, j_t])
        dots = np.where(present & present[j], np.minimum(dots, 0.0), 0.0)
        coef[rows, j] -= dots / norms[j] ** 2  # g'_t -= (g'_t . ĝ_j) ĝ_j
    weights = present.astype(np.float64)
    if reduction == "mean":
        weights /= weights.sum()
    return weights @ coef


@register_grad_method("pcgrad")
class PCGrad(GradCombiner):
    """
    PCGrad, gradient surgery for multi-task learning (Yu et al. 2020, https://arxiv.org/abs/2001.06782).

    Each task gradient is projected onto the normal plane of every other task gradient it conflicts with
    (negative dot product), in a random order per task drawn from the seeded generator, against the *original*
    normalised gradients, all tasks at once per round (as the reference, spec §B9). The result is the **mean** of the
    projected gradients over the tasks present in the batch (``reduction="mean"``, the reference's choice: it keeps
    the step size of a mean loss, so the learning rate of plain MTSAC carries over); the paper sums them
    (``reduction="sum"``).

    :param n_tasks: number of tasks
    :param seed: seed of the random projection order
    :param reduction: ``"mean"`` or ``"sum"`` of the projected task gradients
    :param per_sample: see :class:`GradCombiner`
    """

    def __init__(self, n_tasks: int, seed: int | None = None, reduction: str = "mean", per_sample: bool = True):
        super().__init__(n_tasks, seed, per_sample)
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def combine(self, grads: th.Tensor, task_present: th.Tensor) -> tuple[th.Tensor, dict[str, float]]:
        gram = _gram(grads)
        present = task_present.cpu().numpy()
        beta = pcgrad_coefficients(gram, present, pcgrad_orders(self.n_tasks, self.rng), self.reduction)
        combined = th.as_tensor(beta, dtype=grads.dtype, device=grads.device) @ grads
        return combined, {"conflict_fraction": _conflict_fraction(gram, present)}


def project_to_simplex(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v[mask]`` onto the probability simplex; entries outside ``mask`` are 0."""
    out = np.zeros_like(v)
    x = v[mask]
    u = np.sort(x)[::-1]
    cssv = np.cumsum(u) - 1.0
    ind = np.arange(1, x.size + 1)
    rho = ind[u - cssv / ind > 0][-1]
    out[mask] = np.maximum(x - cssv[rho - 1] / rho, 0.0)
    return out


def cagrad_weights(gram: np.ndarray, present: np.ndarray, c: float, n_iters: int = 100) -> tuple[np.ndarray, float]:
    """
    Solve CAGrad's dual over the simplex of the present tasks (Liu et al. 2021, eq. 4):
    ``min_w  g_w . g_0 + c ||g_0|| ||g_w||`` with ``g_w = sum_t w_t g_t`` and ``g_0`` the mean gradient, written in
    the Gram matrix. Projected gradient descent with a backtracking step (the problem is convex and ``T``-dimensional).

    :return: the weights ``w`` (``(T,)``, 0 for missing tasks) and ``||g_0||``
    """
    mean_w = present / present.sum()
    scale = max(float(np.trace(gram)) / present.sum(), 1e-30)  # scale-free iterations
    k = gram / scale
    k_u = k @ mean_w
    g0_norm = float(np.sqrt(max(mean_w @ k_u, 0.0)))
    phi = c * g0_norm

    def objective(w: np.ndarray) -> float:
        return float(w @ k_u + phi * np.sqrt(max(w @ k @ w, 0.0)))

    w, f_w, step = mean_w.copy(), objective(mean_w), 1.0
    for _ in range(n_iters):
        gw_norm = np.sqrt(max(w @ k @ w, 0.0)) + _EPS
        grad = k_u + phi * (k @ w) / gw_norm
        while step > 1e-8:
            w_new = project_to_simplex(w - step * grad, present)
            f_new = objective(w_new)
            if f_new <= f_w:
                break
            step *= 0.5
        else:
            break
        if f_w - f_new < 1e-12:
            w, f_w = w_new, f_new
            break
        w, f_w, step = w_new, f_new, step * 2.0
    return w, g0_norm * np.sqrt(scale)


@register_grad_method("cagrad")
class CAGrad(GradCombiner):
    """
    CAGrad, conflict-averse gradient descent (Liu et al. 2021, https://arxiv.org/abs/2110.14048); beyond the reference.

    The update ``d = g_0 + (c ||g_0|| / ||g_w||) g_w`` maximises the worst task improvement within a ball of radius
    ``c ||g_0||`` around the mean gradient ``g_0``, where ``w`` solves the dual (:func:`cagrad_weights`). With
    ``c = 0`` it is the mean gradient. As the authors' code, ``rescale=1`` divides ``d`` by ``1 + c^2`` (``2``: by
    ``1 + c``; ``0``: no rescaling).

    :param n_tasks: number of tasks
    :param seed: unused (CAGrad is deterministic); accepted for a uniform constructor
    :param c: radius of the conflict-averse ball, relative to ``||g_0||`` (the paper uses 0.4 on MT10)
    :param rescale: 0, 1 or 2, see above
    :param n_iters: iterations of the dual solver
    :param per_sample: see :class:`GradCombiner`
    """

    def __init__(
        self,
        n_tasks: int,
        seed: int | None = None,
        c: float = 0.4,
        rescale: int = 1,
        n_iters: int = 100,
        per_sample: bool = True,
    ):
        super().__init__(n_tasks, seed, per_sample)
        if c < 0:
            raise ValueError(f"c must be >= 0, got {c}")
        if rescale not in (0, 1, 2):
            raise ValueError(f"rescale must be 0, 1 or 2, got {rescale}")
        self.c, self.rescale, self.n_iters = c, rescale, n_iters

    def combine(self, grads: th.Tensor, task_present: th.Tensor) -> tuple[th.Tensor, dict[str, float]]:
        gram = _gram(grads)
        present = task_present.cpu().numpy()
        beta = present / present.sum()
        if self.c > 0:
            w, g0_norm = cagrad_weights(gram, present, self.c, self.n_iters)
            gw_norm = float(np.sqrt(max(w @ gram @ w, 0.0))) + _EPS
            beta = beta + (self.c * g0_norm / gw_norm) * w
        beta = beta / {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
        combined = th.as_tensor(beta, dtype=grads.dtype, device=grads.device) @ grads
        return combined, {"conflict_fraction": _conflict_fraction(gram, present)}


@register_grad_method("gradnorm")
class GradNorm(GradCombiner):
    """
    GradNorm, gradient normalisation for adaptive loss balancing (Chen et al. 2018, https://arxiv.org/abs/1711.02257).

    The update is ``grad sum_t w_t L_t`` with learned task weights ``w`` (initially 1). After each update ``w`` takes
    one optimiser step on ``L_grad = sum_t |G_t - mean(G) r_t^alpha|``, where ``G_t = ||grad_W w_t L_t||`` is the
    gradient norm at the shared layer ``W`` and ``r_t = (L_t / L_t(0)) / mean_t(L_t / L_t(0))`` is the relative
    inverse training rate; the target ``mean(G) r_t^alpha`` is a constant (paper, eq. 2). ``w`` is then clipped
    positive and **renormalised to sum to T**.

    Fixes of the reference (spec §B16.6): the loss ratio uses the current loss and the *initial* loss ``L_t(0)`` (the
    reference divides by the previous update's loss), and ``w`` is really renormalised (the reference's renormalised
    copy is discarded). ``L_t(0)`` is each task's loss the first time that task is present.

    Because ``G_t = w_t ||grad_W L_t||``, ``d L_grad / d w_t = sign(G_t - target_t) ||grad_W L_t||`` in closed form.
    With the per-sample path (see :class:`GradCombiner`) one backward gives every task gradient, hence the norms and
    the update ``w @ G``; otherwise the norms come from a batched backward that stops at ``W`` (cheap when ``W`` is
    near the loss) and the update from one ordinary backward of the weighted loss.

    The inverse training rate assumes positive losses (the critic's). For a task whose ``L_t`` or ``L_t(0)`` is not
    positive (the SAC actor loss can be negative) ``r_t`` is set to the neutral 1, so that task's weight only
    balances gradient norms.

    One combiner can serve several losses (critic and actor): it keeps separate weights per parameter list, indexed
    in the order of first use (:meth:`state_dict` saves them in that order).

    :param n_tasks: number of tasks
    :param seed: unused (GradNorm is deterministic)
    :param alpha: the asymmetry ``alpha`` (paper: 0.12 to 3; the reference uses 1.0)
    :param lr: Adam learning rate of the task weights
    :param shared_layer: which parameters form ``W``: an index into the parameter tensors of ``params`` with at least
        two dimensions (the default ``-1`` is the last weight matrix, i.e. the output layer of the last network in
        ``params``), or ``None`` for all of ``params`` (exact, but costs the full per-task pass)
    """

    def __init__(
        self,
        n_tasks: int,
        seed: int | None = None,
        alpha: float = 1.0,
        lr: float = 1e-3,
        shared_layer: int | None = -1,
        per_sample: bool = True,
    ):
        super().__init__(n_tasks, seed, per_sample)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha, self.lr, self.shared_layer = alpha, lr, shared_layer
        self._group_ids: dict[tuple[int, ...], int] = {}
        self.weights: list[th.Tensor] = []
        self.initial_losses: list[th.Tensor] = []
        self.optimizers: list[th.optim.Adam] = []

    def _group(self, params: list[th.Tensor], device: th.device) -> int:
        key = tuple(id(p) for p in params)
        if key not in self._group_ids:
            index = len(self._group_ids)
            self._group_ids[key] = index
            if index >= len(self.weights):  # a fresh group (otherwise its state came from load_state_dict)
                weights = th.ones(self.n_tasks, device=device, requires_grad=True)
                self.weights.append(weights)
                self.initial_losses.append(th.full((self.n_tasks,), float("nan"), device=device))
                self.optimizers.append(th.optim.Adam([weights], lr=self.lr))
        return self._group_ids[key]

    def _norm_params(self, params: list[th.Tensor]) -> list[th.Tensor]:
        if self.shared_layer is None:
            return params
        matrices = [p for p in params if p.ndim >= 2]
        if not matrices:
            raise ValueError("GradNorm: params hold no weight matrix for the shared layer; pass shared_layer=None")
        return [matrices[self.shared_layer]]

    def backward(
        self, task_losses: th.Tensor, params: Sequence[th.Tensor], task_present: th.Tensor | None = None
    ) -> dict[str, float]:
        params, present = self._check_inputs(task_losses, params, task_present)
        group = self._group(params, task_losses.device)
        weights, initial, optimizer = self.weights[group], self.initial_losses[group], self.optimizers[group]

        norm_params = self._norm_params(params)
        # the update is the gradient of sum_t w_t L_t with the current weights (missing tasks have L_t = 0, drop out)
        grads = self.per_sample_gradients(task_losses, params)
        if grads is not None:  # all per-task gradients from one backward: the norms at W and the update from them
            in_norm = th.cat([th.full((p.numel(),), any(p is q for q in norm_params), device=grads.device) for p in params])
            norms = grads[:, in_norm].norm(dim=1)
            assign_flat_grad(params, (weights.detach() * present) @ grads)
        else:  # ||grad_W L_t|| by a batched backward that stops at W, then one ordinary backward for the update
            norms = per_task_gradients(task_losses, norm_params, retain_graph=True).norm(dim=1).detach()
            weighted = (weights.detach() * task_losses * present).sum()
            flat = th.cat([g.reshape(-1) for g in th.autograd.grad(weighted, params, materialize_grads=True)])
            assign_flat_grad(params, flat)

        with th.no_grad():
            losses = task_losses.detach()
            new = present & th.isnan(initial)
            initial[new] = losses[new]
            # relative inverse training rate r_t from L_t / L_t(0) (fix of §B16.6: initial loss, not the previous one)
            valid = present & (losses > 0) & (initial > 0)
            ratio = th.where(valid, losses / th.where(valid, initial, th.ones_like(initial)), th.ones_like(losses))
            inverse_rate = ratio / ratio[present].mean()
            grad_norms = weights.detach() * norms
            target = grad_norms[present].mean() * inverse_rate**self.alpha
            gradnorm_loss = (grad_norms - target).abs()[present].sum()
            # d/dw_t |w_t n_t - target_t| = sign(w_t n_t - target_t) n_t  (the target is a constant, paper eq. 2)
            weights.grad = th.where(present, th.sign(grad_norms - target) * norms, th.zeros_like(norms))
        before = weights.detach().clone()
        optimizer.step()
        with th.no_grad():
            weights[~present] = before[~present]  # no step for a missing task (Adam's momentum would still move it)
            weights.clamp_(min=1e-4)
            weights.mul_(self.n_tasks / weights.sum())  # renormalise to sum to T (fix of §B16.6)
        info = {"gradnorm_loss": float(gradnorm_loss)}
        info.update({f"task_weight_{t}": float(w) for t, w in enumerate(weights.detach().cpu().tolist())})
        return info

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {
            **super().state_dict(),
            "weights": [w.detach().clone() for w in self.weights],
            "initial_losses": [loss.clone() for loss in self.initial_losses],
            "optimizers": [copy.deepcopy(opt.state_dict()) for opt in self.optimizers],
        }

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:  # type: ignore[override]
        super().load_state_dict(state, strict)
        self._group_ids = {}
        self.weights = [w.clone().requires_grad_(True) for w in state["weights"]]
        self.initial_losses = [loss.clone() for loss in state["initial_losses"]]
        self.optimizers = []
        for weights, opt_state in zip(self.weights, state["optimizers"], strict=True):
            optimizer = th.optim.Adam([weights], lr=self.lr)
            optimizer.load_state_dict(opt_state)
            self.optimizers.append(optimizer)
