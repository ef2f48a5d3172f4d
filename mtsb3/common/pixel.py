"""
Pixel encoder and decoder of SAC-AE / DeepMDP / HiP-BMDP (mtrl/agent/components/encoder.py and decoder.py), as an SB3 features
extractor.

The encoder follows Yarats et al., "Improving Sample Efficiency in Model-Free Reinforcement Learning from Images"
(https://arxiv.org/abs/1910.01741), as used by mtrl: ``obs / 255`` → Conv(C→32, 3x3, stride 2) → (L-1) x
Conv(32→32, 3x3, stride 1), ReLU after each → flatten → Linear → LayerNorm → tanh. The decoder mirrors it with
transposed convolutions. Reconstruction targets are quantised to 5 bits with uniform dequantisation noise
(Kingma & Dhariwal, Glow, https://arxiv.org/abs/1807.03039).
"""

from __future__ import annotations

import gymnasium as gym
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from mtsb3.common.task import ENV_KEY


def preprocess_pixels(obs: th.Tensor, bits: int = 5) -> th.Tensor:
    """
    Reconstruction target for raw pixels: quantise to ``bits`` bits, scale into ``[-0.5, 0.5)`` and add uniform
    dequantisation noise of one bin (mtrl ``agent.utils.preprocess_obs``).

    :param obs: raw pixels with values in ``[0, 255]`` (any dtype; ``uint8`` replay samples are fine)
    :param bits: bit depth to keep, 1 to 8
    :return: float tensor of the same shape, values in ``[-0.5, 0.5)``
    """
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in [1, 8], got {bits}")
    bins = 2**bits
    if obs.dtype == th.uint8:
        quantised = (obs >> (8 - bits)).float()  # integer shift: floor(obs / 2^(8-bits)) without a float pass
    else:
        quantised = th.floor(obs.float() / 2 ** (8 - bits))
    # (quantised + U[0, 1)) / bins - 0.5, in place on the noise tensor
    return th.rand_like(quantised).add_(quantised).mul_(1.0 / bins).sub_(0.5)


def weight_init(module: nn.Module) -> None:
    """
    mtrl's init (mtrl/agent/sac.py): ``xavier_uniform`` weights and zero biases for ``Linear``, delta-orthogonal init
    (https://arxiv.org/abs/1806.05393, ReLU gain) for (transposed) convolutions. Use with ``module.apply``.
    """
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        if module.weight.size(2) != module.weight.size(3):
            raise ValueError(f"delta-orthogonal init needs square kernels, got {tuple(module.weight.shape)}")
        with th.no_grad():
            module.weight.zero_()
            if module.bias is not None:
                module.bias.zero_()
            mid = module.weight.size(2) // 2
            nn.init.orthogonal_(module.weight[:, :, mid, mid], nn.init.calculate_gain("relu"))


def conv_output_shape(obs_shape: tuple[int, ...], num_layers: int) -> tuple[int, int]:
    """
    Spatial size ``(h, w)`` after the encoder's convolutions: 35x35 for 84x84 input with 4 layers (39 with 2, 31 with 6).

    :param obs_shape: ``(C, H, W)``
    :param num_layers: number of conv layers
    """
    h, w = ((obs_shape[1] - 3) // 2 + 1, (obs_shape[2] - 3) // 2 + 1)
    h, w = h - 2 * (num_layers - 1), w - 2 * (num_layers - 1)
    if h < 1 or w < 1:
        raise ValueError(f"an observation of shape {tuple(obs_shape)} is too small for {num_layers} conv layers")
    return h, w


def _image_space(observation_space: spaces.Space) -> spaces.Box:
    """The pixel part of a (multi-task) observation space: ``env_obs`` of a ``Dict``, or the ``Box`` itself."""
    if isinstance(observation_space, spaces.Dict):
        if ENV_KEY not in observation_space.spaces:
            raise ValueError(f"a Dict observation space needs an {ENV_KEY!r} key, got {observation_space}")
        observation_space = observation_space[ENV_KEY]
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
        raise ValueError(f"the pixel encoder needs channel-first (C, H, W) images, got {observation_space}")
    return observation_space


class PixelEncoder(nn.Module):
    """
    Conv encoder on images already scaled to ``[0, 1]``: conv stack → Linear → LayerNorm (→ tanh).

    :param obs_shape: ``(C, H, W)``
    :param feature_dim: output size (50 in mtrl)
    :param num_layers: number of conv layers (4 in mtrl)
    :param num_filters: filters per conv layer (32 in mtrl)
    :param use_tanh: squash the normalised features with tanh, as the reference does
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        feature_dim: int = 50,
        num_layers: int = 4,
        num_filters: int = 32,
        use_tanh: bool = True,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.obs_shape = tuple(obs_shape)
        self.feature_dim, self.num_layers, self.num_filters, self.use_tanh = feature_dim, num_layers, num_filters, use_tanh
        self.conv_shape = conv_output_shape(self.obs_shape, num_layers)
        convs = [nn.Conv2d(self.obs_shape[0], num_filters, 3, stride=2)]
        convs += [nn.Conv2d(num_filters, num_filters, 3, stride=1) for _ in range(num_layers - 1)]
        self.convs = nn.ModuleList(convs)
        self.fc = nn.Linear(num_filters * self.conv_shape[0] * self.conv_shape[1], feature_dim)
        self.ln = nn.LayerNorm(feature_dim)
        self.apply(weight_init)

    def forward_conv(self, obs: th.Tensor) -> th.Tensor:
        """:param obs: ``(B, C, H, W)`` in ``[0, 1]``; :return: flattened conv features ``(B, filters·h·w)``."""
        for conv in self.convs:
            obs = th.relu(conv(obs))
        return obs.flatten(1)

    def forward(self, obs: th.Tensor, detach: bool = False) -> th.Tensor:
        """
        :param obs: ``(B, C, H, W)`` in ``[0, 1]``
        :param detach: stop gradients at the conv output (the actor's use of the tied convs)
        :return: ``(B, feature_dim)``
        """
        h = self.forward_conv(obs)
        if detach:
            h = h.detach()
        h = self.ln(self.fc(h))
        return th.tanh(h) if self.use_tanh else h

    def tie_conv_weights_from(self, source: PixelEncoder) -> None:
        """Share (not copy) the conv ``Parameter`` objects of ``source``, like mtrl's ``copy_conv_weights_from``."""
        if len(source.convs) != len(self.convs):
            raise ValueError(f"cannot tie {len(self.convs)} conv layers to {len(source.convs)}")
        for src, trg in zip(source.convs, self.convs, strict=True):
            trg.weight = src.weight
            trg.bias = src.bias


class PixelDecoder(nn.Module):
    """
    Transposed-conv decoder matching :class:`PixelEncoder` (mtrl/agent/components/decoder.py): Linear(feature → filters·h·w),
    ReLU, then (L-1) x ConvT(filters→filters, 3, stride 1) with ReLU, then ConvT(filters→C, 3, stride 2). The last layer's
    ``output_padding`` (1 for even sizes such as 84) makes the output exactly ``(C, H, W)``.

    :param obs_shape: ``(C, H, W)`` of the images to reconstruct
    :param feature_dim: input size (the latent, plus θ for HiP-BMDP)
    :param num_layers: number of transposed convs, as in the encoder
    :param num_filters: filters per layer
    """

    def __init__(self, obs_shape: tuple[int, ...], feature_dim: int = 50, num_layers: int = 4, num_filters: int = 32):
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.num_layers, self.num_filters = num_layers, num_filters
        self.conv_shape = conv_output_shape(self.obs_shape, num_layers)
        first = (self.conv_shape[0] + 2 * (num_layers - 1), self.conv_shape[1] + 2 * (num_layers - 1))
        output_padding = tuple(size - ((n - 1) * 2 + 3) for size, n in zip(self.obs_shape[1:], first, strict=True))
        self.fc = nn.Linear(feature_dim, num_filters * self.conv_shape[0] * self.conv_shape[1])
        deconvs = [nn.ConvTranspose2d(num_filters, num_filters, 3, stride=1) for _ in range(num_layers - 1)]
        deconvs.append(nn.ConvTranspose2d(num_filters, self.obs_shape[0], 3, stride=2, output_padding=output_padding))
        self.deconvs = nn.ModuleList(deconvs)
        self.apply(weight_init)

    def forward(self, h: th.Tensor) -> th.Tensor:
        """:param h: ``(B, feature_dim)``; :return: ``(B, C, H, W)`` reconstruction (compare to :func:`preprocess_pixels`)."""
        x = th.relu(self.fc(h)).view(-1, self.num_filters, *self.conv_shape)
        for deconv in self.deconvs[:-1]:
            x = th.relu(deconv(x))
        return self.deconvs[-1](x)


class PixelExtractor(BaseFeaturesExtractor):
    """
    SB3 features extractor wrapping :class:`PixelEncoder`, for a multi-task ``Dict`` observation (it encodes
    ``env_obs`` and ignores ``task_obs``, as mtrl's pixel SAC does) or a plain image ``Box``.

    SB3's ``preprocess_obs`` already divides ``uint8`` image observations by 255 (``normalize_images=True``), which
    is the reference's ``obs / 255``.

    :param observation_space: a ``Dict`` with a ``(C, H, W)`` image ``env_obs``, or such a ``Box``
    :param features_dim: encoder output size
    :param num_layers: conv layers
    :param num_filters: filters per conv layer
    :param use_tanh: tanh after the LayerNorm
    :param detach_conv: stop gradients at the conv output. The SAC-AE family sets it on the actor, whose convs are
        tied to the critic's and trained only by the critic and representation losses.
    :param normalized_image: skip the ``uint8``/``[0, 255]`` check for images that are already scaled
    """

    def __init__(
        self,
        observation_space: gym.Space,
        features_dim: int = 50,
        num_layers: int = 4,
        num_filters: int = 32,
        use_tanh: bool = True,
        detach_conv: bool = False,
        normalized_image: bool = False,
    ):
        super().__init__(observation_space, features_dim)
        image_space = _image_space(observation_space)
        if not is_image_space(image_space, check_channels=False, normalized_image=normalized_image):
            raise ValueError(
                f"the pixel encoder expects uint8 images in [0, 255], got {image_space}; pass normalized_image=True "
                "(and normalize_images=False to the policy) for images that are already scaled"
            )
        self.is_dict = isinstance(observation_space, spaces.Dict)
        self.detach_conv = detach_conv
        self.encoder = PixelEncoder(image_space.shape, features_dim, num_layers, num_filters, use_tanh)

    def images(self, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        """The image part of preprocessed observations."""
        return observations[ENV_KEY] if self.is_dict else observations  # type: ignore[index]

    def forward(self, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        return self.encoder(self.images(observations), detach=self.detach_conv)
