"""Multi-task SAC: SB3's SAC with per-task entropy temperatures, task loss weights and a gradient-combination hook."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples
from stable_baselines3.common.utils import polyak_update

from mtsb3.common.categorical import cross_entropy
from mtsb3.common.gradients import GradCombiner, make_grad_combiner
from mtsb3.common.overlap import OverlapCollectionMixin, check_overlap_env
from mtsb3.common.reward_scaling import TaskReturnScaler
from mtsb3.common.sac import frozen, per_task_temperatures, record_task_temperatures
from mtsb3.common.save_util import MultiTaskCheckpointMixin
from mtsb3.common.task import TASK_KEY, TaskBatch, TaskObs, discrete_n_tasks, n_tasks_of, per_task_mean
from mtsb3.common.task_encoder import load_task_embeddings
from mtsb3.mtsac.policies import MlpPolicy, MTSACPolicy, MultiInputPolicy, MultiTaskPolicy

SelfMTSAC = TypeVar("SelfMTSAC", bound="MTSAC")


def _optimizer_params(optimizer: th.optim.Optimizer) -> list[th.nn.Parameter]:
    return [param for group in optimizer.param_groups for param in group["params"]]


def _weighted(loss: th.Tensor, weights: th.Tensor | None, keep: th.Tensor | None) -> th.Tensor:
    """:return: the per-sample ``loss`` times the task loss ``weights``, and 0 where ``keep`` is False (if given)."""
    if weights is not None:
        loss = loss * weights
    # a select, not a product: a left-out loss is exactly 0 even where it overflowed (0 * inf is nan)
    return loss if keep is None else th.where(keep, loss, th.zeros_like(loss))


class MTSAC(OverlapCollectionMixin, MultiTaskCheckpointMixin, SAC):
    """
    Multi-task Soft Actor-Critic: SAC on a multi-task ``Dict`` observation (mtrl's ``sac.Agent``, mtrl/agent/sac.py; Meta-World
    paper https://arxiv.org/abs/1910.10897; CARE paper https://arxiv.org/abs/2102.06177).

    On top of SB3's SAC:

    * **Disentangled alpha** (``disentangled_alpha=True``): one learned log temperature per task, indexed by each
      sample's task. Both the entropy terms of the losses and the temperature loss use the sample's own task alpha.
      The temperature loss keeps SB3's ``-log alpha·(log π + H̄)`` form (mtrl uses ``alpha·(...)``; both have the same fixed
      point). The alphas are logged as ``train/ent_coef/<task name>``.
    * **Task loss weights** (``task_loss_weights=True``, Meta-World+ https://arxiv.org/abs/2505.11289): the per-sample
      critic and actor losses are weighted by ``n_tasks · softmax(-log alpha)[task]`` (detached), so tasks whose policy
      is still uncertain (large alpha) weigh less.
    * **Gradient combination** (``grad_method``, e.g. ``"pcgrad"``): the critic and actor losses are kept per sample,
      averaged per task, and the per-task losses go through a combiner from :mod:`mtsb3.common.gradients` (one per
      optimizer) instead of a plain mean. The loss weightings of non-negative losses (``"famo"``, ``"uw"``) weight the
      critic loss only (the actor loss is unbounded below); FAMO also gets the critic's task losses of the same batch
      after the step (one more critic forward pass).
    * The actor loss is differentiated with the critic parameters frozen, so the actor step does not compute critic
      weight gradients that SB3 then throws away; the twin critic is a fused ensemble (:class:`MTCritic`).
    * **mtrl's update schedule** (mtrl/agent/sac.py, ``Agent.update``; mtrl/experiment/multitask.py, ``run``): the actor
      and temperature are updated every ``actor_update_freq`` gradient steps, the target networks every
      ``target_update_interval`` gradient steps, both counted over the whole run (``_n_updates``, mtrl's step counter;
      SB3 counts ``target_update_interval`` within each ``train`` call, so with ``gradient_steps=1`` it updated every
      step whatever the interval), and the first ``train`` call runs ``initial_gradient_steps`` updates in a row
      (mtrl's burst of ``init_steps`` updates at the step where learning starts).
    * Checkpoints store the env id and the task names (``env_id``, ``task_names``), are written atomically, and
      include the global RNG states, so ``MTSAC.load(path, env, resume=True)`` plus ``load_replay_buffer`` continues
      the run exactly (with the same live env).
    * **Overlapped collection** (``overlap_collection=True``, with a ``SubprocVecEnv``): each rollout's gradient steps
      run while the sub-envs simulate the next vector step, so the next step's actions come from the policy before
      that update (the update sees data one vector step older than in SB3's loop); :mod:`mtsb3.common.overlap`.
    * **Categorical critic** (``policy_kwargs=dict(critic_type="categorical")``, BRC, Nauman et al. 2025,
      https://arxiv.org/abs/2505.23150): the Q-networks output logits over fixed atoms ``z``; the target is the target
      ensemble's mean distribution moved to ``r + gamma (1 - d) (z - alpha log pi(a'|s'))`` and projected back onto the atoms
      (:meth:`~mtsb3.common.categorical.CategoricalSupport.project`), the loss the cross-entropy summed over the
      Q-networks, and the actor maximises the expectation of the ensemble's mean distribution (BRC's ``update_critic``
      and ``update_actor``, naumix/BiggerRegularizedCategorical, jaxrl/agent/update.py).
    * **Per-task reward normalisation** (``normalize_task_returns=v_max``, BRC): each task's rewards are divided by a
      running estimate of its largest soft-return magnitude over ``v_max`` (:mod:`mtsb3.common.reward_scaling`); the
      statistics are updated with every stored transition, the divisors once per ``train`` call, and saved with the model.
    * **Gradient clipping** (``max_grad_norm``): the actor and critic gradients are clipped to this global norm before
      their optimizer steps (metaworld-algorithms, metaworld_algorithms/config/optim.py, ``OptimizerConfig.spawn``); the
      temperatures are not clipped, as there (metaworld_algorithms/rl/algorithms/mtsac.py, ``MTSACConfig``).

    The task index is read from the ``Discrete`` ``task_obs``; the multi-task options raise a ``ValueError`` for any
    other task space. The other parameters are those of :class:`stable_baselines3.SAC`.

    :param policy: the policy model (``"MultiInputPolicy"``/``"MultiTaskPolicy"``, ``"MlpPolicy"``, or a class)
    :param env: the multi-task env (e.g. ``make_mt_vec_env("MT-MetaWorld-MT10-v0")``)
    :param disentangled_alpha: one entropy temperature per task (needs ``ent_coef="auto"``)
    :param task_loss_weights: weight the per-task losses by ``softmax(-log alpha)`` (needs ``disentangled_alpha``)
    :param grad_method: name of a gradient combiner of :func:`mtsb3.common.gradients.make_grad_combiner`
    :param grad_method_kwargs: its kwargs
    :param overlap_collection: run the gradient steps while the sub-envs step (needs a ``SubprocVecEnv``)
    :param actor_update_freq: update the actor and the temperature every this many gradient steps (mtrl: 1 for its
        state agents, 2 for its pixel agents)
    :param initial_gradient_steps: gradient steps of the first ``train`` call, when learning starts, if more than
        ``gradient_steps`` (mtrl: ``init_steps``, 1500); 0 keeps SB3's schedule
    :param encoder_tau: Polyak coefficient of the target critic's features extractor (mtrl's ``encoder_tau``, 0.05: the
        critic encoder of CARE, FiLM, Soft Modularization), the rest of the critic using ``tau``; ``None``: ``tau``
        for the whole critic (SB3)
    :param max_grad_norm: clip the actor and critic gradients to this global L2 norm (``None``: no clipping)
    :param normalize_task_returns: the return bound ``v_max`` of BRC's per-task reward normalisation (BRC: 10, the
        categorical support's ``v_max``); ``None``: the rewards are used as they are
    :param kwargs: passed to :class:`stable_baselines3.SAC`
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "MultiInputPolicy": MultiInputPolicy,
        "MultiTaskPolicy": MultiTaskPolicy,
    }
    policy: MTSACPolicy

    def __init__(
        self,
        policy: str | type[MTSACPolicy],
        env: GymEnv | str,
        disentangled_alpha: bool = False,
        task_loss_weights: bool = False,
        grad_method: str | None = None,
        grad_method_kwargs: dict[str, Any] | None = None,
        overlap_collection: bool = False,
        actor_update_freq: int = 1,
        initial_gradient_steps: int = 0,
        encoder_tau: float | None = None,
        max_grad_norm: float | None = None,
        normalize_task_returns: float | None = None,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        self.overlap_collection = overlap_collection
        if overlap_collection:
            check_overlap_env(self.env)
        if actor_update_freq < 1 or initial_gradient_steps < 0:
            raise ValueError(
                f"actor_update_freq must be >= 1 and initial_gradient_steps >= 0, got {actor_update_freq} and "
                f"{initial_gradient_steps}"
            )
        if encoder_tau is not None and not 0.0 <= encoder_tau <= 1.0:
            raise ValueError(f"encoder_tau must be in [0, 1], got {encoder_tau}")
        for name, value in (("max_grad_norm", max_grad_norm), ("normalize_task_returns", normalize_task_returns)):
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"{name} must be a number > 0 or None (off), got {value!r}")
        self.max_grad_norm, self.normalize_task_returns = max_grad_norm, normalize_task_returns
        # BRC's per-task return statistics (built by _setup_model, or restored by load before it)
        self.return_scaler: TaskReturnScaler | None = None
        self._reward_scales: th.Tensor | None = None
        self.actor_update_freq, self.initial_gradient_steps = actor_update_freq, initial_gradient_steps
        self.encoder_tau = encoder_tau
        self.disentangled_alpha = disentangled_alpha
        self.task_loss_weights = task_loss_weights
        self.grad_method = grad_method
        self.grad_method_kwargs = grad_method_kwargs
        self._record_tasks()
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        needs_tasks = [
            name
            for name, on in (
                ("disentangled_alpha=True (one alpha per task)", self.disentangled_alpha),
                ("task_loss_weights=True", self.task_loss_weights),
                (f"grad_method={self.grad_method!r} (per-task losses)", self.grad_method is not None),
                ("normalize_task_returns (per-task reward scales)", self.normalize_task_returns is not None),
            )
            if on
        ]
        self.n_tasks: int | None = n_tasks_of(self.observation_space, " and ".join(needs_tasks)) if needs_tasks else None
        if self.task_loss_weights and not self.disentangled_alpha:
            raise ValueError("task_loss_weights=True weights tasks by their own alpha: it needs disentangled_alpha=True")
        if self.disentangled_alpha and not (isinstance(self.ent_coef, str) and self.ent_coef.startswith("auto")):
            raise ValueError(
                f"disentangled_alpha=True learns one alpha per task: it needs ent_coef='auto', got {self.ent_coef!r}"
            )
        if self.task_names is None and self.n_tasks is not None:
            self.task_names = [f"task_{i}" for i in range(self.n_tasks)]
        encoder_kwargs = dict(self.policy_kwargs.get("task_encoder_kwargs") or {})
        if encoder_kwargs.get("pretrained_embeddings") is not None:
            # read the file once, in task order: the checkpoint then holds the table and never needs the file again
            names = encoder_kwargs.pop("task_names", self.task_names)
            encoder_kwargs["pretrained_embeddings"] = load_task_embeddings(encoder_kwargs["pretrained_embeddings"], names)
            self.policy_kwargs = {**self.policy_kwargs, "task_encoder_kwargs": encoder_kwargs}
        super()._setup_model()
        if self.disentangled_alpha:
            assert self.log_ent_coef is not None and self.n_tasks is not None
            self.log_ent_coef, self.ent_coef_optimizer = per_task_temperatures(
                self.log_ent_coef, self.n_tasks, self.lr_schedule(1)
            )
        self.critic_grad_combiner: GradCombiner | None = None
        self.actor_grad_combiner: GradCombiner | None = None
        if self.grad_method is not None:
            kwargs = dict(self.grad_method_kwargs or {})
            seed = self.seed
            self.critic_grad_combiner = make_grad_combiner(self.grad_method, n_tasks=self.n_tasks, seed=seed, **kwargs)
            # a weighting of non-negative losses (FAMO's log losses, uncertainty weighting) leaves the actor loss, which is
            # unbounded below, to the plain mean: FAMO's MTRL agent weights the critic only (Cranial-XIX/FAMO,
            # mtrl_files/famo.py, update_critic)
            if not getattr(self.critic_grad_combiner, "needs_positive_losses", False):
                seed = None if seed is None else seed + 1
                self.actor_grad_combiner = make_grad_combiner(self.grad_method, n_tasks=self.n_tasks, seed=seed, **kwargs)
        if self.normalize_task_returns is not None and self.return_scaler is None:
            assert self.n_tasks is not None
            self.return_scaler = TaskReturnScaler(self.n_tasks, self.gamma, self.normalize_task_returns)

    # -- training ----------------------------------------------------------------------------------------------------
    def _apply_update(
        self,
        optimizer: th.optim.Optimizer,
        per_sample_loss: th.Tensor,
        task_idx: th.Tensor | None = None,
        params: list[th.nn.Parameter] | None = None,
        combiner: GradCombiner | None = None,
        loss_fn: Callable[[], th.Tensor] | None = None,
    ) -> th.Tensor:
        """
        One optimizer step on a per-sample loss.

        Without a combiner this is SB3's ``mean -> backward -> step``. With one, the loss is averaged within each task
        (:func:`~mtsb3.common.task.per_task_mean`) and ``combiner.backward(task_losses, params, task_present, task_idx)``
        writes the combined gradient into ``params``. A combiner that learns from the change of the losses across the
        step (FAMO, ``needs_losses_after_step``) then gets the task losses of the same batch, evaluated again by
        ``loss_fn`` without a graph (the FAMO paper's Algorithm 2, Appendix C).

        :param optimizer: the optimizer to step
        :param per_sample_loss: ``(batch,)`` losses
        :param task_idx: ``(batch,)`` task indices (needed with a combiner)
        :param params: the parameters the combiner writes gradients to
        :param combiner: a gradient combiner, or ``None``
        :param loss_fn: computes ``per_sample_loss`` again (with the stepped parameters); needed by such a combiner
        :return: the mean loss, detached
        """
        optimizer.zero_grad()
        if combiner is None:
            loss = per_sample_loss.mean()
            loss.backward()
        else:
            assert task_idx is not None and params is not None and self.n_tasks is not None
            task_losses, task_present = per_task_mean(per_sample_loss, task_idx, self.n_tasks)
            combiner.backward(task_losses, params, task_present, task_idx)
            loss = per_sample_loss.mean()
        if self.max_grad_norm is not None and optimizer is not self.ent_coef_optimizer:
            th.nn.utils.clip_grad_norm_(_optimizer_params(optimizer), self.max_grad_norm)
        optimizer.step()
        if combiner is not None and getattr(combiner, "needs_losses_after_step", False):
            if loss_fn is None:
                raise ValueError(f"{type(combiner).__name__} needs the losses after the step: pass loss_fn")
            with th.no_grad():
                combiner.after_step(per_task_mean(loss_fn(), task_idx, self.n_tasks)[0])
        return loss.detach()

    def _with_task(self, replay_data: ReplayBufferSamples) -> ReplayBufferSamples:
        """
        The one derivation of the task index of a gradient step: the minibatch's observations become
        :class:`~mtsb3.common.task.TaskObs`, from which the losses, the actor, the critics, their features extractors
        and the representation models of the step all read it. The next observations share it: an env switches task
        only at a reset (``MTEnv.set_task_state``) and SB3 stores an episode's terminal observation as the next one, so
        a transition has one task (mtrl reads both from the replay buffer's env index, mtrl/replay_buffer.py).

        :param replay_data: a minibatch sampled from the replay buffer
        :return: the same minibatch, unchanged without a ``Discrete`` task_obs
        """
        n_tasks = discrete_n_tasks(self.observation_space)
        if n_tasks is None:
            return replay_data
        task = TaskBatch.from_obs(replay_data.observations, n_tasks)
        return replay_data._replace(
            observations=TaskObs(replay_data.observations, task),  # type: ignore[arg-type]
            next_observations=TaskObs(replay_data.next_observations, task),  # type: ignore[arg-type]
        )

    def _task_index(self, observations: Any) -> th.Tensor | None:
        """:return: the task indices the losses are split by (``None`` without a per-task option)."""
        return None if self.n_tasks is None else TaskBatch.from_obs(observations, self.n_tasks).index

    def _optimizers(self) -> list[th.optim.Optimizer]:
        """:return: the optimizers whose learning rate follows ``learning_rate`` (subclasses add theirs)"""
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        return optimizers

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self._optimizers())
        if self._n_updates == 0:
            # mtrl's burst: init_steps updates in a row at the step where learning starts
            gradient_steps = max(gradient_steps, self.initial_gradient_steps)
        self._reward_scales = self._task_reward_scales()
        # detached tensors, read once at the end: no device sync per gradient step
        logs: dict[str, list[th.Tensor]] = defaultdict(list)
        for _ in range(gradient_steps):
            replay_data = self._with_task(self.replay_buffer.sample(batch_size, env=self._vec_normalize_env))  # type: ignore[union-attr]
            for key, value in self._sac_step(replay_data).items():
                logs[key].append(value)
            if self._n_updates % self.target_update_interval == 0:
                self._update_target_networks()
            self._n_updates += 1
            for key, value in self._after_gradient_step(replay_data).items():
                logs[key].append(value)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", th.stack(values).mean().item())
        if self.disentangled_alpha:
            assert self.log_ent_coef is not None and self.task_names is not None
            record_task_temperatures(self.logger, self.task_names, self.log_ent_coef)

    def _after_gradient_step(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        """
        Hook run after each SAC gradient step (and target update), on the same minibatch, with ``_n_updates`` already
        counting this step: SAC-AE, DeepMDP and HiP-BMDP run their representation updates here.

        :param replay_data: the minibatch of this gradient step
        :return: detached scalar losses to log as ``train/<name>`` (averaged over the gradient steps)
        """
        return {}

    def _loss_mask(self, critic_loss: th.Tensor, task_idx: th.Tensor | None) -> th.Tensor | None:
        """
        Hook: which samples' losses enter this gradient step's critic and actor updates, decided on the step's critic
        loss (PaCo's loss mask-out, :class:`mtsb3.paco.PaCo`, leaves out the tasks whose loss diverges).

        :param critic_loss: ``(batch,)`` detached per-sample critic losses (before the task loss weights)
        :param task_idx: ``(batch,)`` task indices (``None`` without a per-task option)
        :return: ``(batch,)`` bool, True for the samples to keep; ``None`` keeps them all (MTSAC)
        """
        return None

    def _update_target_networks(self) -> None:
        """
        Polyak-average the target critic (mtrl's ``sac.Agent.update``, step 4): its features extractor with
        ``encoder_tau`` (when set), the rest with ``tau``.
        """
        if self.encoder_tau is None:
            polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
        else:
            # paired by position (the online critic may name a shared module differently from the target's copy)
            pairs = list(zip(self.critic.named_parameters(), self.critic_target.parameters(), strict=True))
            for in_encoder, tau in ((True, self.encoder_tau), (False, self.tau)):
                chosen = [(p, t) for (name, p), t in pairs if name.startswith("features_extractor.") == in_encoder]
                polyak_update([p for p, _ in chosen], [t for _, t in chosen], tau)
        polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

    def _sac_step(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        """
        One SAC update on a minibatch: temperature, critic, actor.

        :return: the detached ``ent_coef``, ``critic_loss``, ``actor_loss`` (and ``ent_coef_loss``) of the step
        """
        logs: dict[str, th.Tensor] = {}
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        task_idx = self._task_index(replay_data.observations)

        if self.use_sde:
            self.actor.reset_noise()

        # mtrl updates the actor and the temperature every actor_update_freq steps only (the critic every step)
        update_actor = self._n_updates % self.actor_update_freq == 0
        if update_actor:
            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)

        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            # each sample uses the temperature of its own task (a scalar without disentangled alpha)
            log_alpha = self.log_ent_coef[task_idx] if self.disentangled_alpha else self.log_ent_coef
            ent_coef = th.exp(log_alpha.detach())
            assert isinstance(self.target_entropy, float)
            if update_actor:
                # the temperatures are independent per task: no gradient combination for them
                ent_coef_loss = -(log_alpha * (log_prob + self.target_entropy).detach())
                logs["ent_coef_loss"] = self._apply_update(self.ent_coef_optimizer, ent_coef_loss)
        else:
            ent_coef = self.ent_coef_tensor
        logs["ent_coef"] = ent_coef.mean().detach()

        weights = None
        if self.task_loss_weights:
            assert self.log_ent_coef is not None and task_idx is not None
            weights = (self.n_tasks * th.softmax(-self.log_ent_coef.detach(), dim=0))[task_idx]

        rewards = replay_data.rewards
        if self._reward_scales is not None:
            assert task_idx is not None
            rewards = rewards / self._reward_scales[task_idx].reshape(-1, 1)  # BRC's per-task reward normalisation
        make_loss = self._regression_critic_loss if self.critic.support is None else self._categorical_critic_loss
        # the target is computed once; FAMO evaluates the loss again after the step against the same target
        loss_of_critic = make_loss(replay_data, rewards, ent_coef, discounts)
        critic_loss = loss_of_critic()
        keep = self._loss_mask(critic_loss.detach(), task_idx)

        def critic_loss_fn() -> th.Tensor:
            return _weighted(loss_of_critic(), weights, keep)

        critic_loss = _weighted(critic_loss, weights, keep)
        critic_params = _optimizer_params(self.critic.optimizer)
        logs["critic_loss"] = self._apply_update(
            self.critic.optimizer, critic_loss, task_idx, critic_params, self.critic_grad_combiner, critic_loss_fn
        )

        if update_actor:
            logs["actor_loss"] = self._actor_step(replay_data, actions_pi, log_prob, ent_coef, task_idx, weights, keep)
        # (SB3's order of the train/ keys)
        return {key: logs[key] for key in ("ent_coef", "actor_loss", "critic_loss", "ent_coef_loss") if key in logs}

    def _regression_critic_loss(
        self, replay_data: ReplayBufferSamples, rewards: th.Tensor, ent_coef: th.Tensor, discounts: th.Tensor | float
    ) -> Callable[[], th.Tensor]:
        """
        :return: a function of no argument giving ``(batch,)`` SB3's critic loss per sample (0.5 · the sum over critics of
            the squared soft TD error), against a target computed once, here
        """
        with th.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)
            next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
            next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
            next_q_values = next_q_values - (ent_coef * next_log_prob).reshape(-1, 1)
            target_q_values = rewards + (1 - replay_data.dones) * discounts * next_q_values

        def loss() -> th.Tensor:
            current_q_values = th.cat(self.critic(replay_data.observations, replay_data.actions), dim=1)
            return 0.5 * (current_q_values - target_q_values).pow(2).sum(dim=1)

        return loss

    def _categorical_critic_loss(
        self, replay_data: ReplayBufferSamples, rewards: th.Tensor, ent_coef: th.Tensor, discounts: th.Tensor | float
    ) -> Callable[[], th.Tensor]:
        """
        :return: a function of no argument giving ``(batch,)`` BRC's critic loss per sample (jaxrl/agent/update.py,
            ``update_critic``): the cross-entropy between each Q-network's logits and the projected soft Bellman target
            (computed once, here), summed over the Q-networks
        """
        support = self.critic.support
        assert support is not None
        with th.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)
            # one target distribution: the target ensemble's mean (BRC), not the minimum of the twin critics
            next_logits = self.critic_target.q_outputs(replay_data.next_observations, next_actions)
            next_probs = th.softmax(next_logits, dim=-1).mean(dim=0)
            next_atoms = support.atoms - (ent_coef * next_log_prob).reshape(-1, 1)
            target_probs = support.project(rewards + (1 - replay_data.dones) * discounts * next_atoms, next_probs)

        def loss() -> th.Tensor:
            return cross_entropy(self.critic.q_outputs(replay_data.observations, replay_data.actions), target_probs).sum(dim=0)

        return loss

    def _actor_step(
        self,
        replay_data: ReplayBufferSamples,
        actions_pi: th.Tensor,
        log_prob: th.Tensor,
        ent_coef: th.Tensor,
        task_idx: th.Tensor | None,
        weights: th.Tensor | None,
        keep: th.Tensor | None = None,
    ) -> th.Tensor:
        """:return: the detached actor loss of one actor update (critic frozen), over the samples ``keep`` selects"""
        critic_params = _optimizer_params(self.critic.optimizer)
        # the critic is a constant of the actor loss: skip the critic weight gradients SB3 computes and discards
        with frozen(critic_params):
            q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
        if self.critic.support is None:
            min_qf_pi, _ = th.min(q_values_pi, dim=1)
        else:  # BRC's update_actor: the expectation of the ensemble's mean distribution
            min_qf_pi = q_values_pi.mean(dim=1)
        actor_loss = _weighted(ent_coef * log_prob - min_qf_pi, weights, keep)
        actor_params = _optimizer_params(self.actor.optimizer)
        return self._apply_update(self.actor.optimizer, actor_loss, task_idx, actor_params, self.actor_grad_combiner)

    def learn(
        self: SelfMTSAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "MTSAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMTSAC:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    # -- per-task reward normalisation (BRC) ----------------------------------------------------------------------------
    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """SB3's, after recording the transitions' rewards in the per-task return statistics (``normalize_task_returns``)."""
        if self.return_scaler is not None:
            obs = self._last_obs if self._vec_normalize_env is None else self._last_original_obs
            original = reward if self._vec_normalize_env is None else self._vec_normalize_env.get_original_reward()
            truncated = np.array([info.get("TimeLimit.truncated", False) for info in infos], dtype=bool)
            ended = np.asarray(dones, dtype=bool)
            assert isinstance(obs, dict)
            self.return_scaler.update(np.asarray(obs[TASK_KEY]).reshape(-1), original, ended & ~truncated, ended & truncated)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def _task_reward_scales(self) -> th.Tensor | None:
        """:return: ``(n_tasks,)`` the divisors of each task's rewards for this ``train`` call (``None``: not normalised)"""
        if self.return_scaler is None:
            return None
        # BRC normalises a batch with the temperature before its updates (train.py, RewardNormalizer.normalize)
        alpha = th.exp(self.log_ent_coef.detach()) if self.log_ent_coef is not None else self.ent_coef_tensor
        assert isinstance(self.target_entropy, float)
        return self.return_scaler.scales(alpha, self.target_entropy)

    # -- checkpoints ---------------------------------------------------------------------------------------------------
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "critic_grad_combiner", "actor_grad_combiner", "_reward_scales"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        for name in ("critic_grad_combiner", "actor_grad_combiner"):
            # a combiner with state (e.g. GradNorm's task weights) is an nn.Module: saved like the networks
            if isinstance(getattr(self, name, None), th.nn.Module):
                state_dicts.append(name)
        return state_dicts, variables
