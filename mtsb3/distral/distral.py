"""Distral: robust multitask RL by distilling a shared policy (Teh et al. 2017), on SB3's SAC."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.common.utils import polyak_update

from mtsb3.common.sac import frozen, per_task_temperatures, record_task_temperatures
from mtsb3.common.save_util import MultiTaskCheckpointMixin
from mtsb3.common.task import n_tasks_of
from mtsb3.distral.policies import DistralPolicy, MlpPolicy, MultiInputPolicy, MultiTaskPolicy

SelfDistral = TypeVar("SelfDistral", bound="Distral")


def gaussian_kl(mean_p: th.Tensor, log_std_p: th.Tensor, mean_q: th.Tensor, log_std_q: th.Tensor) -> th.Tensor:
    """
    ``KL(N(mean_p, std_p^2) || N(mean_q, std_q^2))`` of diagonal Gaussians, summed over the last dimension.

    For two tanh-squashed Gaussians it is also the KL of the squashed policies (KL is invariant under the bijection).
    """
    var_p, var_q = th.exp(2 * log_std_p), th.exp(2 * log_std_q)
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5).sum(dim=-1)


class Distral(MultiTaskCheckpointMixin, SAC):
    """
    Distral (Teh et al. 2017, https://arxiv.org/abs/1707.04175) with SAC task policies (mtrl's ``distral.Agent``,
    mtrl/agent/distral.py).

    Each task ``i`` has its own SAC actor ``π_i`` and critics ``Q_i`` (stacked into one batched network,
    :class:`~mtsb3.distral.policies.DistralPolicy`); a distilled policy ``π0`` is shared by all tasks. Task ``i``
    maximises the KL- and entropy-regularised return of the paper (eq. 2), i.e. the reward
    ``r + (alpha/beta) log π0(a|s) - (1/beta) log π_i(a|s)`` with ``alpha = distral_alpha`` and ``beta = distral_beta``:

    * critic target ``y = r + gamma (min Q_i,targ(s', a') + (alpha/beta) log π0(a'|s') - (1/beta) log π_i(a'|s'))``
      with ``a' ~ π_i(s')``;
    * actor loss ``E[(1/beta) log π_i(a|s) - (alpha/beta) log π0(a|s) - min Q_i(s, a)]``, ``a ~ π_i(s)`` (reparametrised);
    * π0 loss ``E_s[KL(π_i(.|s) || π0(.|s))]`` over every task's own states, in closed form (Gaussians before the tanh,
      π_i fixed); its gradient is that of the paper's distillation objective ``-E_{a~π_i} log π0(a|s)``.

    ``distral_beta="auto"`` learns ``1/beta`` per task as SAC learns its temperature (target entropy ``-|A|`` of ``π_i``,
    initial value 1; ``"auto_0.1"`` starts at 0.1), so ``(1 - alpha)/beta`` plays SAC's entropy coefficient and
    ``alpha/beta`` the KL coefficient. A float fixes ``beta``.

    Fixes of the reference (README, "Differences from mtrl and mtenv"): every task policy and critic trains on its own task's
    transitions only (each sample is routed to the networks of its task; the reference updates every task agent on the whole
    mixed batch), and ``log π0`` is evaluated at the task policy's action ``a'`` (the reference uses π0's own fresh sample).
    Unlike the reference, π_i's actor loss has the ``log π0`` term of the paper, and π0 is fitted with ``KL(π_i || π0)`` (the
    paper's direction; the reference uses ``KL(π0 || π_i)``). ``predict`` acts with each observation's task policy
    (the reference evaluates with π0's mean, which cannot tell tasks apart when the state does not).

    It needs a ``Dict`` observation with a ``Discrete`` ``task_obs``. The other parameters are SAC's (no ``ent_coef``:
    it is ``distral_beta``; no gSDE).

    :param distral_alpha: ``alpha`` in ``[0, 1]``: the share of the regularisation that pulls towards π0 (1: pure KL to π0,
        0: pure entropy, independent SAC learners)
    :param distral_beta: ``beta > 0``, the inverse temperature of the regularisation, or ``"auto"`` / ``"auto_<1/beta>"``
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "MultiInputPolicy": MultiInputPolicy,
        "MultiTaskPolicy": MultiTaskPolicy,
    }
    policy: DistralPolicy

    def __init__(
        self,
        policy: str | type[DistralPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        distral_alpha: float = 0.5,
        distral_beta: float | str = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if not 0.0 <= distral_alpha <= 1.0:
            raise ValueError(f"distral_alpha must be in [0, 1], got {distral_alpha}")
        if isinstance(distral_beta, str):
            if not distral_beta.startswith("auto"):
                raise ValueError(f"distral_beta must be a positive float, 'auto' or 'auto_<1/beta>', got {distral_beta!r}")
            ent_coef: str | float = distral_beta
        elif distral_beta > 0:
            ent_coef = 1.0 / distral_beta
        else:
            raise ValueError(f"distral_beta must be > 0, got {distral_beta}")
        self.distral_alpha, self.distral_beta = distral_alpha, distral_beta
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            target_entropy=target_entropy,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self._record_tasks()
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self.n_tasks = n_tasks_of(self.observation_space, "Distral (one policy per task)")
        super()._setup_model()
        self.distilled = self.policy.distilled
        if self.log_ent_coef is not None:
            # one learned temperature 1/beta per task, as MTSAC's disentangled alpha
            self.log_ent_coef, self.ent_coef_optimizer = per_task_temperatures(
                self.log_ent_coef, self.n_tasks, self.lr_schedule(1)
            )

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer, self.distilled.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)

        # detached tensors, read once at the end: no device sync per gradient step
        logs: dict[str, list[th.Tensor]] = defaultdict(list)
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            for key, value in self._distral_step(replay_data).items():
                logs[key].append(value)
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", th.stack(values).mean().item())
        if self.log_ent_coef is not None and self.task_names is not None:
            record_task_temperatures(self.logger, self.task_names, self.log_ent_coef)

    def _temperature_step(self, log_prob: th.Tensor, task: th.Tensor, logs: dict[str, th.Tensor]) -> th.Tensor:
        """Update the per-task temperatures ``1/beta`` (when learned); :return: each sample's temperature (detached)."""
        if self.ent_coef_optimizer is None or self.log_ent_coef is None:
            return self.ent_coef_tensor.expand(task.shape[0])
        log_temperature = self.log_ent_coef[task]
        assert isinstance(self.target_entropy, float)
        ent_coef_loss = -(log_temperature * (log_prob + self.target_entropy).detach()).mean()
        self.ent_coef_optimizer.zero_grad()
        ent_coef_loss.backward()
        self.ent_coef_optimizer.step()
        logs["ent_coef_loss"] = ent_coef_loss.detach()
        return th.exp(log_temperature.detach())

    @staticmethod
    def _step(optimizer: th.optim.Optimizer, loss: th.Tensor) -> th.Tensor:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    def _distral_step(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        """
        One update of the temperatures, the task critics, the task policies and π0 on a minibatch.

        :return: the detached ``ent_coef``, ``actor_loss``, ``critic_loss``, ``distill_kl`` (and ``ent_coef_loss``)
        """
        logs: dict[str, th.Tensor] = {}
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        # each sample goes to its own task's networks (a fix of mtrl, see README "Differences from mtrl and mtenv":
        # no task agent trains on other tasks' data); a transition has one task, so s' is routed as s
        env_obs, grouping = self.policy.split_obs(replay_data.observations)
        next_env_obs = self.policy.env_obs(replay_data.next_observations)

        actions_pi, gaussian_pi, log_prob, mean_i, log_std_i = self.actor.sample(env_obs, grouping)
        temperature = self._temperature_step(log_prob, grouping.task, logs)
        kl_coef = self.distral_alpha * temperature  # alpha/beta
        logs["ent_coef"] = temperature.mean()

        with th.no_grad():
            next_actions, next_gaussian, next_log_prob, _, _ = self.actor.sample(next_env_obs, grouping)
            # log π0 at the task policy's own next action a' (a fix of mtrl, see the class docstring)
            next_log_prob_0 = self._distilled_log_prob(next_env_obs, next_actions, next_gaussian)
            next_q_values = self.critic_target(next_env_obs, next_actions, grouping).min(dim=1).values
            soft_value = next_q_values + kl_coef * next_log_prob_0 - temperature * next_log_prob
            target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * soft_value.reshape(-1, 1)

        current_q_values = self.critic(env_obs, replay_data.actions, grouping)
        critic_loss = 0.5 * (current_q_values - target_q_values).pow(2).sum(dim=1).mean()
        logs["critic_loss"] = self._step(self.critic.optimizer, critic_loss)

        # the soft-optimal regularised policy is ∝ π0^alpha exp(beta Q): reparametrised SAC loss with the log π0 term
        # the critic and π0 are constants of the actor loss: freeze the critic so that its weight gradients are not
        # computed, and take π0's parameters detached (one π0 forward serves this loss and the distillation)
        with frozen(self.critic.parameters()):
            min_qf_pi = self.critic(env_obs, actions_pi, grouping).min(dim=1).values
        mean_0, log_std_0, _ = self.distilled.get_action_dist_params(env_obs)
        dist_0 = self.distilled.action_dist.proba_distribution(mean_0.detach(), log_std_0.detach())
        log_prob_0 = dist_0.log_prob(actions_pi, gaussian_pi)
        actor_loss = (temperature * log_prob - kl_coef * log_prob_0 - min_qf_pi).mean()
        logs["actor_loss"] = self._step(self.actor.optimizer, actor_loss)

        # distillation: π0 towards every task policy on that task's states
        distill_loss = gaussian_kl(mean_i.detach(), log_std_i.detach(), mean_0, log_std_0).mean()
        logs["distill_kl"] = self._step(self.distilled.optimizer, distill_loss)
        # (the order of the train/ keys before the split of this method)
        order = ("ent_coef", "actor_loss", "critic_loss", "distill_kl", "ent_coef_loss")
        return {key: logs[key] for key in order if key in logs}

    def _distilled_log_prob(self, env_obs: th.Tensor, actions: th.Tensor, gaussian_actions: th.Tensor) -> th.Tensor:
        """log π0(a|s) at given actions, with their pre-tanh values (exact, no ``atanh`` of actions near ±1)."""
        mean, log_std, _ = self.distilled.get_action_dist_params(env_obs)
        dist = self.distilled.action_dist.proba_distribution(mean, log_std)
        return dist.log_prob(actions, gaussian_actions)

    def distral_kl(self, obs: dict[str, th.Tensor], n_samples: int = 1) -> th.Tensor:
        """
        Monte-Carlo estimate of ``KL(π_i(.|s) || π0(.|s))`` from the regularised reward's terms,
        ``E_{a~π_i}[log π_i(a|s) - log π0(a|s)]``, for each observation (``(batch,)``).

        :param obs: a batch of observations, as tensors
        :param n_samples: actions drawn per observation
        """
        env_obs, grouping = self.policy.split_obs(obs)
        total = env_obs.new_zeros(env_obs.shape[0])
        with th.no_grad():
            for _ in range(n_samples):
                actions, gaussian, log_prob, _, _ = self.actor.sample(env_obs, grouping)
                total += log_prob - self._distilled_log_prob(env_obs, actions, gaussian)
        return total / n_samples

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "distilled"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "distilled.optimizer"], variables
