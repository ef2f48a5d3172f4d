"""The mtrl-protocol presets (MT-MetaWorld-MT10/MT50-v0, the HiP-BMDP ids) run mtrl's actor and schedule by default;
the Meta-World+ presets keep SB3's; the DMC baselines of the mtrl docs (Distral, PCGrad, GradNorm) have HiP-BMDP presets."""

from __future__ import annotations

import pytest
import yaml

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.pixel import PixelExtractor
from mtsb3.distral import Distral
from mtsb3.recipes import pixel_sac
from mtsb3.zoo.hyperparams import ZOO_ONLY_KEYS, apply_recipe
from tests._zoo_helpers import HYPERPARAMS
from tests.sac_ae._helpers import random_venv

METAWORLD_ALGOS = (
    *("mtsac", "mtsac_te", "mtmhsac", "film", "softmod", "care"),
    *("pcgrad", "gradnorm", "cagrad", "paco", "famo", "uw"),
)
PIXEL_ALGOS = ("sacae", "deepmdp", "hipbmdp")
HIPBMDP_IDS = (
    "MT-HiPBMDP-Finger-Spin-vary-size-v0",
    "MT-HiPBMDP-Cheetah-Run-vary-torso-length-v0",
    "MT-HiPBMDP-Walker-Walk-vary-friction-v0",
    "MT-HiPBMDP-Walker-Walk-vary-len-v0",
)


def _presets(algo: str) -> dict:
    return yaml.safe_load((HYPERPARAMS / f"{algo}.yml").read_text())


@pytest.mark.parametrize("algo", METAWORLD_ALGOS)
def test_metaworld_presets_run_mtrls_actor_and_schedule(algo):
    presets = _presets(algo)
    for env_id in ("MT-MetaWorld-MT10-v0", "MT-MetaWorld-MT50-v0"):
        preset = presets[env_id]
        assert preset["policy_kwargs"] == {"log_std_bounds": [-20, 2], "squash_log_std": True}
        assert preset["actor_update_freq"] == 1 and preset["initial_gradient_steps"] == 1500
        assert preset["encoder_tau"] == 0.05
    for env_id in ("MT-MetaWorldPlus-MT10-v0", "MT-MetaWorldPlus-MT25-v0", "MT-MetaWorldPlus-MT50-v0"):
        preset = presets[env_id]
        assert preset["policy_kwargs"] == {"squash_log_std": False} and preset["initial_gradient_steps"] == 0
        assert preset["encoder_tau"] is None


@pytest.mark.parametrize("algo", PIXEL_ALGOS)
def test_hipbmdp_presets_run_mtrls_pixel_agent_schedule(algo):
    presets = _presets(algo)
    for env_id in HIPBMDP_IDS:
        preset = presets[env_id]
        assert preset["policy_kwargs"]["log_std_bounds"] == [-10, 2] and preset["policy_kwargs"]["squash_log_std"]
        schedule = (preset["actor_update_freq"], preset["target_update_interval"], preset["initial_gradient_steps"])
        assert schedule == (2, 2, 1500)


def test_the_mt10_preset_builds_a_squashing_actor():
    preset = _presets("mtsac")["MT-MetaWorld-MT10-v0"]
    hyperparams = apply_recipe(preset["recipe"], preset.get("recipe_kwargs"), preset)
    kwargs = {k: v for k, v in hyperparams.items() if k not in (*ZOO_ONLY_KEYS, "n_timesteps", "policy", "env_wrapper")}
    model = MTSAC(preset["policy"], make_mt_vec_env("MT-PointGoal-v0"), **{**kwargs, "buffer_size": 1000})
    assert model.actor.squash_log_std and model.actor.log_std_bounds == (-20.0, 2.0)
    assert (model.actor_update_freq, model.initial_gradient_steps) == (1, 1500)


#: the zoo's "pcgrad", "gradnorm", "famo" and "uw" are MTSAC with a gradient combiner, "distral" is Distral
DMC_BASELINES = {"distral": Distral, "pcgrad": MTSAC, "gradnorm": MTSAC, "famo": MTSAC, "uw": MTSAC}
#: the presets' hyperparameters that only size the run (shrunk here)
SHRINK = dict(buffer_size=100, learning_starts=16, batch_size=8, initial_gradient_steps=3)


def _shrunk_policy_kwargs(algo: str, policy_kwargs: dict) -> dict:
    if algo == "distral":
        return {**policy_kwargs, "net_arch": [16], "encoder_kwargs": dict(features_dim=8, num_layers=2, num_filters=4)}
    return {**policy_kwargs, **pixel_sac(net_arch=[16], features_dim=8, num_layers=2, num_filters=4)}


@pytest.mark.parametrize("algo", sorted(DMC_BASELINES))
def test_dmc_baseline_presets_build_and_train_on_pixels(algo):
    presets = _presets(algo)
    assert all(presets[env_id] == presets[HIPBMDP_IDS[0]] for env_id in HIPBMDP_IDS)
    preset = presets[HIPBMDP_IDS[0]]
    assert (preset["batch_size"], preset["actor_update_freq"], preset["target_update_interval"]) == (256, 2, 2)
    assert preset["policy_kwargs"]["squash_log_std"] and preset["policy_kwargs"]["log_std_bounds"] == [-10, 2]
    if "recipe" in preset:
        assert preset["recipe"] == "pixel_sac" and preset["grad_method"] == algo
        preset = apply_recipe(preset["recipe"], preset.get("recipe_kwargs"), preset)
    kwargs = {k: v for k, v in preset.items() if k not in (*ZOO_ONLY_KEYS, "n_timesteps", "policy", "env_wrapper")}
    kwargs["policy_kwargs"] = _shrunk_policy_kwargs(algo, kwargs["policy_kwargs"])
    model = DMC_BASELINES[algo](preset["policy"], random_venv(), **{**kwargs, **SHRINK}, seed=0)
    model.learn(24)  # learning starts at 20: the burst of 3 updates, then 1
    assert model._n_updates == 4
    if algo == "distral":
        assert model.policy.encoder.pixels and model.policy.evaluate_with_distilled and model.distral_alpha == 0.9
    else:
        assert isinstance(model.critic.features_extractor, PixelExtractor) and model.actor.squash_log_std
