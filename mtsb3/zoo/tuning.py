"""The tuning objective: the score of an evaluation, and the callback that reports it to the Optuna trial."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

if TYPE_CHECKING:
    import optuna


def evaluation_score(eval_callback: Any) -> float:
    """
    The tuning objective from an evaluation callback: the mean success rate over the tasks where success is defined,
    the mean reward where it is not (e.g. DMC).

    :param eval_callback: a ``MultiTaskEvalCallback`` (uses its per-task results) or a plain ``EvalCallback``
    """
    if getattr(eval_callback, "last_results", None):  # MultiTaskEvalCallback: success where defined, else reward
        return float(eval_callback.last_score)
    success_buffer = getattr(eval_callback, "_is_success_buffer", None)
    if success_buffer:
        return float(np.mean(success_buffer))
    return float(eval_callback.last_mean_reward)


class TrialReportCallback(BaseCallback):
    """
    ``callback_after_eval`` of a trial's eval callback: reports :func:`evaluation_score` to the trial and stops the
    training when Optuna's pruner says so (rl-zoo's ``TrialEvalCallback``, for any eval callback).

    :param trial: the running Optuna trial
    """

    def __init__(self, trial: optuna.Trial):
        super().__init__()
        self.trial = trial
        self.eval_idx = 0
        self.is_pruned = False
        self.last_score: float | None = None

    def _on_step(self) -> bool:
        self.eval_idx += 1
        self.last_score = evaluation_score(self.parent)
        self.trial.report(self.last_score, self.eval_idx)
        if self.trial.should_prune():
            self.is_pruned = True
            return False
        return True
