"""
How the SAC actor bounds its log standard deviation: SB3's hard clamp, or mtrl's tanh squashing into the bounds.

mtrl's actor (mtrl/agent/components/actor.py, ``Actor.forward``, after Yarats' pytorch_sac) maps the raw output
``x`` into ``[lo, hi]`` smoothly: ``log_std = lo + 0.5 (hi - lo) (tanh(x) + 1)``. A fresh actor (``x`` near 0)
therefore starts in the middle of the bounds, ``log_std = -9`` with mtrl's ``log_std_bounds = [-20, 2]``, where
SB3's ``clamp(x, -20, 2)`` starts near ``log_std = 0``; the gradient never vanishes at the bounds either.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN

#: SB3's clamp bounds, which are also mtrl's MetaWorld ``actor.log_std_bounds`` (config/agent/actor)
DEFAULT_LOG_STD_BOUNDS: tuple[float, float] = (float(LOG_STD_MIN), float(LOG_STD_MAX))


def check_log_std_bounds(bounds: Sequence[float]) -> tuple[float, float]:
    """
    :param bounds: ``(lo, hi)`` (a YAML list is fine)
    :return: the bounds as a tuple of floats
    :raises ValueError: unless there are two finite numbers with ``lo < hi``
    """
    values = tuple(float(b) for b in bounds)
    if len(values) != 2 or not values[0] < values[1] or not all(abs(v) < float("inf") for v in values):
        raise ValueError(f"log_std_bounds must be two finite numbers (lo, hi) with lo < hi, got {tuple(bounds)!r}")
    return values  # type: ignore[return-value]


def bound_log_std(log_std: th.Tensor, bounds: tuple[float, float] = DEFAULT_LOG_STD_BOUNDS, squash: bool = False) -> th.Tensor:
    """
    Bring the actor's raw log std into ``bounds``.

    :param log_std: the raw network output
    :param bounds: ``(lo, hi)``
    :param squash: ``True``: mtrl's ``lo + 0.5 (hi - lo) (tanh(x) + 1)``; ``False``: SB3's ``clamp(x, lo, hi)``
    :return: the bounded log std
    """
    lo, hi = bounds
    if squash:
        return lo + 0.5 * (hi - lo) * (th.tanh(log_std) + 1.0)
    return th.clamp(log_std, lo, hi)
