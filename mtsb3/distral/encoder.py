"""
What Distral's networks read: the state ``env_obs`` as is, or, for image ``env_obs``, the latent of a SAC-AE pixel
encoder (mtrl's Distral task agents are ``sac_ae.Agent`` s, mtrl/agent/distral.py).
"""

from __future__ import annotations

import copy

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space
from stable_baselines3.common.utils import polyak_update
from torch import nn

from mtsb3.common.pixel import PixelDecoder, PixelEncoder


class DistralEncoder(nn.Module):
    """
    The observation encoder shared by Distral's task critics, task actors and π0.

    * **State** ``env_obs`` (a 1-D ``Box``): the flattened observation, no parameters.
    * **Image** ``env_obs`` (``uint8`` ``(C, H, W)``): SAC-AE's pixel encoder (Yarats et al. 2019,
      https://arxiv.org/abs/1910.01741; mtrl/agent/sac_ae.py) trained by the critic loss and by the reconstruction
      loss of a pixel decoder; the actors and π0 read its output detached, and the target critics read a
      Polyak-averaged copy (``encoder_tau``). mtrl gives each task agent its own encoder; here the tasks share one
      (the per-task networks start at its latent), which costs one conv pass per batch instead of ``n_tasks``.

    :param env_space: the ``env_obs`` space
    :param features_dim: latent size of the pixel encoder (mtrl: 50)
    :param num_layers: conv layers (mtrl: 4)
    :param num_filters: filters per conv layer (mtrl: 32)
    """

    def __init__(self, env_space: spaces.Box, features_dim: int = 50, num_layers: int = 4, num_filters: int = 32):
        super().__init__()
        self.pixels = is_image_space(env_space, check_channels=False)
        if not self.pixels and len(env_space.shape) != 1:
            raise ValueError(f"Distral needs a 1-D Box env_obs or uint8 (C, H, W) images, got {env_space}")
        self.encoder: PixelEncoder | None = None
        self.encoder_target: PixelEncoder | None = None
        self.decoder: PixelDecoder | None = None
        if self.pixels:
            shape = tuple(env_space.shape)
            self.encoder = PixelEncoder(shape, features_dim, num_layers, num_filters)
            self.encoder_target = copy.deepcopy(self.encoder).requires_grad_(False)
            self.decoder = PixelDecoder(shape, features_dim, num_layers, num_filters)
        self.features_dim = features_dim if self.pixels else get_flattened_obs_dim(env_space)

    def forward(self, env_obs: th.Tensor, target: bool = False) -> th.Tensor:
        """
        :param env_obs: raw ``env_obs`` batch (pixels in ``[0, 255]``)
        :param target: use the target encoder (the target critics' input)
        :return: ``(batch, features_dim)``
        """
        if not self.pixels:
            return env_obs.float().flatten(1)
        encoder = self.encoder_target if target else self.encoder
        assert encoder is not None
        return encoder(env_obs.float() / 255.0)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters the critic loss trains (none for states)."""
        return [] if self.encoder is None else list(self.encoder.parameters())

    def soft_update(self, tau: float) -> None:
        """Polyak-average the target encoder (mtrl's ``encoder_tau``)."""
        if self.encoder is not None and self.encoder_target is not None:
            polyak_update(self.encoder.parameters(), self.encoder_target.parameters(), tau)
