"""
Gradient combiners: methods that turn per-task losses into one update of shared parameters.

A combiner is selected by name (``grad_method="pcgrad" | "gradnorm" | "cagrad" | "famo" | "uw" | None``) and built with
:func:`make_grad_combiner`. On each update the algorithm averages its per-sample loss within each task
(:func:`mtsb3.common.task.per_task_mean`) and calls ``combiner.backward(task_losses, params, task_present, task_idx)``,
which leaves the combined gradient in every ``p.grad``; the algorithm then calls ``optimizer.step()`` as usual.

The package has four modules: :mod:`~mtsb3.common.gradients.base` (the registry, :class:`GradCombiner` and
:class:`TaskWeightingCombiner`, the base of the combiners with learned per-task vectors),
:mod:`~mtsb3.common.gradients.per_sample` (the per-task gradient engine, the only module that reads autograd
internals), :mod:`~mtsb3.common.gradients.methods` (PCGrad, CAGrad, GradNorm) and
:mod:`~mtsb3.common.gradients.weighting` (the loss weightings FAMO and uncertainty weighting).

**Loss weightings** (``famo``, ``uw``) need no per-task gradients: they learn task weights from the task losses and
write the gradient of one weighted loss (one ordinary backward pass, about the cost of a plain step). They are defined
for non-negative losses (``GradCombiner.needs_positive_losses``), so MTSAC applies them to its critic loss only; FAMO
also learns from the losses of the same batch after the optimiser step, which MTSAC evaluates again (one forward pass)
and hands to ``combiner.after_step`` (``GradCombiner.needs_losses_after_step``).

Per-task gradients never take a loop of ``T`` backward passes. Two exact ways are built in:

* :func:`per_sample_task_gradients` (the default when it applies): **one ordinary backward pass** of ``sum_t L_t``
  that records, at every layer holding the parameters (``nn.Linear``, :class:`~mtsb3.common.experts.BatchedLinear`,
  per-task heads, ``nn.Embedding``), the layer input ``x_b`` and output gradient ``delta_b`` of each sample. As each
  sample's loss depends on that sample only, ``delta_b`` is the gradient of the loss of the sample's own task, so task
  ``t``'s weight gradient is ``sum_{b in t} x_b^T delta_b``: one batched matmul over the samples split by task, the
  same cost as the weight gradient of a plain backward. It takes the task index the algorithm gave to
  :func:`~mtsb3.common.task.per_task_mean` and reads the layer inputs from autograd's saved tensors. It applies when every
  parameter is used only in such layers; the first call for a parameter list also checks it against an ordinary
  backward of ``sum_t v_t L_t`` (it fails e.g. with batch normalisation, which mixes samples) and falls back for good
  if they differ. Without a task index (``task_idx=None``) the combiner uses the batched backward.
* :func:`per_task_gradients`: one batched backward pass (``torch.autograd.grad`` with ``is_grads_batched=True`` over the
  rows of the identity), fully general, but each of the ``T`` backward rows costs a full backward pass.

PCGrad and CAGrad then work in the ``T x T`` Gram matrix of the task gradients: every direction
they produce is a linear combination ``beta @ G`` of the task gradients ``G`` (shape ``(T, P)``), so the surgery
costs one ``(T, P) x (P, T)`` product, a few ``T x T`` operations, and one ``(T,) x (T, P)`` product.

**Tasks missing from a batch.** ``task_present[t] = False`` (no sample of task ``t`` in the batch) excludes task ``t``
from the surgery: its gradient is treated as absent (not as a zero vector that "agrees" with everyone), means are
taken over the present tasks only, and GradNorm takes no step on its weight (only the common renormalisation to sum
to ``T``) and does not record its initial loss. The loss weightings drop a missing task the same way: FAMO's softmax
and normaliser run over the present tasks, UW's mean too, and neither steps a missing task's logit or log variance
(FAMO's change of loss uses only the tasks present before and after the step).

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
overrides :meth:`GradCombiner.backward` altogether (as :class:`GradNorm` does, calling
:meth:`GradCombiner.task_gradients`, or :class:`FAMO`, calling :func:`assign_weighted_loss_grad`). Learned state
(GradNorm's weights, FAMO's logits and their optimisers) lives in the combiner's ``state_dict``, which MTSAC
checkpoints with the networks.
"""

from mtsb3.common.gradients.base import (
    GRAD_METHODS,
    GradCombiner,
    TaskWeightingCombiner,
    assign_flat_grad,
    assign_weighted_loss_grad,
    make_grad_combiner,
    register_grad_method,
)
from mtsb3.common.gradients.methods import (
    CAGrad,
    GradNorm,
    PCGrad,
    cagrad_weights,
    pcgrad_coefficients,
    pcgrad_orders,
    project_to_simplex,
)
from mtsb3.common.gradients.per_sample import per_sample_task_gradients, per_task_gradients
from mtsb3.common.gradients.weighting import FAMO, UncertaintyWeighting

__all__ = [
    "FAMO",
    "GRAD_METHODS",
    "CAGrad",
    "GradCombiner",
    "GradNorm",
    "PCGrad",
    "TaskWeightingCombiner",
    "UncertaintyWeighting",
    "assign_flat_grad",
    "assign_weighted_loss_grad",
    "cagrad_weights",
    "make_grad_combiner",
    "pcgrad_coefficients",
    "pcgrad_orders",
    "per_sample_task_gradients",
    "per_task_gradients",
    "project_to_simplex",
    "register_grad_method",
]
