"""
The mtrl docs' MT10 commands (the mtrl docs, Baselines > Metaworld: MT-SAC, CARE, Soft Modularization, PCGrad) map onto
one preset each, knob by knob: every key of the mtrl config that the run depends on (config/experiment, replay_buffer,
agent/state_sac or pcgrad_state_sac, agent/components/actor and critic, optimizers, multitask, encoder) is checked on
the model built from ``hyperparams/<algo>.yml``'s ``MT-MetaWorld-MT10-v0`` preset. (``setup.seed=1`` is ``--seed 1``.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
import yaml

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.soft_modularization import SoftModularizedMLP
from mtsb3.common.task_encoder import load_task_embeddings
from mtsb3.common.torch_layers import FeedForwardEncoder, MixtureOfEncoders
from mtsb3.zoo.hyperparams import ZOO_ONLY_KEYS, apply_recipe
from tests._zoo_helpers import HYPERPARAMS

pytest.importorskip("metaworld")
th.set_num_threads(1)

ENV_ID, N_TASKS = "MT-MetaWorld-MT10-v0", 10
#: what the zoo does not pass to the model
NOT_MODEL_KEYS = (*ZOO_ONLY_KEYS, "n_timesteps", "policy", "env_wrapper")

#: the mtrl keys of each docs command (config defaults + the command's overrides) -> value
COMMON = {
    "experiment.num_train_steps": 2_000_000,
    "experiment.init_steps": 1500,
    "experiment.eval_freq": 10_000,
    "experiment.num_eval_episodes": 1,
    "replay_buffer.capacity": 1_000_000,
    "replay_buffer.batch_size": 1280,
    "agent.discount": 0.99,
    "agent.init_temperature": 1.0,
    "agent.actor_update_freq": 1,
    "agent.critic_tau": 0.005,
    "agent.critic_target_update_freq": 1,
    "agent.encoder_tau": 0.05,
    "agent.actor.log_std_bounds": (-20.0, 2.0),
    "agent.optimizers.lr": 3e-4,
    "agent.optimizers.betas": (0.9, 0.999),
    "agent.multitask.num_envs": N_TASKS,
    "agent.multitask.should_use_multi_head_policy": False,
    "agent.multitask.should_use_disjoint_policy": False,
}
METHODS = {
    "mtsac": {"agent.multitask.should_use_disentangled_alpha": True, "agent.multitask.should_use_task_encoder": False},
    "care": {
        "agent.multitask.should_use_disentangled_alpha": True,
        "agent.multitask.should_use_task_encoder": True,
        "agent.multitask.pretrained_embedding_cfg.should_use": True,
        "agent.encoder.type_to_select": "moe",
        "agent.encoder.moe.task_id_to_encoder_id_cfg.mode": "attention",
        "agent.encoder.moe.num_experts": 4,
    },
    "softmod": {
        "agent.multitask.should_use_disentangled_alpha": True,
        "agent.multitask.should_use_task_encoder": True,
        "agent.multitask.pretrained_embedding_cfg.should_use": False,
        "agent.multitask.actor_cfg.moe_cfg.mode": "soft_modularization",
        "agent.multitask.actor_cfg.moe_cfg.num_experts": 4,
    },
    "pcgrad": {"agent": "pcgrad_state_sac", "agent.multitask.should_use_disentangled_alpha": False},
}


@pytest.fixture(scope="module")
def env():
    return make_mt_vec_env(ENV_ID, seed=1)


def _preset_and_model(algo: str, env) -> tuple[dict, MTSAC]:
    preset = yaml.safe_load((HYPERPARAMS / f"{algo}.yml").read_text())[ENV_ID]
    hyperparams = apply_recipe(preset["recipe"], preset.get("recipe_kwargs"), preset)
    kwargs = {k: v for k, v in hyperparams.items() if k not in NOT_MODEL_KEYS}
    kwargs["buffer_size"] = 1000  # checked on the preset below: 1M transitions do not fit a unit test
    return preset, MTSAC(preset["policy"], env, seed=1, **kwargs)


def _mlp_sizes(module: th.nn.Module) -> list[int]:
    return [m.out_features for m in module.modules() if isinstance(m, th.nn.Linear)]


@pytest.mark.parametrize("algo", sorted(METHODS))
def test_mtrl_mt10_command_maps_onto_the_preset(algo, env):
    mtrl = {**COMMON, **METHODS[algo]}
    preset, model = _preset_and_model(algo, env)
    policy = model.policy
    # experiment and replay buffer: one mtrl step is one step of the 10 task sub-envs (mtrl/experiment/multitask.py)
    assert preset["n_timesteps"] == mtrl["experiment.num_train_steps"] * N_TASKS
    assert preset["learning_starts"] == mtrl["experiment.init_steps"] * N_TASKS
    assert model.initial_gradient_steps == mtrl["experiment.init_steps"]  # the burst of updates at learning start
    assert preset["eval_freq"] == mtrl["experiment.eval_freq"] * N_TASKS
    assert preset["eval_episodes"] == mtrl["experiment.num_eval_episodes"]
    assert preset["buffer_size"] == mtrl["replay_buffer.capacity"] and model.batch_size == mtrl["replay_buffer.batch_size"]
    assert (model.train_freq.frequency, model.gradient_steps) == (1, 1)  # one update per mtrl step
    # the SAC agent
    assert model.gamma == mtrl["agent.discount"]
    assert th.exp(model.log_ent_coef.detach()).tolist() == pytest.approx(
        [mtrl["agent.init_temperature"]] * model.log_ent_coef.numel()
    )
    assert model.actor_update_freq == mtrl["agent.actor_update_freq"]
    assert (model.tau, model.target_update_interval) == (mtrl["agent.critic_tau"], mtrl["agent.critic_target_update_freq"])
    assert model.encoder_tau == mtrl["agent.encoder_tau"]
    assert model.actor.squash_log_std and model.actor.log_std_bounds == mtrl["agent.actor.log_std_bounds"]
    for optimizer in (model.actor.optimizer, model.critic.optimizer, model.ent_coef_optimizer):
        assert isinstance(optimizer, th.optim.Adam)
        assert optimizer.defaults["lr"] == mtrl["agent.optimizers.lr"]
        assert optimizer.defaults["betas"] == mtrl["agent.optimizers.betas"]
    # multitask
    assert model.n_tasks == mtrl["agent.multitask.num_envs"] or not mtrl["agent.multitask.should_use_disentangled_alpha"]
    assert model.disentangled_alpha == mtrl["agent.multitask.should_use_disentangled_alpha"]
    assert model.log_ent_coef.numel() == (N_TASKS if model.disentangled_alpha else 1)
    assert policy.multi_head == mtrl["agent.multitask.should_use_multi_head_policy"]
    assert policy.disjoint_policy == mtrl["agent.multitask.should_use_disjoint_policy"]
    assert policy.use_task_encoder == mtrl.get("agent.multitask.should_use_task_encoder", False)
    assert model.grad_method == ("pcgrad" if mtrl.get("agent") == "pcgrad_state_sac" else None)
    _check_networks(algo, mtrl, model)


def _check_networks(algo: str, mtrl: dict, model: MTSAC) -> None:
    """The encoder and the actor/critic MLPs of each method (mtrl: 3 x 400, encoders of config/agent/encoder)."""
    policy, extractor = model.policy, model.actor.features_extractor
    if algo in ("mtsac", "pcgrad"):
        # the identity encoder: the networks read env_obs only (the task encoder is off)
        assert isinstance(extractor, FeedForwardEncoder) and extractor.features_dim == 39
        assert _mlp_sizes(model.actor.latent_pi) == [400, 400, 400]
    elif algo == "care":
        assert isinstance(extractor, MixtureOfEncoders) and extractor.mode == "attention"
        assert extractor.n_experts == mtrl["agent.encoder.moe.num_experts"]
        assert _mlp_sizes(model.actor.latent_pi) == [400, 400, 400]
        # pretrained task-description embeddings (shipped), frozen, in the env's task order
        table = policy.task_encoder.embedding.weight
        assert policy.task_encoder.pretrained and not table.requires_grad
        np.testing.assert_allclose(table.numpy(), load_task_embeddings("MT10", model.task_names))
        assert policy.task_encoder.output_dim == 50
    else:
        # mtrl's feedforward encoder (50, 2 layers, 50), then SoftModularizedMLP(num_layers=2, hidden 400) as the actor and
        # as each Q-network, which routes on the projected [encoding | action]
        assert isinstance(extractor, FeedForwardEncoder) and extractor.features_dim == 50
        actor, critic = model.actor.latent_pi, model.critic.q_networks
        assert isinstance(actor, SoftModularizedMLP) and isinstance(critic, SoftModularizedMLP)
        for net, out in ((actor.base, 2 * 4), (critic.base, 1)):
            assert net.n_modules == mtrl["agent.multitask.actor_cfg.moe_cfg.num_experts"]
            assert (net.n_layers, net.layers[0].out_features, net.out_features) == (2, 400, out)
        assert actor.projection is None and (critic.projection.in_features, critic.projection.out_features) == (50 + 4, 50)
        assert critic.base.n_networks == 2
        assert not policy.task_encoder.pretrained and policy.task_encoder.output_dim == 50
    assert math.isclose(model.learning_rate, mtrl["agent.optimizers.lr"])
