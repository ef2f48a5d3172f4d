"""SAC-AE policy: the multi-task SAC policy with a pixel encoder tied between actor and critic, and a pixel decoder."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from mtsb3.common.pixel import PixelDecoder, PixelExtractor
from mtsb3.common.task import ENV_KEY
from mtsb3.common.torch_layers import FeedForwardEncoder
from mtsb3.mtsac.policies import MultiInputPolicy


def has_image_obs(observation_space: spaces.Space) -> bool:
    """:return: whether the (multi-task) observation carries ``uint8`` channel-first images."""
    if isinstance(observation_space, spaces.Dict):
        observation_space = observation_space.spaces.get(ENV_KEY)
    return isinstance(observation_space, spaces.Box) and is_image_space(observation_space, check_channels=False)


def default_extractor(observation_space: spaces.Space) -> tuple[type[BaseFeaturesExtractor], dict[str, Any]]:
    """
    The SAC-AE family's encoder: mtrl's pixel encoder (50 features, 4 convs of 32 filters) for image observations,
    and mtrl's ``identity`` encoder (``env_obs`` as is, no task input, mtrl/agent/components/encoder.py) for state
    observations.
    """
    if has_image_obs(observation_space):
        return PixelExtractor, dict(features_dim=50, num_layers=4, num_filters=32)
    return FeedForwardEncoder, dict(features_dim=None, net_arch=[], task_conditioning="none")


class SACAEPolicy(MultiInputPolicy):
    """
    :class:`~mtsb3.mtsac.policies.MTSACPolicy` for SAC-AE (Yarats et al. 2019, https://arxiv.org/abs/1910.01741)
    and its subclasses DeepMDP and HiP-BMDP.

    On top of the multi-task SAC policy it holds the representation-learning parts, so that they are saved,
    loaded and moved with the policy:

    * the features extractor defaults to :class:`~mtsb3.common.pixel.PixelExtractor` (image ``env_obs``) or an
      identity encoder (state ``env_obs``);
    * the actor's conv layers are **tied** to the critic's (the same ``Parameter`` objects, mtrl's
      ``copy_conv_weights_from``) and the actor stops gradients at the conv output: the convs are trained by the
      critic and the representation losses only. The actor's own fc and LayerNorm are trained by the actor loss
      (mtrl's actor optimizer skipped them, README, "Differences from mtrl and mtenv");
    * ``decoder``: a :class:`~mtsb3.common.pixel.PixelDecoder` from the critic latent (image observations only);
    * ``encoder_optimizer`` (the critic's encoder, plus a shared task encoder if any) and ``decoder_optimizer``
      (Adam with ``decoder_weight_decay``), separate from the critic optimizer as in mtrl.

    :param tie_encoder_convs: tie the actor's conv layers to the critic's (ignored with
        ``share_features_extractor=True``, where actor and critic already share one extractor)
    :param decoder_weight_decay: weight decay of the decoder optimizer (mtrl: 1e-7)
    :param use_decoder: build the pixel decoder (image observations only); DeepMDP can run without reconstruction
    :param args: the other arguments are those of :class:`~mtsb3.mtsac.policies.MTSACPolicy`; the default
        ``features_extractor_class`` is chosen from the observation space by :func:`default_extractor`
    :param kwargs: see ``args``
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        tie_encoder_convs: bool = True,
        decoder_weight_decay: float = 1e-7,
        use_decoder: bool = True,
        **kwargs: Any,
    ):
        if features_extractor_class is None:
            features_extractor_class, default_kwargs = default_extractor(observation_space)
            features_extractor_kwargs = {**default_kwargs, **(features_extractor_kwargs or {})}
        self.tie_encoder_convs, self.decoder_weight_decay = tie_encoder_convs, decoder_weight_decay
        self.use_decoder = use_decoder
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            *args,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            **kwargs,
        )

    def _build_networks(self) -> None:
        super()._build_networks()
        critic_extractor, actor_extractor = self.critic.features_extractor, self.actor.features_extractor
        self.pixel_encoder = isinstance(critic_extractor, PixelExtractor)
        #: whether the actor's convs are the critic's: then the actor optimizer leaves them to the critic's
        self.convs_tied = self.pixel_encoder and self.tie_encoder_convs and actor_extractor is not critic_extractor
        if self.convs_tied:
            assert isinstance(actor_extractor, PixelExtractor) and isinstance(critic_extractor, PixelExtractor)
            actor_extractor.encoder.tie_conv_weights_from(critic_extractor.encoder)
            actor_extractor.detach_conv = True
        #: size of the latent the representation losses work on: the critic's MLP input without the action
        self.latent_dim = self.critic.features_dim + self.critic.conditioning.extra_dim()
        self.decoder: PixelDecoder | None = None
        if self.pixel_encoder and self.use_decoder:
            assert isinstance(critic_extractor, PixelExtractor)
            encoder = critic_extractor.encoder
            self.decoder = PixelDecoder(encoder.obs_shape, self.latent_dim, encoder.num_layers, encoder.num_filters)
            self.decoder.to(self.device)

    def actor_parameters(self) -> list[nn.Parameter]:
        params = super().actor_parameters()
        if not self.convs_tied:
            return params
        tied = {id(p) for p in self.critic.features_extractor.encoder.convs.parameters()}  # type: ignore[union-attr]
        return [p for p in params if id(p) not in tied]

    def _build_optimizers(self, lr_schedule: Schedule) -> None:
        super()._build_optimizers(lr_schedule)
        encoder_params = self._encoder_parameters()
        self.encoder_optimizer = self._make_optimizer(encoder_params, lr_schedule) if encoder_params else None
        self.decoder_optimizer: th.optim.Optimizer | None = None
        if self.decoder is not None:
            self.decoder_optimizer = self._make_optimizer(
                list(self.decoder.parameters()), lr_schedule, weight_decay=self.decoder_weight_decay
            )

    def _encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters the representation losses train through the critic latent (encoder + task encoder)."""
        params = list(self.critic.features_extractor.parameters())
        if self.task_encoder is not None:
            params += [p for p in self.task_encoder.parameters() if p.requires_grad]
        return params

    def representation_optimizers(self) -> dict[str, th.optim.Optimizer]:
        """:return: the optimizers this policy adds to SAC's, by attribute name (for checkpoints and lr schedules)."""
        names = ("encoder_optimizer", "decoder_optimizer")
        return {name: getattr(self, name) for name in names if getattr(self, name, None) is not None}

    def encode(self, obs: PyTorchObs) -> th.Tensor:
        """
        The critic's latent ``h`` of raw observations, with gradient: the encoder output and the task conditioning,
        i.e. what the Q-networks see before the action (mtrl's ``critic.encode``).

        :param obs: a raw observation batch (as sampled from the replay buffer)
        :return: ``(batch, latent_dim)``
        """
        return self.critic.conditioning(obs, self.critic.features_extractor)[0]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            tie_encoder_convs=self.tie_encoder_convs,
            decoder_weight_decay=self.decoder_weight_decay,
            use_decoder=self.use_decoder,
        )
        return data


MultiInputPolicy = SACAEPolicy
MultiTaskPolicy = SACAEPolicy
