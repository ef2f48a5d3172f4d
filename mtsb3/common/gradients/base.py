"""The gradient-combiner registry (:func:`register_grad_method`, :func:`make_grad_combiner`) and the base class."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from torch import nn

from mtsb3.common.gradients.per_sample import per_sample_task_gradients, per_task_gradients

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


def assign_flat_grad(params: Sequence[th.Tensor], flat_grad: th.Tensor) -> None:
    """Write ``flat_grad`` (``(P,)``, the concatenation of all parameters) into ``p.grad``, replacing what was there."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat_grad[offset : offset + n].view_as(p).clone()
        offset += n
    assert offset == flat_grad.numel(), "flat gradient size does not match the parameters"


def assign_weighted_loss_grad(weights: th.Tensor, task_losses: th.Tensor, params: Sequence[th.Tensor]) -> None:
    """
    Write the gradient of ``sum_t w_t L_t`` into ``p.grad`` (replacing what was there), by one ordinary backward pass.

    :param weights: ``(T,)`` task weights, constants of the gradient
    :param task_losses: ``(T,)`` per-task losses
    :param params: the parameters (one without a path to the losses gets a zero gradient)
    """
    grads = th.autograd.grad((weights.detach() * task_losses).sum(), list(params), materialize_grads=True)
    for p, g in zip(params, grads, strict=True):
        p.grad = g


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
    :param per_sample: use :func:`~mtsb3.common.gradients.per_sample.per_sample_task_gradients` where a task index is
        given and the graph allows it (checked once per parameter list), else
        :func:`~mtsb3.common.gradients.per_sample.per_task_gradients`; ``False``: always the batched backward
    """

    needs_positive_losses: ClassVar[bool] = False
    """The method is defined for non-negative task losses only (it weights ``log L_t`` or a likelihood of ``L_t``): an
    algorithm applies it to its critic losses only (MTSAC: the actor loss, unbounded below, keeps the plain mean)."""

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

    def task_gradients(
        self,
        task_losses: th.Tensor,
        params: list[th.Tensor],
        task_idx: th.Tensor | None = None,
        retain_graph: bool = False,
    ) -> th.Tensor:
        """
        :param task_losses: ``(T,)`` per-task losses
        :param params: the parameters
        :param task_idx: ``(batch,)`` task index of each sample (enables the per-sample path), or ``None``
        :param retain_graph: keep the graph for another backward
        :return: the ``(T, P)`` per-task gradients, by the per-sample path where it is exact, else the batched backward
        """
        grads = self.per_sample_gradients(task_losses, params, task_idx, retain_graph)
        return per_task_gradients(task_losses, params, retain_graph=retain_graph) if grads is None else grads

    def per_sample_gradients(
        self,
        task_losses: th.Tensor,
        params: list[th.Tensor],
        task_idx: th.Tensor | None,
        retain_graph: bool = False,
    ) -> th.Tensor | None:
        """
        :return: the ``(T, P)`` per-task gradients by :func:`per_sample_task_gradients` if it is enabled, a task index
            is given, it applies, and it passed its check on the first use of ``params``; else ``None`` (the graph is
            then kept)
        """
        if task_idx is None or not self.per_sample:
            return None
        key = tuple(id(p) for p in params)
        known = self._per_sample_ok.get(key)
        if known is False:
            return None
        grads = per_sample_task_gradients(task_losses, params, task_idx, retain_graph=retain_graph or not known)
        if grads is None:
            self._per_sample_ok[key] = False
            return None
        if known or self._first_use_check(task_losses, params, grads, key):
            return grads
        return None

    def _first_use_check(
        self, task_losses: th.Tensor, params: list[th.Tensor], grads: th.Tensor, key: tuple[int, ...]
    ) -> bool:
        """
        Check ``sum_t v_t g_t`` against an ordinary backward (distinct ``v_t`` catch a wrong attribution of samples to
        tasks, and a layer that mixes samples); remember the answer for ``key``.
        """
        v = th.arange(1, self.n_tasks + 1, dtype=task_losses.dtype, device=task_losses.device)
        reference = th.autograd.grad((v * task_losses).sum(), params, retain_graph=True, allow_unused=True)
        flat = th.cat([p.new_zeros(p.numel()) if g is None else g.reshape(-1) for g, p in zip(reference, params, strict=True)])
        ok = bool(th.allclose(v @ grads, flat, rtol=1e-3, atol=1e-5 * float(flat.abs().max()) + 1e-12))
        self._per_sample_ok[key] = ok
        if not ok:
            warnings.warn(
                "The per-sample per-task gradients do not match an ordinary backward pass for these parameters "
                "(a layer mixes samples?); using the batched backward pass from now on",
                RuntimeWarning,
            )
        return ok

    def backward(
        self,
        task_losses: th.Tensor,
        params: Sequence[th.Tensor],
        task_present: th.Tensor | None = None,
        task_idx: th.Tensor | None = None,
    ) -> dict[str, float]:
        """
        Compute the combined gradient and store it in ``p.grad`` for every ``p`` in ``params``.

        :param task_losses: ``(T,)`` per-task mean losses (from :func:`mtsb3.common.task.per_task_mean`)
        :param params: the parameters to update (e.g. ``optimizer.param_groups``' parameters)
        :param task_present: ``(T,)`` bool, which tasks have samples in the batch; ``None``: all
        :param task_idx: ``(batch,)`` task index of each sample, the one given to ``per_task_mean``: it enables the
            one-backward per-sample path; ``None``: the batched backward (exact for any graph, slower)
        :return: scalars to log
        """
        params, present = self._check_inputs(task_losses, params, task_present)
        grads = self.task_gradients(task_losses, params, task_idx)
        # A missing task's loss is a constant 0, so its row is exactly zero; masking keeps that true for any caller.
        grads = grads * present.unsqueeze(1).to(grads.dtype)
        combined, info = self.combine(grads, present)
        assign_flat_grad(params, combined)
        return info

    @property
    def needs_losses_after_step(self) -> bool:
        """Whether the algorithm must call :meth:`after_step` with the task losses of the same batch after its step."""
        return False

    def after_step(self, task_losses: th.Tensor) -> None:
        """
        Receive the task losses of the last :meth:`backward`'s batch, evaluated again after the optimiser step (only
        called when :attr:`needs_losses_after_step`; FAMO learns its task weights from the change).

        :param task_losses: ``(T,)`` per-task losses, without a graph
        """

    def check_non_negative(self, task_losses: th.Tensor, present: th.Tensor) -> None:
        """:raises ValueError: if a present task's loss is negative (for :attr:`needs_positive_losses` methods)"""
        losses = task_losses.detach()
        negative = present & (losses < 0)
        if bool(negative.any()):
            raise ValueError(
                f"{type(self).__name__} needs non-negative task losses (a squared error such as the critic's), got "
                f"{losses[negative].tolist()} for tasks {negative.nonzero().flatten().tolist()}"
            )

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


class TaskWeightingCombiner(GradCombiner):
    """
    Base of the combiners that learn one ``(T,)`` vector per parameter list, each with its own Adam optimiser
    (GradNorm's task weights, FAMO's logits, uncertainty weighting's log variances), and may keep ``(T,)`` records
    beside it (GradNorm's initial losses, FAMO's previous losses; NaN until a task is first seen).

    One combiner can serve several losses (critic and actor): it keeps separate state per parameter list, created on
    the first use of the list; :meth:`state_dict` saves the states in that order, and a restored combiner gives them to
    the parameter lists in the same order of first use.

    Subclasses set :attr:`learned_name` (its key in :meth:`state_dict`), :attr:`initial_value` and
    :attr:`record_names`, and may override :meth:`make_optimizer`.

    :param n_tasks: number of tasks
    :param seed: seed of the combiner's random generator
    :param lr: Adam learning rate of the learned vectors
    :param per_sample: see :class:`GradCombiner`
    """

    learned_name: ClassVar[str] = "learned"
    initial_value: ClassVar[float] = 0.0
    record_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_tasks: int, seed: int | None = None, lr: float = 1e-3, per_sample: bool = True):
        super().__init__(n_tasks, seed, per_sample)
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.lr = lr
        self._group_ids: dict[tuple[int, ...], int] = {}
        self._learned: list[th.Tensor] = []
        self._records: dict[str, list[th.Tensor]] = {name: [] for name in self.record_names}
        self.optimizers: list[th.optim.Optimizer] = []

    def make_optimizer(self, learned: th.Tensor) -> th.optim.Optimizer:
        """:return: the optimiser of one learned vector (Adam with :attr:`lr`)"""
        return th.optim.Adam([learned], lr=self.lr)

    def _prepare(
        self, task_losses: th.Tensor, params: Sequence[th.Tensor], task_present: th.Tensor | None
    ) -> tuple[list[th.Tensor], th.Tensor, int]:
        """
        The opening of every weighting's :meth:`backward`: check the inputs (and that the losses are non-negative, for
        :attr:`needs_positive_losses` methods) and find the learned state of ``params``.

        :return: the parameters, the ``(T,)`` present-task mask and the index of the parameters' state
        """
        params, present = self._check_inputs(task_losses, params, task_present)
        if self.needs_positive_losses:
            self.check_non_negative(task_losses, present)
        return params, present, self._group(params, task_losses.device)

    def _group(self, params: list[th.Tensor], device: th.device) -> int:
        """:return: the index of the state of ``params``, created on their first use"""
        key = tuple(id(p) for p in params)
        if key not in self._group_ids:
            index = len(self._group_ids)
            self._group_ids[key] = index
            if index >= len(self._learned):  # a fresh group (otherwise its state came from load_state_dict)
                learned = th.full((self.n_tasks,), self.initial_value, device=device, requires_grad=True)
                self._learned.append(learned)
                for records in self._records.values():
                    records.append(th.full((self.n_tasks,), float("nan"), device=device))
                self.optimizers.append(self.make_optimizer(learned))
        return self._group_ids[key]

    def step_learned(self, group: int, grad: th.Tensor, present: th.Tensor) -> th.Tensor:
        """
        One optimiser step on the learned vector of ``group``; a task missing from the batch keeps its value (Adam's
        momentum, or a weight decay, would still move it).

        :param group: from :meth:`_group`
        :param grad: ``(T,)`` gradient of the learned vector (its entries for missing tasks are ignored)
        :param present: ``(T,)`` bool mask of the tasks present
        :return: the updated vector, detached
        """
        learned = self._learned[group]
        grad = grad.detach().to(learned.dtype)
        learned.grad = th.where(present, grad, th.zeros_like(grad))
        before = learned.detach().clone()
        self.optimizers[group].step()
        with th.no_grad():
            learned[~present] = before[~present]
        return learned.detach()

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {
            **super().state_dict(),
            self.learned_name: [v.detach().clone() for v in self._learned],
            **{name: [r.clone() for r in records] for name, records in self._records.items()},
            "optimizers": [copy.deepcopy(opt.state_dict()) for opt in self.optimizers],
        }

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:  # type: ignore[override]
        super().load_state_dict(state, strict)
        self._group_ids = {}
        self._learned = [v.clone().requires_grad_(True) for v in state[self.learned_name]]
        self._records = {name: [r.clone() for r in state[name]] for name in self.record_names}
        self.optimizers = []
        for learned, opt_state in zip(self._learned, state["optimizers"], strict=True):
            optimizer = self.make_optimizer(learned)
            optimizer.load_state_dict(opt_state)
            self.optimizers.append(optimizer)
