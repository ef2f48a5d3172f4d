"""BroNet (BRO/BRC's residual LayerNorm MLP): shapes, residual structure, the batched ensemble, the policies' trunk option."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from torch import nn

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.bronet import BatchedLayerNorm, BroNet, batched_orthogonal_, bronet_arch, check_trunk
from mtsb3.common.experts import BatchedLinear, BatchedMLP

th.set_num_threads(1)


def _reference(net: BroNet, x: th.Tensor, expert: int | None = None) -> th.Tensor:
    """The BRO forward pass written out layer by layer (test reference only)."""

    def linear(layer: nn.Module, h: th.Tensor) -> th.Tensor:
        if expert is None:
            return h @ layer.weight.T + layer.bias
        return h @ layer.weight[expert] + layer.bias[expert, 0]

    def norm(layer: nn.Module, h: th.Tensor) -> th.Tensor:
        h = (h - h.mean(-1, keepdim=True)) / th.sqrt(h.var(-1, unbiased=False, keepdim=True) + 1e-5)
        weight, bias = (layer.weight, layer.bias) if expert is None else (layer.weight[expert, 0], layer.bias[expert, 0])
        return h * weight + bias

    h = th.relu(norm(net.input_layer[1], linear(net.input_layer[0], x)))
    for block in net.blocks:
        inner = th.relu(norm(block[1], linear(block[0], h)))
        h = h + norm(block[4], linear(block[3], inner))  # x + LN(Linear(ReLU(LN(Linear(x)))))
    return h if net.output_layer is None else linear(net.output_layer, h)


def test_arch_shapes_and_residual_structure():
    assert bronet_arch(256, 1) == [256, 256, 256] and bronet_arch(64, 0) == [64]
    net = BroNet(5, bronet_arch(16, 2), out_features=3)
    assert len(net.blocks) == 2 and net.out_features == 3
    kinds = [type(m) for m in net.blocks[0]]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear, nn.LayerNorm]  # no activation after the sum
    x = th.randn(7, 5)
    assert net(x).shape == (7, 3)
    th.testing.assert_close(net(x), _reference(net, x))
    trunk = BroNet(5, bronet_arch(16, 1))  # no output layer: the trunk's features
    assert trunk(x).shape == (7, 16) and trunk.out_features == 16
    # zeroing a block's last LayerNorm turns the block into the identity: the skip connection carries x through
    with th.no_grad():
        trunk.blocks[0][4].weight.zero_()
        trunk.blocks[0][4].bias.zero_()
    th.testing.assert_close(trunk(x), trunk.input_layer(x))


def test_initialisation_is_brcs_orthogonal_with_a_zero_output_layer():
    th.manual_seed(0)
    net = BroNet(6, bronet_arch(8, 1), out_features=4)
    weight = net.input_layer[0].weight  # (8, 6): orthonormal columns times sqrt(2)
    th.testing.assert_close(weight.T @ weight, 2.0 * th.eye(6), atol=1e-5, rtol=0)
    assert (net.output_layer.weight == 0).all() and (net.output_layer.bias == 0).all()
    stacked = batched_orthogonal_(th.empty(3, 8, 5), gain=math.sqrt(2))  # each expert's (in, out) matrix
    th.testing.assert_close(stacked.transpose(1, 2) @ stacked, 2.0 * th.eye(5).expand(3, 5, 5), atol=1e-5, rtol=0)
    wide = batched_orthogonal_(th.empty(2, 3, 7))
    th.testing.assert_close(wide @ wide.transpose(1, 2), th.eye(3).expand(2, 3, 3), atol=1e-5, rtol=0)


def test_batched_ensemble_matches_each_expert_alone():
    net = BroNet(5, bronet_arch(16, 2), out_features=3, n_experts=2)
    assert isinstance(net.input_layer[0], BatchedLinear) and isinstance(net.input_layer[1], BatchedLayerNorm)
    with th.no_grad():  # give each expert its own LayerNorm parameters
        for module in net.modules():
            if isinstance(module, BatchedLayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    x = th.randn(7, 5)
    out = net(x)
    assert out.shape == (2, 7, 3)
    for expert in range(2):
        th.testing.assert_close(out[expert], _reference(net, x, expert))
    th.testing.assert_close(net(x.expand(2, 7, 5)), out)  # (E, batch, in) input


def test_bad_arch_and_trunk_names_raise():
    for arch in ([], [16, 16], [16, 32, 16]):
        with pytest.raises(ValueError, match=r"trunk='bronet' needs net_arch = \[width\] \* \(1 \+ 2 \* n_blocks\)"):
            BroNet(5, arch)
    with pytest.raises(ValueError, match="n_blocks >= 0"):
        bronet_arch(16, -1)
    assert check_trunk("bronet") == ("bronet", "bronet") and check_trunk({"qf": "bronet"}) == ("mlp", "bronet")
    with pytest.raises(ValueError, match=r"Unknown trunk 'resnet'; choose one of \['mlp', 'bronet', 'soft_modularization'\]"):
        check_trunk("resnet")
    with pytest.raises(ValueError, match=r"trunk_kwargs=\{'n_modules': 2\} are options of trunk='soft_modularization'"):
        check_trunk("bronet", trunk_kwargs={"n_modules": 2})
    with pytest.raises(ValueError, match="disjoint_policy=True puts every layer into per-task heads"):
        check_trunk({"pi": "soft_modularization"}, disjoint_policy=True)
    with pytest.raises(ValueError, match="keys 'pi' and 'qf'"):
        check_trunk({"vf": "bronet"})


def _model(policy_kwargs: dict, **kwargs) -> MTSAC:
    env = make_mt_vec_env("MT-PointGoal-v0", seed=0)
    return MTSAC(
        "MultiInputPolicy",
        env,
        learning_starts=16,
        batch_size=16,
        buffer_size=500,
        seed=0,
        **kwargs,
        policy_kwargs=policy_kwargs,
    )


@pytest.mark.parametrize(
    "extra",
    [dict(), dict(multi_head=True, head_net_arch=[8]), dict(use_task_encoder=True, task_encoder_kwargs=dict(output_dim=4))],
    ids=["single_head", "multi_head", "task_encoder"],
)
def test_policy_trunk_for_actor_and_critic(extra, tmp_path):
    model = _model(dict(net_arch=dict(pi=bronet_arch(16, 1), qf=bronet_arch(24, 1)), trunk="bronet", **extra))
    assert isinstance(model.actor.latent_pi, BroNet) and model.actor.latent_pi.n_experts is None
    assert isinstance(model.critic.q_networks, BroNet) and model.critic.q_networks.n_experts == 2
    assert isinstance(model.critic_target.q_networks, BroNet)
    model.learn(40)
    model.save(tmp_path / "m.zip")
    loaded = MTSAC.load(tmp_path / "m.zip", device="cpu")
    assert isinstance(loaded.actor.latent_pi, BroNet) and loaded.policy.trunk == "bronet"
    obs = {"env_obs": np.random.default_rng(0).uniform(-1, 1, (8, 2)).astype(np.float32), "task_obs": np.arange(8) % 4}
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


def test_trunk_per_network_and_errors():
    model = _model(dict(net_arch=dict(pi=[16, 16], qf=bronet_arch(16, 1)), trunk=dict(qf="bronet")))
    assert isinstance(model.actor.latent_pi, nn.Sequential) and isinstance(model.critic.q_networks, BroNet)
    assert isinstance(_model(dict(net_arch=[16, 16])).critic.q_networks, BatchedMLP)  # the default trunk
    with pytest.raises(ValueError, match="disjoint_policy=True puts every layer into per-task heads"):
        _model(dict(net_arch=[16], trunk="bronet", disjoint_policy=True))
    with pytest.raises(ValueError, match=r"needs net_arch = \[width\] \* \(1 \+ 2 \* n_blocks\).*got \[16, 16\]"):
        _model(dict(net_arch=[16, 16], trunk="bronet"))
