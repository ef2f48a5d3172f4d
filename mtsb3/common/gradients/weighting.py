"""
Loss-weighting methods: FAMO and uncertainty weighting, registered under ``famo`` and ``uw``.

Both learn one weight per task from the task losses alone and update the network with **one ordinary backward pass**
of a weighted loss: no per-task gradients, so a step costs about what a plain mean-loss step costs. Both are defined for
non-negative losses (FAMO weights ``log L_t``, uncertainty weighting a Gaussian likelihood of ``L_t``), so an algorithm
applies them to its critic losses only (:attr:`~mtsb3.common.gradients.base.GradCombiner.needs_positive_losses`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch as th

from mtsb3.common.gradients.base import TaskWeightingCombiner, assign_weighted_loss_grad, register_grad_method

#: where FAMO takes the task losses after a step from
FAMO_LOSSES_AFTER = ("recompute", "next")


def _present_softmax(logits: th.Tensor, present: th.Tensor) -> th.Tensor:
    """:return: the softmax of ``logits`` over the present tasks, 0 for the missing ones"""
    return th.softmax(logits.masked_fill(~present, float("-inf")), dim=0)


@register_grad_method("famo")
class FAMO(TaskWeightingCombiner):
    """
    FAMO, fast adaptive multitask optimization (Liu, Feng, Stone, Liu, NeurIPS 2023, https://arxiv.org/abs/2306.03792;
    Cranial-XIX/FAMO, ``famo.py``, class ``FAMO``).

    Task weights ``z = softmax(xi)`` over learned logits ``xi`` (initially 0). The update direction is the gradient of
    ``sum_t z_t log(L_t + eps) / c`` with ``c = sum_t z_t / (L_t + eps)`` a constant, i.e. the convex combination
    ``sum_t w_t grad L_t`` with ``w_t = z_t / (c (L_t + eps))``, computed as one backward of ``sum_t w_t L_t`` (paper,
    Algorithm 1; the reference's ``get_weighted_loss`` and ``backward``). After the optimiser step, the change of the log
    losses of the same batch, ``delta_t = log(L_t + eps) - log(L'_t + eps)``, gives the logits one Adam step (learning
    rate ``lr``, L2 weight decay ``gamma``) along ``(d z / d xi)^T delta``, so the tasks that improved least gain
    weight (paper, Algorithm 1 and its mini-batch form, Algorithm 2 of Appendix C; the reference's ``update``).

    **The losses after the step** (``losses_after``): ``"recompute"`` (the default), as the paper's Algorithm 2, the
    reference's ``famo.py`` example, and its MTRL agent (``mtrl_files/famo.py``, ``update_critic``: a no-grad critic
    forward on the same batch and the same TD targets right after ``critic_optimizer.step()``): the algorithm evaluates
    the loss of the same batch again and calls :meth:`after_step` (MTSAC does, for its critic: one extra forward pass,
    no backward). ``"next"``: no extra pass; ``delta`` compares the losses of two consecutive updates, on two
    different batches and with moved TD targets, so it mixes the progress of the step with the minibatch noise (which
    telescopes over the steps) and the target drift.

    Differences from the reference MTRL agent, which weights only the critic loss (as here: the SAC actor loss is
    unbounded below, so ``log L`` is undefined): the normalisation follows the paper and ``famo.py`` (divide by ``c``;
    the agent multiplies, which scales the step by ``c^2``, a factor Adam mostly absorbs).

    **Tasks missing from a batch** take no part: the softmax and ``c`` run over the present tasks, a missing task's
    logit takes no step, and ``delta`` uses the tasks present before and after.

    One combiner can serve several losses: separate logits per parameter list
    (:class:`~mtsb3.common.gradients.base.TaskWeightingCombiner`).

    :param n_tasks: number of tasks
    :param seed: unused (FAMO is deterministic)
    :param lr: Adam learning rate of the logits (the reference: 0.025; its MTRL config: 0.01)
    :param gamma: weight decay of the logits (the paper's regularisation; the reference MTRL agent: 1e-3)
    :param eps: added to the losses before the log (the reference: 1e-8)
    :param losses_after: ``"recompute"`` or ``"next"``, see above
    """

    learned_name = "logits"
    record_names = ("previous_losses",)
    needs_positive_losses = True

    def __init__(
        self,
        n_tasks: int,
        seed: int | None = None,
        lr: float = 0.025,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        losses_after: str = "recompute",
    ):
        super().__init__(n_tasks, seed, lr)
        if losses_after not in FAMO_LOSSES_AFTER:
            raise ValueError(f"losses_after must be one of {FAMO_LOSSES_AFTER}, got {losses_after!r}")
        if gamma < 0 or eps <= 0:
            raise ValueError(f"gamma must be >= 0 and eps > 0, got gamma={gamma}, eps={eps}")
        self.gamma, self.eps, self.losses_after = gamma, eps, losses_after
        # (group, losses, present) of the last backward, until after_step
        self._pending: tuple[int, th.Tensor, th.Tensor] | None = None

    @property
    def logits(self) -> list[th.Tensor]:
        """The task logits ``xi``, one ``(T,)`` tensor per parameter list."""
        return self._learned

    @property
    def needs_losses_after_step(self) -> bool:
        return self.losses_after == "recompute"

    def make_optimizer(self, learned: th.Tensor) -> th.optim.Optimizer:
        return th.optim.Adam([learned], lr=self.lr, weight_decay=self.gamma)

    def task_weights(self, group: int = 0, present: th.Tensor | None = None) -> th.Tensor:
        """:return: ``z = softmax(xi)`` of a parameter list, over the ``present`` tasks (default: all)"""
        logits = self._learned[group].detach()
        return _present_softmax(logits, th.ones_like(logits, dtype=th.bool) if present is None else present)

    def backward(
        self,
        task_losses: th.Tensor,
        params: Sequence[th.Tensor],
        task_present: th.Tensor | None = None,
        task_idx: th.Tensor | None = None,
    ) -> dict[str, float]:
        params, present, group = self._prepare(task_losses, params, task_present)
        losses = task_losses.detach()
        if self.losses_after == "next":
            previous = self._records["previous_losses"][group]
            self.update_logits(group, previous, losses, present & ~th.isnan(previous))
            previous.copy_(th.where(present, losses, th.full_like(losses, float("nan"))))
        z = self.task_weights(group, present)
        inverse = z / (losses + self.eps)  # 0 for missing tasks
        assign_weighted_loss_grad(inverse / inverse.sum(), task_losses, params)
        self._pending = (group, losses, present)
        return {f"task_weight_{t}": w for t, w in enumerate(z.cpu().tolist())}

    def after_step(self, task_losses: th.Tensor) -> None:
        """
        :param task_losses: ``(T,)`` losses of the last :meth:`backward`'s batch after the step
        :raises RuntimeError: without a :meth:`backward` since the last call
        """
        if self._pending is None:
            raise RuntimeError("FAMO.after_step needs a backward() first (it compares the losses before and after a step)")
        group, before, present = self._pending
        self._pending = None
        self.update_logits(group, before, task_losses.detach(), present)

    def update_logits(self, group: int, before: th.Tensor, after: th.Tensor, present: th.Tensor) -> None:
        """
        One Adam step of the logits along ``(d z / d xi)^T delta`` (the vector-Jacobian product of the softmax over the
        present tasks: ``z * (delta - z . delta)``), ``delta = log(before + eps) - log(after + eps)``.

        :param group: the parameter list's state
        :param before: ``(T,)`` task losses before the step
        :param after: ``(T,)`` task losses after it
        :param present: ``(T,)`` the tasks whose two losses are both known; nothing happens when there is none
        """
        if not bool(present.any()):
            return
        z = self.task_weights(group, present)
        delta = th.where(present, (before + self.eps).log() - (after + self.eps).log(), th.zeros_like(before))
        self.step_learned(group, z * (delta - (z * delta).sum()), present)


@register_grad_method("uw")
class UncertaintyWeighting(TaskWeightingCombiner):
    """
    Uncertainty weighting (Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
    Geometry and Semantics", CVPR 2018, eq. 7): learned log variances ``s_t = log sigma_t^2`` (initially 0) and the loss

        ``L = mean_t (exp(-s_t) L_t + s_t)``  over the tasks present in the batch,

    minimised in the network parameters and in ``s`` at once: one backward of ``sum_t w_t L_t`` with
    ``w_t = exp(-s_t) / T_present`` for the network, and one Adam step of ``s`` along the closed-form
    ``dL / ds_t = (1 - exp(-s_t) L_t) / T_present``, whose fixed point is ``s_t = log L_t``, so each task's weight
    tends to ``1 / L_t``.

    The paper's eq. 7 is ``sum_t (exp(-s_t) L_t + s_t) / 2``: the mean instead of the half sum is a constant factor
    (which Adam's normalisation cancels), chosen so that at ``s = 0`` the step is plain MTSAC's mean-loss step.

    It is defined for non-negative losses: for ``L_t < 0`` the objective has no minimum in ``s_t`` (``s_t`` runs to
    minus infinity), so MTSAC applies it to the critic loss only (the reference MTRL agent, Cranial-XIX/FAMO
    ``mtrl_files/uw.py``, also weights the actor loss, which is negative on positive rewards). A task missing from a
    batch drops out of the mean and its ``s_t`` takes no step.

    :param n_tasks: number of tasks
    :param seed: unused (deterministic)
    :param lr: Adam learning rate of the log variances (the reference MTRL agent: 0.025)
    """

    learned_name = "log_vars"
    needs_positive_losses = True

    def __init__(self, n_tasks: int, seed: int | None = None, lr: float = 0.025):
        super().__init__(n_tasks, seed, lr)

    @property
    def log_vars(self) -> list[th.Tensor]:
        """The log variances ``s``, one ``(T,)`` tensor per parameter list."""
        return self._learned

    def backward(
        self,
        task_losses: th.Tensor,
        params: Sequence[th.Tensor],
        task_present: th.Tensor | None = None,
        task_idx: th.Tensor | None = None,
    ) -> dict[str, float]:
        params, present, group = self._prepare(task_losses, params, task_present)
        precision = th.exp(-self._learned[group].detach())
        n_present = present.sum()
        assign_weighted_loss_grad(th.where(present, precision, th.zeros_like(precision)) / n_present, task_losses, params)
        log_vars = self.step_learned(group, (1.0 - precision * task_losses.detach()) / n_present, present)
        return {f"log_var_{t}": s for t, s in enumerate(log_vars.cpu().tolist())}
