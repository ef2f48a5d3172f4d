import numpy as np
import pytest
import torch as th
import torch.nn.functional as F

from mtsb3 import DeepMDP
from mtsb3.deepmdp import DeepMDPPolicy, ProbabilisticTransitionModel, transition_loss
from tests.sac_ae._helpers import SMALL_MODEL, SMALL_POLICY, changed, fill_buffer, parameters_by_name, random_venv


def make_model(from_pixels=True, **policy_kwargs):
    kwargs = {**(SMALL_POLICY if from_pixels else dict(net_arch=[32])), **SMALL_MODEL, **policy_kwargs}
    venv = random_venv(from_pixels=from_pixels)
    model = DeepMDP("MultiInputPolicy", venv, buffer_size=200, batch_size=16, seed=0, device="cpu", policy_kwargs=kwargs)
    fill_buffer(model)
    return model


@pytest.mark.parametrize("kind", ["deterministic", "probabilistic"])
def test_one_update_trains_every_parameter(kind):
    model = make_model(transition_model=kind)
    policy = model.policy
    assert isinstance(policy, DeepMDPPolicy)
    assert isinstance(policy.transition_model, ProbabilisticTransitionModel) == (kind == "probabilistic")
    assert policy.transition_model.fc_mu.out_features == policy.latent_dim == 16
    before = parameters_by_name(policy)
    model.train(gradient_steps=1, batch_size=16)
    assert [name for name, moved in changed(before, policy).items() if not moved] == []
    logged = model.logger.name_to_value
    assert {"train/transition_loss", "train/reward_loss", "train/ae_loss"} <= logged.keys()


def test_state_variant_identity_encoder():
    model = make_model(from_pixels=False)
    policy = model.policy
    # mtrl's state_deepmdp: identity encoder (h = env_obs), no decoder, no encoder optimizer
    assert list(policy.critic.features_extractor.parameters()) == []
    assert policy.decoder is None and policy.encoder_optimizer is None and policy.latent_dim == 9
    obs = model.replay_buffer.sample(4).observations
    th.testing.assert_close(policy.encode(obs), obs["env_obs"].float())
    before = parameters_by_name(policy)
    model.train(gradient_steps=1, batch_size=16)
    assert [name for name, moved in changed(before, policy).items() if not moved] == []
    assert "train/ae_loss" not in model.logger.name_to_value
    assert set(policy.representation_optimizers()) == {"transition_optimizer"}


def test_transition_reward_update_is_the_closed_form():
    model = make_model()
    policy = model.policy
    batch = model.replay_buffer.sample(16)
    with th.no_grad():
        h = policy.encode(batch.observations)
        next_h = policy.encode(batch.next_observations)
        mu, _ = policy.transition_model(th.cat([h, batch.actions], dim=1))
        expected_transition = 0.5 * ((mu - next_h) ** 2).mean()  # sigma = 1
        expected_reward = F.mse_loss(policy.reward_decoder(mu), batch.rewards)
    logs = model._transition_reward_update(batch)
    th.testing.assert_close(logs["transition_loss"], expected_transition)
    th.testing.assert_close(logs["reward_loss"], expected_reward)
    th.testing.assert_close(logs["transition_loss"], transition_loss(mu, th.ones_like(mu), next_h))


def test_reconstruction_of_next_obs_trains_transition_model():
    model = make_model()
    batch = model.replay_buffer.sample(16)
    before = parameters_by_name(model.policy)
    model._reconstruction_update(batch)
    moved = changed(before, model.policy)
    assert all(v for k, v in moved.items() if k.startswith(("transition_model.", "decoder.", "critic.features_extractor.")))
    assert not any(v for k, v in moved.items() if k.startswith(("reward_decoder.", "critic.q_networks", "actor.latent_pi")))


def test_without_decoder():
    model = make_model(use_decoder=False)
    assert model.policy.decoder is None and model.policy.encoder_optimizer is not None
    model.train(gradient_steps=1, batch_size=16)
    assert "train/ae_loss" not in model.logger.name_to_value
    assert "train/transition_loss" in model.logger.name_to_value


def test_save_load_round_trip(tmp_path):
    model = make_model(transition_model="probabilistic")
    model.train(gradient_steps=2, batch_size=16)
    obs = model.get_env().reset()
    actions = model.predict(obs, deterministic=True)[0]
    model.save(tmp_path / "deepmdp")
    loaded = DeepMDP.load(tmp_path / "deepmdp", env=random_venv(), device="cpu")
    assert isinstance(loaded.policy.transition_model, ProbabilisticTransitionModel)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], actions)
    for name, value in model.policy.state_dict().items():
        th.testing.assert_close(loaded.policy.state_dict()[name], value)
    saved, restored = model.policy.transition_optimizer.state_dict(), loaded.policy.transition_optimizer.state_dict()
    th.testing.assert_close(restored["state"][0]["exp_avg"], saved["state"][0]["exp_avg"])


def test_bad_transition_model():
    with pytest.raises(ValueError, match=r"transition_model must be one of \('deterministic', 'probabilistic'\)"):
        make_model(transition_model="ensemble")


def test_with_mtsac_task_encoder():
    # MTSAC's task encoder, concatenated to the features: the latent includes it and the model losses train it
    model = make_model(use_task_encoder=True, task_encoder_kwargs=dict(output_dim=4, embedding_dim=4, net_arch=[8]))
    policy = model.policy
    assert policy.latent_dim == 16 + 4 and policy.transition_model.fc_mu.out_features == 20
    encoder_params = {id(p) for group in policy.encoder_optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in policy.task_encoder.parameters()} <= encoder_params
    before = parameters_by_name(policy)
    model.train(gradient_steps=1, batch_size=16)
    assert [name for name, moved in changed(before, policy).items() if not moved] == []
