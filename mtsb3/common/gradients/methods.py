"""The gradient-surgery methods: PCGrad, CAGrad and GradNorm, registered under ``pcgrad``, ``cagrad``, ``gradnorm``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch as th

from mtsb3.common.gradients.base import (
    _EPS,
    GradCombiner,
    TaskWeightingCombiner,
    assign_flat_grad,
    assign_weighted_loss_grad,
    register_grad_method,
)
from mtsb3.common.gradients.per_sample import per_task_gradients


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
    ``g'_t . g_j = (C @ K)[t, j]`` with the Gram matrix ``K``, so the sequential projections (mtrl/agent/grad_manipulation.py,
    the projection loop) run on ``T x T`` arrays only: in round ``k`` every task ``t`` is projected (all at once) off the
    *original* normalised gradient of task ``orders[t, k]`` if they conflict.

    :param gram: ``(T, T)`` Gram matrix ``G @ G.T``
    :param present: ``(T,)`` bool mask; missing tasks neither project nor are projected off, nor count in the mean
    :param orders: ``(T, T-1)`` projection orders (:func:`pcgrad_orders`)
    :param reduction: ``"mean"`` (the reference, mtrl/agent/pcgrad.py) or ``"sum"`` (the paper) over the present tasks
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
    normalised gradients, all tasks at once per round (as the reference, mtrl/agent/pcgrad.py). The result is the **mean** of
    the projected gradients over the tasks present in the batch (``reduction="mean"``, the reference's choice: it keeps
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
class GradNorm(TaskWeightingCombiner):
    """
    GradNorm, gradient normalisation for adaptive loss balancing (Chen et al. 2018, https://arxiv.org/abs/1711.02257).

    The update is ``grad sum_t w_t L_t`` with learned task weights ``w`` (initially 1). After each update ``w`` takes
    one optimiser step on ``L_grad = sum_t |G_t - mean(G) r_t^alpha|``, where ``G_t = ||grad_W w_t L_t||`` is the
    gradient norm at the shared layer ``W`` and ``r_t = (L_t / L_t(0)) / mean_t(L_t / L_t(0))`` is the relative
    inverse training rate; the target ``mean(G) r_t^alpha`` is a constant (paper, eq. 2). ``w`` is then clipped
    positive and **renormalised to sum to T**.

    Fixes of the reference (README, "Differences from mtrl and mtenv"): the loss ratio uses the current loss and the *initial*
    loss ``L_t(0)`` (the reference divides by the previous update's loss), and ``w`` is really renormalised (the reference's
    renormalised copy is discarded). ``L_t(0)`` is each task's loss the first time that task is present.

    Because ``G_t = w_t ||grad_W L_t||``, ``d L_grad / d w_t = sign(G_t - target_t) ||grad_W L_t||`` in closed form.
    With the per-sample path (see :class:`GradCombiner`) one backward gives every task gradient, hence the norms and
    the update ``w @ G``; otherwise the norms come from a batched backward that stops at ``W`` (cheap when ``W`` is
    near the loss) and the update from one ordinary backward of the weighted loss.

    The inverse training rate assumes positive losses (the critic's). For a task whose ``L_t`` or ``L_t(0)`` is not
    positive (the SAC actor loss can be negative) ``r_t`` is set to the neutral 1, so that task's weight only
    balances gradient norms.

    One combiner can serve several losses (critic and actor): separate weights per parameter list
    (:class:`~mtsb3.common.gradients.base.TaskWeightingCombiner`).

    :param n_tasks: number of tasks
    :param seed: unused (GradNorm is deterministic)
    :param alpha: the asymmetry ``alpha`` (paper: 0.12 to 3; the reference uses 1.0)
    :param lr: Adam learning rate of the task weights
    :param shared_layer: which parameters form ``W``: an index into the parameter tensors of ``params`` with at least
        two dimensions (the default ``-1`` is the last weight matrix, i.e. the output layer of the last network in
        ``params``), or ``None`` for all of ``params`` (exact, but costs the full per-task pass)
    """

    learned_name = "weights"
    initial_value = 1.0
    record_names = ("initial_losses",)

    def __init__(
        self,
        n_tasks: int,
        seed: int | None = None,
        alpha: float = 1.0,
        lr: float = 1e-3,
        shared_layer: int | None = -1,
        per_sample: bool = True,
    ):
        super().__init__(n_tasks, seed, lr, per_sample)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha, self.shared_layer = alpha, shared_layer

    @property
    def weights(self) -> list[th.Tensor]:
        """The task weights, one ``(T,)`` tensor per parameter list."""
        return self._learned

    @property
    def initial_losses(self) -> list[th.Tensor]:
        """Each task's loss the first time it was present (NaN before), one ``(T,)`` tensor per parameter list."""
        return self._records["initial_losses"]

    def _norm_params(self, params: list[th.Tensor]) -> list[th.Tensor]:
        if self.shared_layer is None:
            return params
        matrices = [p for p in params if p.ndim >= 2]
        if not matrices:
            raise ValueError("GradNorm: params hold no weight matrix for the shared layer; pass shared_layer=None")
        return [matrices[self.shared_layer]]

    def backward(
        self,
        task_losses: th.Tensor,
        params: Sequence[th.Tensor],
        task_present: th.Tensor | None = None,
        task_idx: th.Tensor | None = None,
    ) -> dict[str, float]:
        params, present, group = self._prepare(task_losses, params, task_present)
        weights, initial = self.weights[group], self.initial_losses[group]

        norm_params = self._norm_params(params)
        # the update is the gradient of sum_t w_t L_t with the current weights (missing tasks have L_t = 0, drop out)
        grads = self.per_sample_gradients(task_losses, params, task_idx)
        if grads is not None:  # all per-task gradients from one backward: the norms at W and the update from them
            in_norm = th.cat([th.full((p.numel(),), any(p is q for q in norm_params), device=grads.device) for p in params])
            norms = grads[:, in_norm].norm(dim=1)
            assign_flat_grad(params, (weights.detach() * present) @ grads)
        else:  # ||grad_W L_t|| by a batched backward that stops at W, then one ordinary backward for the update
            norms = per_task_gradients(task_losses, norm_params, retain_graph=True).norm(dim=1).detach()
            assign_weighted_loss_grad(weights * present, task_losses, params)

        with th.no_grad():
            losses = task_losses.detach()
            new = present & th.isnan(initial)
            initial[new] = losses[new]
            # relative inverse training rate r_t from L_t / L_t(0): the initial loss, not the previous one (a fix of mtrl:
            # README, "Differences from mtrl and mtenv")
            valid = present & (losses > 0) & (initial > 0)
            ratio = th.where(valid, losses / th.where(valid, initial, th.ones_like(initial)), th.ones_like(losses))
            inverse_rate = ratio / ratio[present].mean()
            grad_norms = weights.detach() * norms
            target = grad_norms[present].mean() * inverse_rate**self.alpha
            gradnorm_loss = (grad_norms - target).abs()[present].sum()
            # d/dw_t |w_t n_t - target_t| = sign(w_t n_t - target_t) n_t  (the target is a constant, paper eq. 2)
            grad = th.sign(grad_norms - target) * norms
        self.step_learned(group, grad, present)  # no step for a missing task
        with th.no_grad():
            weights.clamp_(min=1e-4)
            # renormalise to sum to T (a fix of mtrl: README, "Differences from mtrl and mtenv")
            weights.mul_(self.n_tasks / weights.sum())
        info = {"gradnorm_loss": float(gradnorm_loss)}
        info.update({f"task_weight_{t}": float(w) for t, w in enumerate(weights.detach().cpu().tolist())})
        return info
