import numpy as np
import pytest
import torch as th

from mtsb3 import SACAE
from mtsb3.common.pixel import PixelDecoder, PixelExtractor
from mtsb3.sac_ae import SACAEPolicy, reconstruction_loss
from tests.sac_ae._helpers import SMALL_POLICY, changed, fill_buffer, parameters_by_name, random_venv


def make_model(**kwargs):
    kwargs.setdefault("policy_kwargs", SMALL_POLICY)
    return SACAE("MultiInputPolicy", random_venv(), buffer_size=200, batch_size=16, seed=0, device="cpu", **kwargs)


def test_policy_structure():
    model = make_model(disentangled_alpha=True)
    policy = model.policy
    assert isinstance(policy, SACAEPolicy)
    actor_extractor, critic_extractor = policy.actor.features_extractor, policy.critic.features_extractor
    assert isinstance(critic_extractor, PixelExtractor) and isinstance(policy.decoder, PixelDecoder)
    # the actor's convs are the critic's Parameters; the actor stops gradients there and does not optimise them
    for actor_conv, critic_conv in zip(actor_extractor.encoder.convs, critic_extractor.encoder.convs, strict=True):
        assert actor_conv.weight is critic_conv.weight and actor_conv.bias is critic_conv.bias
    assert actor_extractor.detach_conv and not critic_extractor.detach_conv
    actor_opt = {id(p) for group in policy.actor.optimizer.param_groups for p in group["params"]}
    assert not actor_opt & {id(p) for p in critic_extractor.encoder.convs.parameters()}
    assert {id(p) for p in actor_extractor.encoder.fc.parameters()} <= actor_opt
    # separate encoder (critic encoder) and decoder optimizers; the decoder has mtrl's weight decay
    encoder_opt = [p for group in policy.encoder_optimizer.param_groups for p in group["params"]]
    assert {id(p) for p in encoder_opt} == {id(p) for p in critic_extractor.parameters()}
    assert policy.decoder_optimizer.param_groups[0]["weight_decay"] == 1e-7
    assert policy.latent_dim == 16
    assert policy.decoder(th.zeros(2, 16)).shape == (2, 9, 32, 32)


def test_one_update_trains_every_parameter():
    model = make_model(disentangled_alpha=True)
    model.learning_starts = 0
    fill_buffer(model)
    before = parameters_by_name(model.policy)
    alpha_before = model.log_ent_coef.detach().clone()
    model.train(gradient_steps=1, batch_size=16)
    unchanged = [name for name, moved in changed(before, model.policy).items() if not moved]
    assert unchanged == []
    # one alpha per task: only the tasks in the batch (the env runs 3, 4, 7, 8) moved
    moved = (model.log_ent_coef.detach() != alpha_before).nonzero().flatten().tolist()
    assert set(moved) <= {3, 4, 7, 8} and len(moved) > 0
    assert np.isfinite(model.logger.name_to_value["train/ae_loss"])


def test_decoder_update_freq():
    model = make_model(decoder_update_freq=2)
    fill_buffer(model)
    decoder = parameters_by_name(model.policy.decoder)
    model.train(gradient_steps=1, batch_size=16)  # update 1: no reconstruction
    assert not any(changed(decoder, model.policy.decoder).values())
    assert "train/ae_loss" not in model.logger.name_to_value
    model.train(gradient_steps=1, batch_size=16)  # update 2: reconstruction
    assert all(changed(decoder, model.policy.decoder).values())


def test_encoder_tau():
    model = make_model(tau=0.01, encoder_tau=0.05)
    online = model.critic.features_extractor
    target = model.critic_target.features_extractor
    with th.no_grad():
        for p in target.parameters():
            p.normal_()
        for p in model.critic_target.q_networks.parameters():
            p.normal_()
    t0 = [p.detach().clone() for p in target.parameters()]
    e = [p.detach().clone() for p in online.parameters()]
    q0 = [p.detach().clone() for p in model.critic_target.q_networks.parameters()]
    q = [p.detach().clone() for p in model.critic.q_networks.parameters()]
    model._update_target_networks()
    for t_before, e_value, t_after in zip(t0, e, target.parameters(), strict=True):
        th.testing.assert_close(t_after, 0.95 * t_before + 0.05 * e_value)
    for t_before, q_value, t_after in zip(q0, q, model.critic_target.q_networks.parameters(), strict=True):
        th.testing.assert_close(t_after, 0.99 * t_before + 0.01 * q_value)


def test_reconstruction_loss_closed_form():
    th.manual_seed(0)
    pixels = th.randint(0, 256, (3, 9, 4, 4), dtype=th.uint8)
    rec = th.zeros(3, 9, 4, 4)
    h = th.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    th.manual_seed(1)
    loss = reconstruction_loss(rec, pixels, h, latent_lambda=0.5)
    th.manual_seed(1)
    target = (th.floor(pixels.float() / 8) + th.rand(3, 9, 4, 4)) / 32 - 0.5
    expected = (target**2).mean() + 0.5 * th.tensor([2.5, 0.5, 4.5]).mean()
    th.testing.assert_close(loss, expected)


def test_save_load_round_trip(tmp_path):
    model = make_model(disentangled_alpha=True, decoder_latent_lambda=1e-6)
    fill_buffer(model)
    model.train(gradient_steps=2, batch_size=16)
    obs = model.get_env().reset()
    actions = model.predict(obs, deterministic=True)[0]
    model.save(tmp_path / "sac_ae")
    loaded = SACAE.load(tmp_path / "sac_ae", env=random_venv(), device="cpu")
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], actions)
    assert loaded.decoder_latent_lambda == 1e-6 and loaded.encoder_tau == 0.05
    for name, value in model.policy.state_dict().items():
        th.testing.assert_close(loaded.policy.state_dict()[name], value)
    for name in ("encoder_optimizer", "decoder_optimizer"):
        saved, restored = getattr(model.policy, name).state_dict(), getattr(loaded.policy, name).state_dict()
        assert saved["state"].keys() == restored["state"].keys() and len(saved["state"]) > 0
        th.testing.assert_close(restored["state"][0]["exp_avg"], saved["state"][0]["exp_avg"])
    # the tie survives loading, and training goes on
    assert loaded.actor.features_extractor.encoder.convs[0].weight is loaded.critic.features_extractor.encoder.convs[0].weight
    fill_buffer(loaded)
    loaded.train(gradient_steps=1, batch_size=16)


def test_errors():
    with pytest.raises(ValueError, match="needs uint8 \\(C, H, W\\) image env_obs"):
        SACAE("MultiInputPolicy", random_venv(from_pixels=False), buffer_size=10)
    with pytest.raises(ValueError, match="decoder_update_freq must be >= 1"):
        make_model(decoder_update_freq=0)
    with pytest.raises(ValueError, match=r"encoder_tau must be in \[0, 1\]"):
        make_model(encoder_tau=2.0)
