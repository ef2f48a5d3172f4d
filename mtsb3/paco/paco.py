"""PaCo: multi-task SAC on parameter-compositional networks, with the paper's loss mask-out and w-reset."""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples

from mtsb3.common.compositional import CompositionalTaskHeads
from mtsb3.common.task import n_tasks_of, per_task_mean
from mtsb3.mtsac.mtsac import MTSAC
from mtsb3.mtsac.policies import MTSACPolicy
from mtsb3.recipes import paco

#: how w-reset draws a diverged task's new vector from the other tasks' (paco-mtrl's ``reset_task_method``)
W_RESET_METHODS = ("interpolate", "copy")


class PaCo(MTSAC):
    """
    PaCo (Sun, Zhang, Xu, Tomizuka, "PaCo: Parameter-Compositional Multi-Task Reinforcement Learning", NeurIPS 2022,
    https://arxiv.org/abs/2210.11653): :class:`~mtsb3.MTSAC` on networks whose per-task parameters are composed from a
    shared set, ``theta_tau = Phi w_tau`` (:func:`mtsb3.recipes.paco`, the default ``policy_kwargs``), plus the
    paper's two stabilisers (section 3.3; paco-mtrl, paco/algorithms/paco_mtsac.py, ``PaCoMTSacAlgorithm``):

    * **Loss mask-out** (``loss_mask_threshold``): at each gradient step, a task whose mean critic loss in the
      minibatch exceeds the threshold (or is not finite) is left out of that step's critic and actor losses, so that
      its diverging gradients do not reach the shared ``Phi``. paco-mtrl compares the task's summed SAC loss, whose
      divergence is the critic's, with 3e3 (``task_loss_threshold``); here the critic loss
      (``0.5 · sum over critics of TD²``) is compared, before the actor update, through MTSAC's
      :meth:`~mtsb3.MTSAC._loss_mask` hook. The per-task temperatures are not masked: they are not shared parameters.
    * **w-reset** (``w_reset``): after the update, the task vectors of the masked tasks are replaced, in the actor,
      the critic and the target critic alike, by a random combination of the other tasks' vectors
      (paco-mtrl's ``after_update``): ``"interpolate"``, uniform weights normalised to sum 1 (a random point of their
      convex hull); ``"copy"``, the vector of one other task drawn at random. ``Phi`` is kept, so the task restarts
      from a policy of the learned subspace. With no other task left (all tasks of the batch diverged), nothing is
      reset.

    ``masked_counts`` counts, per task, the gradient steps it was masked out (saved with the model); the number of
    masked tasks per step is logged as ``train/masked_tasks``. The draws of w-reset use torch's global RNG, so a run is
    reproducible from its seed.

    :param policy: the policy model (``"MultiTaskPolicy"``); without a ``task_heads_class`` in ``policy_kwargs`` the
        network is :func:`mtsb3.recipes.paco`'s (``K`` = 5, 3 x 400), under the given ``policy_kwargs``
    :param env: the multi-task env (a ``Discrete`` task_obs)
    :param loss_mask_threshold: mask out a task whose mean critic loss exceeds this (paco-mtrl: 3e3); ``None``: never
    :param w_reset: ``"interpolate"`` or ``"copy"``, how to reset a masked task's vector; ``None``: never (needs
        ``loss_mask_threshold``, which decides the tasks to reset)
    :param kwargs: the other arguments of :class:`~mtsb3.MTSAC` (``disentangled_alpha=True`` as the paper)
    :raises ValueError: for a bad threshold or reset method, or w-reset without parameter-compositional networks
    """

    def __init__(
        self,
        policy: str | type[MTSACPolicy],
        env: GymEnv | str,
        loss_mask_threshold: float | None = 3e3,
        w_reset: str | None = "interpolate",
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        policy_kwargs = dict(kwargs.pop("policy_kwargs", None) or {})
        if "task_heads_class" not in policy_kwargs:
            policy_kwargs = {**paco(), **policy_kwargs}
        super().__init__(policy, env, policy_kwargs=policy_kwargs, _init_setup_model=False, **kwargs)
        if loss_mask_threshold is not None and not loss_mask_threshold > 0:
            raise ValueError(f"loss_mask_threshold must be a loss > 0 or None (no mask-out), got {loss_mask_threshold!r}")
        if w_reset is not None and w_reset not in W_RESET_METHODS:
            raise ValueError(f"w_reset must be one of {W_RESET_METHODS} or None (no reset), got {w_reset!r}")
        if w_reset is not None and loss_mask_threshold is None:
            raise ValueError(f"w_reset={w_reset!r} resets the tasks that the mask-out leaves out: set loss_mask_threshold")
        self.loss_mask_threshold, self.w_reset = loss_mask_threshold, w_reset
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        # the task index is always needed: the compositional networks and the per-task losses are indexed by it
        self.n_tasks = n_tasks_of(self.observation_space, "PaCo (one task vector per task)")
        if self.task_names is None:
            self.task_names = [f"task_{i}" for i in range(self.n_tasks)]
        self.compositional_heads = [m for m in self.policy.modules() if isinstance(m, CompositionalTaskHeads)]
        if self.w_reset is not None and not self.compositional_heads:
            raise ValueError(
                f"w_reset={self.w_reset!r} resets task vectors, but the policy has no CompositionalTaskHeads: use "
                "policy_kwargs=mtsb3.recipes.paco() (or task_heads_class=CompositionalTaskHeads), or w_reset=None"
            )
        self.masked_counts = th.zeros(self.n_tasks, dtype=th.long, device=self.device)
        self._diverged: th.Tensor | None = None

    def _loss_mask(self, critic_loss: th.Tensor, task_idx: th.Tensor | None) -> th.Tensor | None:
        """Loss mask-out: keep the samples of the tasks whose mean critic loss is at most ``loss_mask_threshold``."""
        if self.loss_mask_threshold is None:
            return None
        assert task_idx is not None and self.n_tasks is not None
        task_loss, present = per_task_mean(critic_loss, task_idx, self.n_tasks)
        # "not <=": a nan loss counts as diverged
        self._diverged = present & ~(task_loss <= self.loss_mask_threshold)
        return ~self._diverged[task_idx]

    def _after_gradient_step(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        """Count the masked tasks and reset their task vectors (w-reset), after the step's updates."""
        logs = super()._after_gradient_step(replay_data)
        diverged, self._diverged = self._diverged, None
        if diverged is None:
            return logs
        self.masked_counts += diverged
        if self.w_reset is not None:
            self.reset_task_vectors(diverged)
        return {**logs, "masked_tasks": diverged.sum().float()}

    def reset_task_vectors(self, reset: th.Tensor) -> None:
        """
        w-reset: give each ``reset`` task a random combination of the other tasks' vectors (see the class docstring),
        the same combination in every compositional network. Tensor operations only, no host sync.

        :param reset: ``(n_tasks,)`` bool, the tasks to reset
        """
        assert self.n_tasks is not None and self.w_reset is not None
        sources = ~reset
        scores = th.rand(self.n_tasks, self.n_tasks, device=reset.device) * sources  # 0 for the reset tasks
        if self.w_reset == "interpolate":
            coefficients = scores / scores.sum(dim=1, keepdim=True).clamp(min=th.finfo(scores.dtype).tiny)
        else:
            coefficients = th.nn.functional.one_hot(scores.argmax(dim=1), self.n_tasks).to(scores.dtype)
        reset = reset & sources.any()  # no other task to draw from: keep the vectors
        for heads in self.compositional_heads:
            heads.reset_task_vectors(reset, coefficients)

    # -- checkpoints ---------------------------------------------------------------------------------------------------
    def _excluded_save_params(self) -> list[str]:
        # the networks are saved with the policy; the pending mask lives within one gradient step
        return [*super()._excluded_save_params(), "compositional_heads", "_diverged"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return state_dicts, [*variables, "masked_counts"]  # a tensor: saved (and mapped to the device) as log_ent_coef
