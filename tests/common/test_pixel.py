import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from mtsb3.common.pixel import (
    PixelDecoder,
    PixelEncoder,
    PixelExtractor,
    conv_output_shape,
    preprocess_pixels,
    weight_init,
)


@pytest.mark.parametrize(
    ("shape", "num_layers", "conv_hw"),
    [((9, 84, 84), 2, (39, 39)), ((9, 84, 84), 4, (35, 35)), ((9, 84, 84), 6, (31, 31)), ((9, 32, 32), 4, (9, 9))],
)
def test_encoder_decoder_shapes(shape, num_layers, conv_hw):
    # mtrl/agent/components/encoder.py: 84x84 input gives 39 / 35 / 31 with 2 / 4 / 6 conv layers
    assert conv_output_shape(shape, num_layers) == conv_hw
    encoder = PixelEncoder(shape, feature_dim=50, num_layers=num_layers, num_filters=32)
    assert encoder.fc.in_features == 32 * conv_hw[0] * conv_hw[1]
    decoder = PixelDecoder(shape, feature_dim=50, num_layers=num_layers, num_filters=32)
    x = th.rand(2, *shape)
    h = encoder(x)
    assert h.shape == (2, 50)
    assert decoder(h).shape == (2, *shape)


def test_decoder_matches_odd_and_rectangular_images():
    shape = (3, 33, 46)
    decoder = PixelDecoder(shape, feature_dim=7, num_layers=3, num_filters=8)
    assert decoder(th.zeros(4, 7)).shape == (4, *shape)


def test_encoder_layernorm_then_tanh():
    encoder = PixelEncoder((3, 32, 32), feature_dim=16, num_layers=2)
    x = th.rand(5, 3, 32, 32, generator=th.Generator().manual_seed(0))
    hidden = encoder.fc(encoder.forward_conv(x))
    pre = encoder.ln(hidden)
    th.testing.assert_close(encoder(x), th.tanh(pre))
    # LayerNorm (identity affine at init): each sample standardised before the tanh, (h - mean) / sqrt(var + eps)
    mean, var = hidden.mean(dim=1, keepdim=True), hidden.var(dim=1, unbiased=False, keepdim=True)
    th.testing.assert_close(pre, (hidden - mean) / th.sqrt(var + encoder.ln.eps), atol=1e-5, rtol=1e-4)
    th.testing.assert_close(pre.mean(dim=1), th.zeros(5), atol=1e-5, rtol=0)
    no_tanh = PixelEncoder((3, 32, 32), feature_dim=16, num_layers=2, use_tanh=False)
    no_tanh.load_state_dict(encoder.state_dict())
    th.testing.assert_close(no_tanh(x), pre)


def test_delta_orthogonal_init():
    encoder = PixelEncoder((3, 32, 32), num_layers=2)
    w = encoder.convs[1].weight
    # only the kernel centre is non-zero, and it is orthogonal with the ReLU gain
    mask = th.ones_like(w, dtype=th.bool)
    mask[:, :, 1, 1] = False
    assert th.all(w[mask] == 0)
    centre = w[:, :, 1, 1]
    th.testing.assert_close(centre @ centre.T, 2.0 * th.eye(32), atol=1e-4, rtol=0)
    assert th.all(encoder.convs[1].bias == 0) and th.all(encoder.fc.bias == 0)
    with pytest.raises(ValueError, match="square"):
        weight_init(th.nn.Conv2d(3, 3, (3, 5)))


def test_preprocess_range_and_quantisation():
    th.manual_seed(0)
    obs = th.arange(256, dtype=th.uint8).repeat(40)
    out = preprocess_pixels(obs, bits=5)
    assert out.dtype == th.float32
    assert out.min() >= -0.5 and out.max() < 0.5
    # 5 bits: the value lies in its bin [floor(x / 8) / 32, (floor(x / 8) + 1) / 32) - 0.5, with noise filling the bin
    low = th.floor(obs.float() / 8) / 32 - 0.5
    assert th.all(out >= low) and th.all(out < low + 1 / 32)
    noise = (out - low) * 32
    assert 0.4 < noise.mean() < 0.6  # uniform dequantisation noise
    assert len(th.unique(low)) == 32
    with pytest.raises(ValueError, match=r"bits must be in \[1, 8\]"):
        preprocess_pixels(obs, bits=0)


def test_tied_convs_share_parameters():
    critic, actor = PixelEncoder((3, 32, 32), num_layers=3), PixelEncoder((3, 32, 32), num_layers=3)
    actor.tie_conv_weights_from(critic)
    for a, c in zip(actor.convs, critic.convs, strict=True):
        assert a.weight is c.weight and a.bias is c.bias
    assert actor.fc.weight is not critic.fc.weight
    with th.no_grad():
        critic.convs[0].weight.add_(1.0)
    th.testing.assert_close(actor.forward_conv(th.ones(1, 3, 32, 32)), critic.forward_conv(th.ones(1, 3, 32, 32)))
    with pytest.raises(ValueError, match="cannot tie"):
        actor.tie_conv_weights_from(PixelEncoder((3, 32, 32), num_layers=2))


def test_extractor_dict_obs_and_detach():
    space = spaces.Dict({"env_obs": spaces.Box(0, 255, (9, 32, 32), np.uint8), "task_obs": spaces.Discrete(10)})
    extractor = PixelExtractor(space, features_dim=20, num_layers=2)
    assert extractor.features_dim == 20
    obs = {"env_obs": th.rand(4, 9, 32, 32, requires_grad=False), "task_obs": th.eye(10)[:4]}
    out = extractor(obs)
    assert out.shape == (4, 20)
    out.sum().backward()
    assert extractor.encoder.convs[0].weight.grad is not None
    extractor.zero_grad(set_to_none=True)
    extractor.detach_conv = True
    extractor(obs).sum().backward()
    assert extractor.encoder.convs[0].weight.grad is None
    assert extractor.encoder.fc.weight.grad is not None


def test_extractor_errors():
    with pytest.raises(ValueError, match="uint8 images in"):
        PixelExtractor(spaces.Box(0, 1, (3, 32, 32), np.float32))
    PixelExtractor(spaces.Box(0, 1, (3, 32, 32), np.float32), normalized_image=True)
    with pytest.raises(ValueError, match=r"channel-first \(C, H, W\)"):
        PixelExtractor(spaces.Dict({"env_obs": spaces.Box(-1, 1, (5,)), "task_obs": spaces.Discrete(2)}))
    with pytest.raises(ValueError, match="'env_obs' key"):
        PixelExtractor(spaces.Dict({"pixels": spaces.Box(0, 255, (3, 32, 32), np.uint8)}))
    with pytest.raises(ValueError, match="too small"):
        PixelEncoder((3, 8, 8), num_layers=4)
