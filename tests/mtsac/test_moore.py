"""
MOORE under MTSAC (mtsb3.recipes.moore): the networks it builds, that it learns MT-PointGoal-v0, reproducibility,
save -> load -> predict, its presets and its Optuna sampler.

Measured on MT-PointGoal-v0 after 4000 steps (standing still: -30, optimum about -5.5): mean return -14.5, -14.6, -14.5
for seeds 0, 1, 2, every task between -15.4 and -13.4; about 9 s of CPU per seed.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch as th
import yaml

from mtsb3 import MTSAC, TaskBalancedReplayBuffer, make_mt_vec_env
from mtsb3.common.callbacks import evaluate_per_task, summarize
from mtsb3.common.orthogonal_experts import MixtureOfOrthogonalExperts
from mtsb3.recipes import moore
from mtsb3.zoo import _merge_hyperparams, apply_recipe, convert_mtsac_params, sample_moore_params
from mtsb3.zoo.hyperparams import resolve_replay_buffer_class
from tests._zoo_helpers import HYPERPARAMS

POINT_GOAL = "MT-PointGoal-v0"
SMALL = dict(n_experts=3, net_arch=[32], features_dim=16, qf_net_arch=[32])


def _model(seed: int = 0, **kwargs) -> MTSAC:
    env = make_mt_vec_env(POINT_GOAL, seed=seed)
    policy_kwargs = moore(**{**SMALL, **kwargs.pop("recipe", {})})
    algo = dict(learning_starts=400, batch_size=128, learning_rate=1e-3, disentangled_alpha=True, device="cpu")
    return MTSAC("MultiInputPolicy", env, policy_kwargs=policy_kwargs, seed=seed, **{**algo, **kwargs})


def test_recipe_defaults_are_the_authors_metaworld_networks():
    kwargs = moore()
    assert kwargs["features_extractor_class"] is MixtureOfOrthogonalExperts
    assert kwargs["features_extractor_kwargs"] == dict(n_experts=4, net_arch=[400, 400], features_dim=400)
    assert kwargs["net_arch"] == dict(pi=[], qf=[400])  # linear actor heads on the mixture; the action enters the critic
    assert kwargs["multi_head"] is True and kwargs["head_net_arch"] == []
    assert "use_task_encoder" not in kwargs  # the task weights are a linear map of the one-hot
    encoded = moore(task_encoder_kwargs=dict(output_dim=8))
    assert encoded["use_task_encoder"] and encoded["condition_features_extractor_on_task"]
    assert encoded["concat_task_encoding"] is False and encoded["multi_head"] is True
    with pytest.raises(ValueError, match="n_experts must be an integer >= 1, got 0"):
        moore(n_experts=0)


def test_actor_and_critic_have_their_own_experts_and_one_update_trains_both():
    model = _model(learning_starts=1000)
    actor, critic = model.actor.features_extractor, model.critic.features_extractor
    assert isinstance(actor, MixtureOfOrthogonalExperts) and isinstance(critic, MixtureOfOrthogonalExperts)
    assert actor is not critic and model.critic_target.features_extractor is not critic
    assert actor.task_weights.weight.shape == (4, 3)  # one weight vector w_c per task
    model.learn(64)  # fills the buffer, no update yet
    before = {key: {n: p.detach().clone() for n, p in m.named_parameters()} for key, m in (("a", actor), ("c", critic))}
    model.train(gradient_steps=1, batch_size=64)
    for key, module in (("a", actor), ("c", critic)):
        stale = [n for n, p in module.named_parameters() if th.equal(before[key][n], p)]
        assert stale == [], f"{key}: {stale} not updated"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moore_learns_point_goal(seed):
    """The thresholds of tests/mtsac/test_learning.py: mean return > -20, every task > -25 after 4000 steps."""
    model = _model(seed)
    model.learn(4000)
    results = evaluate_per_task(model, make_mt_vec_env(POINT_GOAL, seed=1000), n_eval_episodes=2)
    returns = [r["mean_reward"] for r in results.values()]
    assert summarize(results)["mean_reward"] > -20.0, results
    assert min(returns) > -25.0, results


def test_same_seed_same_parameters():
    params = []
    for _ in range(2):
        model = _model(seed=3, learning_starts=100, batch_size=32)
        model.learn(200)
        params.append(th.nn.utils.parameters_to_vector(model.policy.parameters()).detach())
    assert th.equal(params[0], params[1])


@pytest.mark.parametrize("recipe", [{}, dict(task_encoder_kwargs=dict(output_dim=8))], ids=["one_hot", "task_encoder"])
def test_save_load_predict_gives_identical_actions(recipe, tmp_path):
    model = _model(recipe=recipe, learning_starts=32, batch_size=32)
    model.learn(96)
    model.save(tmp_path / "moore.zip")
    th.manual_seed(123)
    loaded = MTSAC.load(tmp_path / "moore.zip", device="cpu")
    assert isinstance(loaded.actor.features_extractor, MixtureOfOrthogonalExperts)
    obs = {"env_obs": np.random.default_rng(0).uniform(-1, 1, (12, 2)).astype(np.float32), "task_obs": np.arange(12) % 4}
    for deterministic in (True, False):
        th.manual_seed(7)
        action = model.predict(obs, deterministic=deterministic)[0]
        th.manual_seed(7)
        np.testing.assert_array_equal(action, loaded.predict(obs, deterministic=deterministic)[0])


def test_presets_use_the_authors_expert_counts_and_build():
    presets = yaml.safe_load((HYPERPARAMS / "moore.yml").read_text())
    experts = {"MT-MetaWorld-MT10-v0": 4, "MT-MetaWorld-MT50-v0": 6}
    experts.update({"MT-MetaWorldPlus-MT10-v0": 4, "MT-MetaWorldPlus-MT50-v0": 6})
    for env_id, n_experts in experts.items():
        preset = presets[env_id]
        assert preset["recipe"] == "moore" and preset["recipe_kwargs"]["n_experts"] == n_experts
        assert preset["batch_size"] == 128 * (10 if "MT10" in env_id else 50)  # 128 transitions per task
        assert preset["replay_buffer_class"] == "TaskBalancedReplayBuffer"  # the authors' per-task replay memories
        assert preset["policy_kwargs"] == {"log_std_bounds": [-10, 2], "squash_log_std": False}
        assert (preset["initial_gradient_steps"], preset["encoder_tau"], preset["tau"]) == (0, None, 0.005)
    # the MT10 preset's networks, built on the small env
    preset = presets["MT-MetaWorld-MT10-v0"]
    hyperparams = resolve_replay_buffer_class(apply_recipe(preset["recipe"], preset["recipe_kwargs"], preset))
    skip = ("recipe", "recipe_kwargs", "eval_episodes", "eval_freq", "n_timesteps", "policy", "env_wrapper")
    kwargs = {k: v for k, v in hyperparams.items() if k not in skip}
    model = MTSAC(preset["policy"], make_mt_vec_env(POINT_GOAL), **{**kwargs, "buffer_size": 1000})
    extractor = model.actor.features_extractor
    assert (extractor.n_experts, extractor.features_dim) == (4, 400)
    assert model.actor.log_std_bounds == (-10.0, 2.0) and not model.actor.squash_log_std
    assert isinstance(model.replay_buffer, TaskBalancedReplayBuffer)


def test_sampler_samples_experts_and_representation_size_into_the_recipe():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    sampled = sample_moore_params(trial, n_actions=2, n_envs=4, additional_args={})
    extractor = sampled["policy_kwargs"]["features_extractor_kwargs"]
    assert 2 <= extractor["n_experts"] <= 10 and extractor["features_dim"] in (64, 128, 256, 400)
    assert {"gamma", "batch_size", "learning_rate", "tau"} <= set(sampled)
    assert "net_arch" not in sampled["policy_kwargs"]  # the experts' depth and the heads stay the recipe's
    assert convert_mtsac_params(trial.params) == sampled  # --trial-id rebuilds the same kwargs
    merged = _merge_hyperparams({"policy_kwargs": moore(**SMALL)}, sampled)
    kwargs = merged["policy_kwargs"]["features_extractor_kwargs"]
    assert kwargs == {**extractor, "net_arch": [32]}
