"""Pieces shared by the multi-task SAC algorithms (:class:`~mtsb3.MTSAC`, :class:`~mtsb3.distral.Distral`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch as th
from stable_baselines3.common.logger import Logger


def per_task_temperatures(log_ent_coef: th.Tensor, n_tasks: int, lr: float) -> tuple[th.Tensor, th.optim.Adam]:
    """
    One learned log temperature per task, each starting at SB3's initial value (``"auto_0.1"`` -> 0.1): mtrl's
    disentangled alpha (``log_alpha`` indexed by the task, mtrl/agent/sac.py).

    :param log_ent_coef: SB3's scalar learned log temperature (``SAC.log_ent_coef``)
    :param n_tasks: number of tasks
    :param lr: learning rate of the temperatures' Adam (SB3 uses ``lr_schedule(1)``)
    :return: the ``(n_tasks,)`` log temperatures and their optimizer
    """
    per_task = log_ent_coef.detach().repeat(n_tasks).requires_grad_(True)
    return per_task, th.optim.Adam([per_task], lr=lr)


def record_task_temperatures(logger: Logger, task_names: Sequence[str], log_ent_coef: th.Tensor) -> None:
    """Log each task's temperature as ``train/ent_coef/<task name>``."""
    for name, alpha in zip(task_names, th.exp(log_ent_coef.detach()).cpu().tolist(), strict=True):
        logger.record(f"train/ent_coef/{name}", alpha)


@contextmanager
def frozen(params: Iterable[th.nn.Parameter]) -> Iterator[None]:
    """
    Run the block with ``params`` as constants of the graph: no gradient is computed for them (the critic in the
    actor loss, whose weight gradients SB3 computes and then discards).
    """
    params = list(params)
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)
