"""Reading the task identity out of multi-task observations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs

from mtgym.core import ENV_KEY as ENV_KEY  # re-exported: the algorithms read both keys from here
from mtgym.core import TASK_KEY, check_task_index


def n_tasks_of(observation_space: spaces.Space, purpose: str = "this feature") -> int:
    """
    :param observation_space: a multi-task ``Dict`` observation space
    :param purpose: what needs the task index, for the error message (e.g. ``"per-task alpha"``)
    :return: the number of tasks, ``observation_space["task_obs"].n``
    :raises ValueError: if the space has no ``Discrete`` ``task_obs``
    """
    if not isinstance(observation_space, spaces.Dict) or TASK_KEY not in observation_space.spaces:
        raise ValueError(
            f"{purpose} needs a multi-task Dict observation space with a {TASK_KEY!r} key, got {observation_space}"
        )
    task_space = observation_space[TASK_KEY]
    if not isinstance(task_space, spaces.Discrete):
        raise ValueError(
            f"{purpose} needs a Discrete task_obs (a finite set of task indices), got {task_space}. "
            "A Box task_obs is a continuous task descriptor: it can only condition the networks."
        )
    return int(task_space.n)


def discrete_n_tasks(observation_space: spaces.Space) -> int | None:
    """:return: the number of tasks of a ``Dict`` observation space with a ``Discrete`` ``task_obs``, else ``None``."""
    if isinstance(observation_space, spaces.Dict) and isinstance(observation_space.spaces.get(TASK_KEY), spaces.Discrete):
        return int(observation_space[TASK_KEY].n)
    return None


def check_task_obs(observation: Any, observation_space: spaces.Space) -> None:
    """
    Check the task part of an observation given to ``predict``, before it is one-hot encoded: SB3's preprocessing
    would turn a float task into a rounded index and an out-of-range one into a torch ``RuntimeError``.

    :param observation: one observation or a batch, as passed to ``policy.predict``
    :param observation_space: the policy's observation space; nothing is checked unless it has a ``task_obs``
    :raises ValueError: if ``task_obs`` is missing, or a ``Discrete`` task is not an integer index in range
    """
    if not isinstance(observation_space, spaces.Dict) or TASK_KEY not in observation_space.spaces:
        return
    if not isinstance(observation, Mapping) or TASK_KEY not in observation:
        got = sorted(observation) if isinstance(observation, Mapping) else type(observation).__name__
        raise ValueError(f"A multi-task policy needs observations with {sorted(observation_space.spaces)} keys, got {got}")
    task_space = observation_space[TASK_KEY]
    if isinstance(task_space, spaces.Discrete):
        tasks = np.asarray(observation[TASK_KEY])
        start, n = int(task_space.start), int(task_space.n)
        if tasks.dtype.kind in "iu" and np.all((tasks >= start) & (tasks < start + n)):
            return
        for task in tasks.reshape(-1).tolist():  # the first invalid entry, with the task API's message
            check_task_index(task - start if isinstance(task, int) else task, n, TASK_KEY)


def task_indices(task_obs: th.Tensor, n_tasks: int) -> th.Tensor:
    """
    The task index of each sample, as a ``long`` tensor of shape ``(batch,)``.

    Accepts both forms the task shows up in: the raw index stored by SB3 replay buffers (shape ``(batch,)`` or
    ``(batch, 1)``) and the one-hot made by SB3's ``preprocess_obs`` (shape ``(batch, n_tasks)``, or
    ``(batch, 1, n_tasks)`` for a preprocessed replay sample).

    :param task_obs: the task part of a batch of observations
    :param n_tasks: number of tasks
    """
    if n_tasks == 1:  # a one-hot of Discrete(1) is [1.0], indistinguishable from the raw index 1
        return th.zeros(task_obs.shape[0], dtype=th.long, device=task_obs.device)
    if task_obs.ndim >= 2 and task_obs.shape[-1] == n_tasks:
        return task_obs.argmax(dim=-1).reshape(-1)
    return task_obs.reshape(-1).long()


def task_one_hot(task_obs: th.Tensor, n_tasks: int) -> th.Tensor:
    """:return: the one-hot task encoding ``(batch, n_tasks)`` of either form accepted by :func:`task_indices`."""
    return th.nn.functional.one_hot(task_indices(task_obs, n_tasks), n_tasks).float()


def per_task_mean(values: th.Tensor, task_idx: th.Tensor, n_tasks: int) -> tuple[th.Tensor, th.Tensor]:
    """
    Average per-sample values within each task, in one ``index_add``.

    :param values: ``(batch,)`` per-sample values (e.g. losses with ``reduction="none"``)
    :param task_idx: ``(batch,)`` long task indices
    :param n_tasks: number of tasks
    :return: ``(n_tasks,)`` per-task means (0 where a task has no sample) and the ``(n_tasks,)`` bool mask of the
        tasks present in the batch
    """
    sums = values.new_zeros(n_tasks).index_add(0, task_idx, values)
    counts = th.bincount(task_idx, minlength=n_tasks).to(values.dtype)
    return sums / counts.clamp(min=1), counts > 0


class TaskGrouping(NamedTuple):
    """Where each sample of a batch sits once the batch is split by task into a padded ``(T, slots, ...)`` block."""

    task: th.Tensor
    """``(batch,)`` task of each sample"""
    slot: th.Tensor
    """``(batch,)`` position of each sample within its task's rows"""
    n_slots: int
    """rows per task (the largest task count in the batch)"""


def group_by_task(task_idx: th.Tensor, n_tasks: int) -> TaskGrouping:
    """
    Route every sample to its own task: sample ``b`` goes to row ``slot[b]`` of block ``task_idx[b]``.

    A per-task computation on the ``(T, slots, ...)`` blocks costs one computation on the batch when the tasks are
    balanced (the task-balanced buffer), instead of ``T`` computations on every sample.

    :param task_idx: ``(batch,)`` long task indices
    :param n_tasks: number of tasks
    """
    counts = th.bincount(task_idx, minlength=n_tasks)
    order = th.argsort(task_idx, stable=True)
    starts = th.cumsum(counts, 0) - counts
    slot = th.empty_like(task_idx)
    slot[order] = th.arange(task_idx.shape[0], device=task_idx.device) - starts[task_idx[order]]
    return TaskGrouping(task_idx, slot, int(counts.max()))


def to_task_blocks(x: th.Tensor, grouping: TaskGrouping, n_tasks: int, dim: int = 0) -> th.Tensor:
    """
    ``(batch, ...)`` -> ``(T, slots, ...)``, zero padded.

    :param x: the batch; its batch axis is ``dim`` (the axes before it, e.g. a group of networks, are kept)
    :param grouping: the routing of the samples, from :func:`group_by_task`
    :param n_tasks: number of tasks ``T``
    :param dim: the batch axis of ``x``, replaced by the ``(T, slots)`` axes
    """
    out = x.new_zeros(*x.shape[:dim], n_tasks, grouping.n_slots, *x.shape[dim + 1 :])
    out[(slice(None),) * dim + (grouping.task, grouping.slot)] = x
    return out


def from_task_blocks(y: th.Tensor, grouping: TaskGrouping, dim: int = 0) -> th.Tensor:
    """
    ``(T, slots, ...)`` -> ``(batch, ...)`` in the original sample order (inverse of :func:`to_task_blocks`).

    :param y: the blocks, with the ``(T, slots)`` axes at ``dim`` and ``dim + 1``
    :param grouping: the routing of the samples, from :func:`group_by_task`
    :param dim: the first block axis of ``y``, replaced by the batch axis
    """
    return y[(slice(None),) * dim + (grouping.task, grouping.slot)]


class TaskBatch:
    """
    The task of every sample of a batch, derived once from the observations (:func:`task_indices`) and handed to
    every network that needs it: the task encoder and the one-hot read :attr:`index`, the per-task heads
    :attr:`grouping`.

    :param index: ``(batch,)`` long task indices
    :param n_tasks: number of tasks
    """

    def __init__(self, index: th.Tensor, n_tasks: int):
        self.index, self.n_tasks = index, n_tasks
        self._grouping: TaskGrouping | None = None

    @classmethod
    def from_obs(cls, observations: PyTorchObs, n_tasks: int) -> TaskBatch:
        """
        :param observations: a ``Dict`` observation batch, raw (as sampled from a replay buffer) or preprocessed
        :param n_tasks: number of tasks
        :return: the task batch a :class:`TaskObs` carries, else the one derived from ``observations["task_obs"]``
        """
        if isinstance(observations, TaskObs):
            return observations.task
        assert isinstance(observations, Mapping)
        return cls(task_indices(observations[TASK_KEY], n_tasks), n_tasks)

    @property
    def grouping(self) -> TaskGrouping:
        """The routing of the samples to their tasks (:func:`group_by_task`), computed on first use, then shared."""
        if self._grouping is None:
            self._grouping = group_by_task(self.index, self.n_tasks)
        return self._grouping


def apply_by_task(
    x: th.Tensor, task: TaskBatch | th.Tensor, n_tasks: int, n_groups: int, fn: Callable[[th.Tensor], th.Tensor]
) -> th.Tensor:
    """
    Run per-task networks on a batch: route the samples into per-task blocks, run ``fn`` on every block at once, and
    route the outputs back to the samples' order (the per-task heads of :mod:`mtsb3.mtsac.conditioning` and PaCo's
    :class:`~mtsb3.common.compositional.CompositionalTaskHeads`).

    :param x: ``(batch, in)`` (one group) or ``(n_groups, batch, in)``
    :param task: the task of each sample, a :class:`TaskBatch` (whose routing is shared with the other networks of the
        step) or ``(batch,)`` long task indices
    :param n_tasks: number of tasks ``T``
    :param n_groups: number of networks run side by side (e.g. the twin critics)
    :param fn: maps the blocks ``(n_groups * T, slots, in)`` to ``(n_groups * T, slots, out)``
    :return: ``(batch, out)`` or ``(n_groups, batch, out)``, matching ``x``
    """
    grouped = x.ndim == 3
    if not grouped:
        x = x.unsqueeze(0)
    grouping = (task if isinstance(task, TaskBatch) else TaskBatch(task, n_tasks)).grouping
    blocks = to_task_blocks(x, grouping, n_tasks, dim=1)  # (n_groups, T, slots, in)
    out = fn(blocks.reshape(n_groups * n_tasks, grouping.n_slots, -1))
    out = from_task_blocks(out.reshape(n_groups, n_tasks, grouping.n_slots, -1), grouping, dim=1)
    return out if grouped else out.squeeze(0)


class TaskObs(dict):
    """
    A ``Dict`` observation batch that carries its :class:`TaskBatch`: :class:`~mtsb3.MTSAC` derives the task of a
    replay sample once per gradient step, and the actor, the critics, their features extractors and the
    representation models of that step all read it from here (:meth:`TaskBatch.from_obs`).

    It is a ``dict``, so code that indexes the observation sees no difference; code that copies it into a plain
    ``dict`` (e.g. SB3's ``preprocess_obs``) derives the task again, unless it passes the task on.

    :param observations: the observation batch
    :param task: the task of its samples
    """

    def __init__(self, observations: Mapping[str, th.Tensor], task: TaskBatch):
        super().__init__(observations)
        self.task = task
