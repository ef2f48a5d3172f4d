"""Named mtrl baseline recipes: each builds, trains and round-trips under MTSAC with the intended networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.orthogonal_experts import MixtureOfOrthogonalExperts
from mtsb3.common.soft_modularization import SoftModularizationExtractor, SoftModularizedMLP
from mtsb3.common.torch_layers import FeedForwardEncoder, FiLMEncoder, MixtureOfEncoders
from mtsb3.recipes import RECIPES, care, mt_mh_sac, mt_sac, mtrl_mt10_algo_kwargs, recipe

th.set_num_threads(1)

N_TASKS = 4
SMALL = dict(learning_starts=32, batch_size=32, buffer_size=1000, device="cpu", disentangled_alpha=True)
# the recipes at MetaWorld size, with narrower MLPs so that the tests stay fast
SMALL_RECIPES = {
    "mt_sac": dict(net_arch=[32]),
    "mt_sac_te": dict(net_arch=[32], task_encoder_kwargs=dict(output_dim=8)),
    "mt_mh_sac": dict(net_arch=[32], head_net_arch=[16]),
    "sac_film": dict(net_arch=[32], task_encoder_kwargs=dict(output_dim=8)),
    "soft_modularization": dict(module_hidden=32, encoder_net_arch=[16], encoder_dim=8),
    "care": dict(net_arch=[32], task_encoder_kwargs=dict(output_dim=8)),
    "moore": dict(n_experts=3, net_arch=[32], features_dim=16, qf_net_arch=[32]),
    "paco": dict(net_arch=[32], n_param_sets=3),
    "brc": dict(critic_width=32, critic_blocks=1, actor_width=16, actor_blocks=1, embedding_dim=8, n_atoms=21),
}
EXTRACTOR = {
    "mt_sac": FeedForwardEncoder,
    "mt_sac_te": FeedForwardEncoder,
    "mt_mh_sac": FeedForwardEncoder,
    "sac_film": FiLMEncoder,
    "soft_modularization": FeedForwardEncoder,
    "care": MixtureOfEncoders,
    "moore": MixtureOfOrthogonalExperts,
    "paco": FeedForwardEncoder,
    "brc": FeedForwardEncoder,
}


def _model(name: str, seed: int = 0, algo_kwargs: dict | None = None, **overrides) -> MTSAC:
    env = make_mt_vec_env("MT-PointGoal-v0", seed=seed)
    policy_kwargs = recipe(name, **{**SMALL_RECIPES[name], **overrides})
    return MTSAC("MultiInputPolicy", env, policy_kwargs=policy_kwargs, seed=seed, **{**SMALL, **(algo_kwargs or {})})


def test_recipe_names_and_errors():
    assert sorted(RECIPES) == sorted([*SMALL_RECIPES, "pixel_sac"])  # pixel_sac: tests/test_mtrl_presets.py
    with pytest.raises(ValueError, match="Unknown recipe 'care2'"):
        recipe("care2")


def test_mtrl_defaults():
    kwargs = care()
    assert kwargs["net_arch"] == [400, 400, 400]
    assert kwargs["features_extractor_kwargs"]["mode"] == "attention"
    assert kwargs["features_extractor_kwargs"]["n_experts"] == 4
    assert "task_encoding_dim" not in kwargs["features_extractor_kwargs"]  # the policy's task encoder gives it
    assert mt_sac()["features_extractor_kwargs"]["task_conditioning"] == "none"
    assert mt_mh_sac()["multi_head"] is True
    algo = mtrl_mt10_algo_kwargs()
    assert (algo["batch_size"], algo["learning_starts"], algo["disentangled_alpha"]) == (1280, 15_000, True)
    assert (algo["initial_gradient_steps"], algo["actor_update_freq"]) == (1500, 1)


@pytest.mark.parametrize("name", list(SMALL_RECIPES))
def test_recipe_trains_and_round_trips(name, tmp_path):
    model = _model(name)
    actor_extractor = model.actor.features_extractor
    assert isinstance(actor_extractor, EXTRACTOR[name])
    if name in ("sac_film", "care"):
        # the extractor reads the policy's shared task encoder, as mtrl's encoders do
        assert actor_extractor.task_encoder is None and model.policy.task_encoder is not None
        assert actor_extractor.task_encoding_dim == model.policy.task_encoder.output_dim == 8
    if name == "soft_modularization":
        # the actor and both Q-networks are routed networks reading [encoding | task encoding (| action)]
        actor, critic = model.actor.latent_pi, model.critic.q_networks
        assert isinstance(actor, SoftModularizedMLP) and isinstance(critic, SoftModularizedMLP)
        assert (actor.obs_dim, actor.task_dim, actor.extra_dim, actor.base.out_features) == (8, 8, 0, 4)
        assert (critic.obs_dim, critic.task_dim, critic.extra_dim, critic.base.out_features) == (8, 8, 2, 1)
    model.learn(64)
    model.save(tmp_path / "m.zip")
    th.manual_seed(99)
    loaded = MTSAC.load(tmp_path / "m.zip", device="cpu")
    obs = {"env_obs": np.random.default_rng(0).uniform(-1, 1, (8, 2)).astype(np.float32), "task_obs": np.arange(8) % N_TASKS}
    action = model.predict(obs, deterministic=True)[0]
    assert action.shape == (8, 2)
    np.testing.assert_array_equal(action, loaded.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize("name", ["sac_film", "care", "soft_modularization"])
def test_one_mtsac_update_trains_actor_and_critic_extractors(name):
    """README, "Differences from mtrl and mtenv": the actor's FiLM / attention / routing parameters are optimised too, not just
    the critic's."""
    model = _model(name, algo_kwargs=dict(learning_starts=1000))
    model.learn(64)  # fills the buffer, no update yet
    modules = {
        "actor": model.actor.features_extractor,
        "critic": model.critic.features_extractor,
        "task_encoder": model.policy.task_encoder,
        # the routed networks themselves (Soft Modularization's trunks; SB3's MLPs for the others)
        "actor_trunk": model.actor.latent_pi,
        "critic_trunk": model.critic.q_networks,
    }
    before = {key: {n: p.detach().clone() for n, p in m.named_parameters()} for key, m in modules.items()}
    model.train(gradient_steps=1, batch_size=64)
    for key, module in modules.items():
        stale = [n for n, p in module.named_parameters() if th.equal(before[key][n], p)]
        assert stale == [], f"{key}: {stale} not updated"


def test_care_with_pretrained_task_embeddings():
    table = np.random.default_rng(0).normal(size=(N_TASKS, 12)).astype(np.float32)
    model = _model("care", task_encoder_kwargs=dict(output_dim=8, pretrained_embeddings=table))
    np.testing.assert_allclose(model.policy.task_encoder.embedding.weight.detach().numpy(), table)
    assert not model.policy.task_encoder.embedding.weight.requires_grad
    model.learn(48)


def _success_rate(model: MTSAC, seed: int) -> float:
    """Deterministic episode per task (30 steps); success if the goal is reached at any step."""
    env = make_mt_vec_env("MT-PointGoal-v0", seed=seed)
    obs, success = env.reset(), np.zeros(env.num_envs)
    for _ in range(30):
        obs, _, _, infos = env.step(model.predict(obs, deterministic=True)[0])
        success = np.maximum(success, [info["is_success"] for info in infos])
    return float(success.mean())


@pytest.mark.expensive
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_care_learns_point_goal(seed):
    """CARE (attention over 4 encoders) reaches every task's goal on MT-PointGoal-v0 within 10k transitions."""
    env = make_mt_vec_env("MT-PointGoal-v0", seed=seed)
    policy_kwargs = care(net_arch=[64, 64])
    model = MTSAC("MultiInputPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device="cpu", disentangled_alpha=True,
                  learning_starts=400, batch_size=128, gamma=0.9, learning_rate=1e-3)  # fmt: skip
    model.learn(10_000)
    assert _success_rate(model, seed=100 + seed) >= 0.75


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_expert_and_module_counts_are_validated(bad):
    # n_experts=0 used to fall back to 4 experts
    with pytest.raises(ValueError, match=rf"n_experts must be an integer >= 1, got {bad!r}"):
        care(n_experts=bad)
    with pytest.raises(ValueError, match=rf"n_modules must be an integer >= 1, got {bad!r}"):
        recipe("soft_modularization", n_modules=bad)
    space = make_mt_vec_env("MT-PointGoal-v0").observation_space
    for mode in ("attention", "ensemble", "gate"):
        with pytest.raises(ValueError, match=rf"n_experts must be an integer >= 1, got {bad!r}"):
            MixtureOfEncoders(space, mode=mode, n_experts=bad, task_encoder_kwargs={})
    with pytest.raises(ValueError, match=rf"n_modules must be an integer >= 1, got {bad!r}"):
        SoftModularizationExtractor(space, n_modules=bad)
    with pytest.raises(ValueError, match=r"n_layers \(Soft Modularization routes between layers\) must be an integer >= 2"):
        SoftModularizationExtractor(space, n_layers=1)
    assert MixtureOfEncoders(space, mode="ensemble").n_experts == 4  # None still means the default
