"""DeepMDP: SAC-AE whose latent is trained to predict the next latent and the reward (mtrl/agent/deepmdp.py)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples

from mtsb3.common.task import ENV_KEY
from mtsb3.deepmdp.policies import DeepMDPPolicy, MultiInputPolicy, MultiTaskPolicy, transition_loss
from mtsb3.sac_ae import SACAE, reconstruction_loss


class DeepMDP(SACAE):
    """
    DeepMDP (Gelada et al., "DeepMDP: Learning Continuous Latent Space Models for Representation Learning",
    https://arxiv.org/abs/1906.02736) on top of SAC, as mtrl's ``deepmdp.Agent``.

    After each :class:`~mtsb3.MTSAC` step, on a minibatch ``(s, a, r, s')``:

    1. **Transition and reward**: ``h = encode(s)``, ``(mu, sigma) = T([h, a])``, ``h' = encode(s')`` (no
       gradient); the loss is :func:`~mtsb3.deepmdp.policies.transition_loss` ``mean(0.5 ((mu - h') / sigma)² +
       log sigma)`` plus ``MSE(R(ĥ'), r)``, where ``ĥ'`` is a sample of ``T`` (``mu`` for the deterministic model).
       It trains the transition model, the reward decoder and the encoder (unless it is the identity).
    2. **Reconstruction** (pixel decoder only, every ``decoder_update_freq`` steps): decode **s'** from the predicted
       next latent ``T([encode(s), a])``, with SAC-AE's loss; it trains the transition model, the decoder and the
       encoder.

    With state observations (``from_pixels=False``) the encoder and decoder are the identity (mtrl's
    ``state_deepmdp``): only step 1 runs, and it trains the transition model and the reward decoder.
    ``policy_kwargs=dict(use_decoder=False)`` turns off the reconstruction with pixels.
    ``policy_kwargs=dict(transition_model="probabilistic")`` selects the Gaussian model with sigma in [1e-4, 10].

    The reference samples the probabilistic model a second time for ``ĥ'``; here ``ĥ' = mu + sigma * eps`` reuses
    the forward pass of the loss (same distribution).

    :param policy: the policy (``"MultiInputPolicy"``/``"MultiTaskPolicy"``, or a :class:`DeepMDPPolicy` subclass)
    :param env: the multi-task env
    :param kwargs: the other arguments are those of :class:`~mtsb3.sac_ae.SACAE`
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MultiInputPolicy": MultiInputPolicy,
        "MultiTaskPolicy": MultiTaskPolicy,
    }
    policy: DeepMDPPolicy
    policy_base: ClassVar[type[DeepMDPPolicy]] = DeepMDPPolicy
    requires_pixels: ClassVar[bool] = False

    def __init__(self, policy: str | type[DeepMDPPolicy], env: GymEnv | str, _init_setup_model: bool = True, **kwargs: Any):
        super().__init__(policy, env, _init_setup_model=_init_setup_model, **kwargs)

    def _representation_step(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        logs = self._transition_reward_update(replay_data)
        if self.policy.decoder is not None and self._n_updates % self.decoder_update_freq == 0:
            logs["ae_loss"] = self._reconstruction_update(replay_data)
        return logs

    def _predict_next_latent(self, h: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """:return: ``(mu, sigma, sample)`` of the transition model at ``[h, a]``."""
        mu, sigma = self.policy.transition_model(th.cat([h, actions], dim=1))
        sample = mu if self.policy.transition_model_kind == "deterministic" else mu + sigma * th.randn_like(sigma)
        return mu, sigma, sample

    def _transition_reward_update(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        """mtrl ``deepmdp.update_transition_reward_model``."""
        h = self.policy.encode(replay_data.observations)
        with th.no_grad():
            next_h = self.policy.encode(replay_data.next_observations)
        mu, sigma, next_h_pred = self._predict_next_latent(h, replay_data.actions)
        loss_transition = transition_loss(mu, sigma, next_h)
        loss_reward = F.mse_loss(self.policy.reward_decoder(next_h_pred), replay_data.rewards)
        self._step(loss_transition + loss_reward, [self.policy.transition_optimizer, self.policy.encoder_optimizer])
        return {"transition_loss": loss_transition.detach(), "reward_loss": loss_reward.detach()}

    def _reconstruction_update(self, replay_data: ReplayBufferSamples) -> th.Tensor:
        """mtrl ``deepmdp.update_decoder``: reconstruct ``s'`` from the predicted next latent."""
        h = self.policy.encode(replay_data.observations)
        next_h_pred = self._predict_next_latent(h, replay_data.actions)[2]
        assert self.policy.decoder is not None
        target = replay_data.next_observations[ENV_KEY]  # type: ignore[index]
        loss = reconstruction_loss(self.policy.decoder(next_h_pred), target, h, self.decoder_latent_lambda)
        optimizers = [self.policy.transition_optimizer, self.policy.decoder_optimizer, self.policy.encoder_optimizer]
        return self._step(loss, optimizers)
