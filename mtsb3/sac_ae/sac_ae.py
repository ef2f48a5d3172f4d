"""SAC-AE: multi-task SAC with a pixel auto-encoder on the critic's encoder (mtrl/agent/sac_ae.py)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples

from mtsb3.common.pixel import preprocess_pixels
from mtsb3.common.task import ENV_KEY
from mtsb3.mtsac import MTSAC
from mtsb3.sac_ae.policies import MultiInputPolicy, MultiTaskPolicy, SACAEPolicy


def reconstruction_loss(reconstruction: th.Tensor, pixels: th.Tensor, latent: th.Tensor, latent_lambda: float) -> th.Tensor:
    """
    SAC-AE's decoder loss: ``MSE(reconstruction, preprocess(pixels)) + latent_lambda * mean(0.5 * ||h||²)``, where
    the target is quantised to 5 bits with dequantisation noise (:func:`~mtsb3.common.pixel.preprocess_pixels`) and
    the L2 penalty on the latent follows RAE (Ghosh et al. 2019, https://arxiv.org/abs/1903.12436).

    :param reconstruction: decoder output ``(B, C, H, W)``
    :param pixels: the raw target pixels in ``[0, 255]``
    :param latent: the latent ``h`` that was decoded (or that the prediction was made from), ``(B, d)``
    :param latent_lambda: weight of the latent penalty (mtrl: 0)
    """
    loss = F.mse_loss(reconstruction, preprocess_pixels(pixels))
    if latent_lambda:
        loss = loss + latent_lambda * (0.5 * latent.pow(2).sum(dim=1)).mean()
    return loss


class SACAE(MTSAC):
    """
    SAC-AE (Yarats et al., "Improving Sample Efficiency in Model-Free Reinforcement Learning from Images",
    https://arxiv.org/abs/1910.01741) on multi-task pixel observations, as mtrl's ``sac_ae.Agent``.

    Each gradient step is an :class:`~mtsb3.MTSAC` step (critic, actor, temperature, target networks) followed by
    the representation update: every ``decoder_update_freq`` steps, the critic's encoder and a pixel decoder
    minimise :func:`reconstruction_loss` of the observation from the critic latent, with their own optimizers
    (``policy.encoder_optimizer`` and ``policy.decoder_optimizer``, see :class:`~mtsb3.sac_ae.policies.SACAEPolicy`).
    The actor's convs are the critic's (tied) and the actor loss does not reach them.

    mtrl's pixel-agent schedule is :class:`~mtsb3.MTSAC`'s ``actor_update_freq=2``, ``target_update_interval=2`` and
    ``initial_gradient_steps=1500`` (hyperparams/sacae.yml). Differences from mtrl, on purpose:

    * the target encoder is Polyak-averaged with ``encoder_tau`` (mtrl: 0.05), the Q-networks with ``tau``.

    :param policy: the policy (``"MultiInputPolicy"``/``"MultiTaskPolicy"``, or a :class:`SACAEPolicy` subclass)
    :param env: the multi-task env with image ``env_obs`` (e.g. ``MT-HiPBMDP-Finger-Spin-vary-size-v0``)
    :param decoder_update_freq: run the reconstruction update every this many gradient steps (mtrl: 1)
    :param decoder_latent_lambda: weight of the L2 penalty on the latent (mtrl: 0)
    :param encoder_tau: Polyak coefficient of the critic target's encoder (mtrl: 0.05)
    :param kwargs: the other arguments are those of :class:`~mtsb3.MTSAC`
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MultiInputPolicy": MultiInputPolicy,
        "MultiTaskPolicy": MultiTaskPolicy,
    }
    policy: SACAEPolicy
    #: the policy class this algorithm needs (its policy_kwargs and networks)
    policy_base: ClassVar[type[SACAEPolicy]] = SACAEPolicy
    #: what the representation update needs: a pixel decoder (SAC-AE) or not (DeepMDP also runs on states)
    requires_pixels: ClassVar[bool] = True

    def __init__(
        self,
        policy: str | type[SACAEPolicy],
        env: GymEnv | str,
        decoder_update_freq: int = 1,
        decoder_latent_lambda: float = 0.0,
        encoder_tau: float = 0.05,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        super().__init__(policy, env, encoder_tau=encoder_tau, _init_setup_model=False, **kwargs)
        if decoder_update_freq < 1:
            raise ValueError(f"decoder_update_freq must be >= 1, got {decoder_update_freq}")
        self.decoder_update_freq = decoder_update_freq
        self.decoder_latent_lambda = decoder_latent_lambda
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        # the one policy-type check of the pixel algorithms (SAC-AE, DeepMDP, HiP-BMDP set their policy_base)
        if not isinstance(self.policy, self.policy_base):
            raise ValueError(
                f"{type(self).__name__} needs a {self.policy_base.__name__} (or subclass), got {type(self.policy).__name__}"
            )
        if self.requires_pixels and self.policy.decoder is None:
            raise ValueError(
                f"{type(self).__name__} reconstructs pixels: it needs uint8 (C, H, W) image env_obs and the pixel "
                f"encoder (mtsb3.common.pixel.PixelExtractor), got {self.observation_space} with "
                f"{type(self.policy.critic.features_extractor).__name__}; for state observations use MTSAC or DeepMDP"
            )

    # -- training ------------------------------------------------------------------------------------------------------
    def _optimizers(self) -> list[th.optim.Optimizer]:
        return [*super()._optimizers(), *self.policy.representation_optimizers().values()]

    def _after_gradient_step(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        # the representation update on the SAC step's minibatch, as mtrl's sac_ae.Agent.update
        return self._representation_step(replay_data)

    def _representation_step(self, replay_data: ReplayBufferSamples) -> dict[str, th.Tensor]:
        """
        One representation update on a minibatch.

        :return: the losses to log (detached scalars), by name
        """
        if self._n_updates % self.decoder_update_freq != 0:
            return {}
        return {"ae_loss": self._reconstruction_update(replay_data)}

    def _step(self, loss: th.Tensor, optimizers: list[th.optim.Optimizer | None]) -> th.Tensor:
        """``zero_grad`` / ``backward`` / ``step`` over several optimizers (``None`` entries are skipped)."""
        active = [opt for opt in optimizers if opt is not None]
        for opt in active:
            opt.zero_grad()
        loss.backward()
        for opt in active:
            opt.step()
        return loss.detach()

    def _reconstruction_update(self, replay_data: ReplayBufferSamples) -> th.Tensor:
        """mtrl ``sac_ae.update_decoder``: reconstruct ``s`` from the critic latent ``h(s)``."""
        obs = replay_data.observations
        h = self.policy.encode(obs)
        assert self.policy.decoder is not None
        loss = reconstruction_loss(self.policy.decoder(h), obs[ENV_KEY], h, self.decoder_latent_lambda)  # type: ignore[index]
        return self._step(loss, [self.policy.encoder_optimizer, self.policy.decoder_optimizer])

    # -- checkpoints ---------------------------------------------------------------------------------------------------
    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return state_dicts + [f"policy.{name}" for name in self.policy.representation_optimizers()], variables
