"""Distral as mtrl ran it: SAC-AE task agents on pixels, evaluation with π0, mtrl's update schedule."""

from __future__ import annotations

import pytest
import torch as th
from stable_baselines3.common.logger import configure

from mtsb3 import make_mt_vec_env
from mtsb3.distral import Distral
from tests.sac_ae._helpers import random_venv

th.set_num_threads(1)

PIXEL_POLICY = dict(net_arch=[16], encoder_kwargs=dict(features_dim=8, num_layers=2, num_filters=4))


def _pixel_model(**kwargs) -> Distral:
    kwargs.setdefault("policy_kwargs", PIXEL_POLICY)
    return Distral("MultiInputPolicy", random_venv(), learning_starts=16, batch_size=8, buffer_size=200, seed=0, **kwargs)


def test_pixel_distral_trains_a_sac_ae_encoder():
    model = _pixel_model()
    policy = model.policy
    encoder = policy.encoder
    assert encoder.pixels and encoder.features_dim == 8 and policy.actor.latent_pi.layers[0].weight.shape == (10, 8, 16)
    critic_params = {id(p) for g in policy.critic.optimizer.param_groups for p in g["params"]}
    assert {id(p) for p in encoder.encoder.parameters()} <= critic_params  # the critic loss trains the convs
    actor_params = {id(p) for g in policy.actor.optimizer.param_groups for p in g["params"]}
    assert not {id(p) for p in encoder.encoder.parameters()} & actor_params
    convs, target, decoder = (
        [p.detach().clone() for p in m.parameters()] for m in (encoder.encoder, encoder.encoder_target, encoder.decoder)
    )
    model.set_logger(configure(None, []))
    model.learn(40)
    assert "train/ae_loss" in model.logger.name_to_value
    for before, module in ((convs, encoder.encoder), (target, encoder.encoder_target), (decoder, encoder.decoder)):
        assert any(not th.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))
    obs = model.get_env().reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (4, 2)


def test_pixel_distral_round_trips(tmp_path):
    model = _pixel_model()
    model.learn(24)
    obs = model.get_env().reset()
    model.save(tmp_path / "d")
    loaded = Distral.load(tmp_path / "d", env=model.get_env())
    th.testing.assert_close(
        th.as_tensor(loaded.predict(obs, deterministic=True)[0]), th.as_tensor(model.predict(obs, deterministic=True)[0])
    )
    assert (
        loaded.policy.decoder_optimizer.state_dict()["state"].keys()
        == model.policy.decoder_optimizer.state_dict()["state"].keys()
    )


def test_evaluate_with_distilled_acts_with_pi0s_mean():
    model = Distral(
        "MultiInputPolicy",
        make_mt_vec_env("MT-PointGoal-v0", seed=0),
        policy_kwargs=dict(net_arch=[8], evaluate_with_distilled=True),
        seed=0,
    )
    obs = model.get_env().reset()
    env_obs = th.as_tensor(obs["env_obs"])
    with th.no_grad():
        mean, _, _ = model.distilled.get_action_dist_params(env_obs)
    deterministic, _ = model.predict(obs, deterministic=True)
    th.testing.assert_close(th.as_tensor(deterministic), th.tanh(mean))
    # training actions still come from the task policies: π0 cannot tell the 4 goals apart from the same state
    model.policy.evaluate_with_distilled = False
    own, _ = model.predict(obs, deterministic=True)
    assert not th.allclose(th.as_tensor(own), th.tanh(mean))


def test_distral_actor_update_freq_and_burst():
    model = Distral(
        "MultiInputPolicy",
        make_mt_vec_env("MT-PointGoal-v0", seed=0),
        policy_kwargs=dict(net_arch=[8]),
        learning_starts=40,
        batch_size=16,
        actor_update_freq=2,
        initial_gradient_steps=5,
        seed=0,
    )
    counts = {"actor": 0, "distilled": 0, "critic": 0}
    for name in counts:
        getattr(model.policy, name).optimizer.register_step_post_hook(lambda *_, n=name: counts.__setitem__(n, counts[n] + 1))
    model.learn(48)  # train at timesteps 44 (the burst: 5 updates) and 48 (1 update)
    assert model._n_updates == 6
    assert counts == {"actor": 3, "distilled": 3, "critic": 6}  # updates 0, 2, 4
    with pytest.raises(ValueError, match="actor_update_freq must be >= 1"):
        Distral("MultiInputPolicy", make_mt_vec_env("MT-PointGoal-v0"), actor_update_freq=0)
