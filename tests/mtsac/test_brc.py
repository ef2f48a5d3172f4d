"""
BRC in MTSAC (Nauman et al. 2025, https://arxiv.org/abs/2505.23150): the categorical critic's loss and target, per-task
reward normalisation, gradient clipping (``max_grad_norm``), the ``brc`` recipe, checkpoints and learning on
MT-PointGoal-v0. The default MTSAC path is unchanged (its exact parameters after training were compared with the main
branch when the options were added; here: the options are off by default and SB3's loss is kept).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.bronet import BroNet
from mtsb3.common.callbacks import evaluate_per_task, summarize
from mtsb3.common.categorical import cross_entropy
from mtsb3.common.experts import BatchedMLP
from mtsb3.common.reward_scaling import discounted_returns
from mtsb3.common.task import task_indices
from mtsb3.mtsac import mtsac as mtsac_module
from mtsb3.recipes import brc
from mtsb3.zoo.hyperparams import ZOO_ONLY_KEYS, apply_recipe
from tests._zoo_helpers import HYPERPARAMS
from tests.mtsac._envs import BoxTaskEnv

ENV_ID = "MT-PointGoal-v0"
TINY_BRC = dict(critic_width=16, critic_blocks=1, actor_width=16, actor_blocks=1, embedding_dim=4, n_atoms=21)
SMALL = dict(learning_starts=64, batch_size=32, buffer_size=2_000, seed=0)


def _model(policy_kwargs: dict | None = None, env=None, **kwargs) -> MTSAC:
    policy_kwargs = brc(**TINY_BRC) if policy_kwargs is None else policy_kwargs
    env = env or make_mt_vec_env(ENV_ID, seed=0)
    return MTSAC("MultiInputPolicy", env, policy_kwargs=policy_kwargs, **{**SMALL, **kwargs})


def _grad_norms(model: MTSAC, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[float]]:
    """Record the global gradient norm each optimizer steps with."""
    seen: dict[str, list[float]] = defaultdict(list)
    for name, optimizer in (
        ("actor", model.actor.optimizer),
        ("critic", model.critic.optimizer),
        ("alpha", model.ent_coef_optimizer),
    ):
        params = [p for group in optimizer.param_groups for p in group["params"]]

        def step(*args, _step=optimizer.step, _params=params, _name=name, **kwargs):
            grads = [p.grad.reshape(-1) for p in _params if p.grad is not None]
            seen[_name].append(th.linalg.vector_norm(th.cat(grads)).item())
            return _step(*args, **kwargs)

        monkeypatch.setattr(optimizer, "step", step)
    return seen


def test_max_grad_norm_clips_the_actor_and_critic_not_the_temperature(monkeypatch):
    norms = {}
    for max_grad_norm in (None, 1e-3):
        model = _model(dict(net_arch=[16]), max_grad_norm=max_grad_norm)
        seen = _grad_norms(model, monkeypatch)
        model.learn(100)  # 9 updates
        norms[max_grad_norm] = {name: np.array(values) for name, values in seen.items()}
        assert all(len(values) == 9 for values in seen.values())
    unclipped, clipped = norms[None], norms[1e-3]
    for name in ("actor", "critic"):
        assert (unclipped[name] > 1e-3).all()
        np.testing.assert_allclose(clipped[name], 1e-3, rtol=1e-4)  # clipped to the norm exactly
    assert (clipped["alpha"] > 1e-3).all()  # metaworld-algorithms leaves the temperature unclipped


def test_options_are_off_by_default_and_keep_sb3s_critic_loss():
    model = _model(dict(net_arch=[16]))
    assert model.max_grad_norm is None and model.return_scaler is None and model.critic.support is None
    assert isinstance(model.critic.q_networks, BatchedMLP) and model.policy.trunk == "mlp"
    model.learn(80)
    model.set_logger(configure(None, []))
    data = model._with_task(model.replay_buffer.sample(32))
    ent_coef = th.exp(model.log_ent_coef.detach())
    th.manual_seed(5)
    loss = model._regression_critic_loss(data, data.rewards, ent_coef, model.gamma)()
    th.manual_seed(5)
    with th.no_grad():  # SB3's SAC.train, written out
        next_actions, next_log_prob = model.actor.action_log_prob(data.next_observations)
        next_q = th.cat(model.critic_target(data.next_observations, next_actions), dim=1).min(dim=1, keepdim=True)[0]
        target = data.rewards + (1 - data.dones) * model.gamma * (next_q - (ent_coef * next_log_prob).reshape(-1, 1))
    current = th.cat(model.critic(data.observations, data.actions), dim=1)
    th.testing.assert_close(loss, 0.5 * ((current - target) ** 2).sum(dim=1))


def test_categorical_target_is_the_projected_soft_bellman_update(monkeypatch):
    model = _model(ent_coef=0.3)
    model.learn(80)
    support = model.critic.support
    assert support is not None and support.n_atoms == 21 and (support.v_min, support.v_max) == (-10.0, 10.0)
    data = model._with_task(model.replay_buffer.sample(32))
    rewards = data.rewards / 4.0
    captured = {}

    def record(logits: th.Tensor, target: th.Tensor) -> th.Tensor:
        captured["target"] = target
        return logits.sum(-1)

    monkeypatch.setattr(mtsac_module, "cross_entropy", record)
    th.manual_seed(3)
    model._categorical_critic_loss(data, rewards, model.ent_coef_tensor, model.gamma)()
    th.manual_seed(3)
    with th.no_grad():
        next_actions, next_log_prob = model.actor.action_log_prob(data.next_observations)
        logits = model.critic_target.q_outputs(data.next_observations, next_actions)  # (2 critics, batch, atoms)
        probs = (th.softmax(logits[0], -1) + th.softmax(logits[1], -1)) / 2  # BRC: the mean of the ensemble
        atoms = rewards + (1 - data.dones) * model.gamma * (support.atoms - 0.3 * next_log_prob.reshape(-1, 1))
    th.testing.assert_close(captured["target"], support.project(atoms, probs))
    # the Q-values are the expectations of the logits
    q = model.critic.q_values(data.observations, data.actions)
    th.testing.assert_close(q, support.expectation(model.critic.q_outputs(data.observations, data.actions)))


def test_categorical_critic_loss_decreases_on_a_fixed_batch(monkeypatch):
    # without the task encoder, which the critic trains and the actor reads: the target is then fixed
    policy_kwargs = {**brc(**TINY_BRC), "use_task_encoder": False, "task_encoder_kwargs": None}
    model = _model(policy_kwargs, learning_rate=3e-3, ent_coef=0.1)
    model.learn(80)
    data = model._with_task(model.replay_buffer.sample(64))
    targets = []

    def recording(logits: th.Tensor, target: th.Tensor) -> th.Tensor:
        targets.append(target)
        return cross_entropy(logits, target)

    monkeypatch.setattr(mtsac_module, "cross_entropy", recording)
    excess = []
    for _ in range(60):
        th.manual_seed(0)  # the same next actions: a fixed target (the target critic is not updated here)
        loss = model._categorical_critic_loss(data, data.rewards, model.ent_coef_tensor, model.gamma)().mean()
        model.critic.optimizer.zero_grad()
        loss.backward()
        model.critic.optimizer.step()
        # the cross-entropy above its floor, the target's entropy (one per Q-network): the KL divergence
        excess.append(loss.item() - 2 * cross_entropy(targets[-1].clamp_min(1e-12).log(), targets[-1]).mean().item())
    th.testing.assert_close(targets[-1], targets[0])
    assert excess[-1] < 0.25 * excess[0], excess[::10]


def test_reward_normalisation_statistics_per_task_and_scaled_rewards(monkeypatch):
    model = _model(normalize_task_returns=10.0)
    model.learn(260)  # 65 steps per sub-env: two 30-step (truncated) episodes of each task
    scaler = model.return_scaler
    buffer = model.replay_buffer
    horizon = 1 / (1 - model.gamma)
    for task in range(4):  # sub-env i runs task i
        rewards = buffer.rewards[:60, task]
        returns = [
            discounted_returns(episode, model.gamma, episode.mean() * horizon) for episode in (rewards[:30], rewards[30:])
        ]
        assert scaler.return_min[task] == pytest.approx(min(r.min() for r in returns), rel=1e-5)
        assert scaler.return_max[task] == pytest.approx(max(r.max() for r in returns), rel=1e-5)
    # the critic learns from each task's rewards divided by its scale
    captured = {}
    original = model._categorical_critic_loss

    def spy(replay_data, rewards, *args):
        captured.update(replay_data=replay_data, rewards=rewards)
        return original(replay_data, rewards, *args)

    monkeypatch.setattr(model, "_categorical_critic_loss", spy)
    model.set_logger(configure(None, []))
    alpha = th.exp(model.log_ent_coef.detach())  # the temperature before the train call (as BRC)
    expected_scales = scaler.scales(alpha, model.target_entropy)
    model.train(gradient_steps=1, batch_size=32)
    th.testing.assert_close(model._reward_scales, expected_scales)
    bounds = np.maximum(np.abs(scaler.return_min), np.abs(scaler.return_max))
    th.testing.assert_close(expected_scales, th.as_tensor((bounds + alpha.item() * horizon * 2 / 2) / 10, dtype=th.float32))
    task = task_indices(captured["replay_data"].observations["task_obs"], 4)
    th.testing.assert_close(captured["rewards"], captured["replay_data"].rewards / expected_scales[task].reshape(-1, 1))


def test_brc_recipe_round_trips_with_its_statistics(tmp_path):
    model = _model(normalize_task_returns=10.0, max_grad_norm=1.0)
    assert isinstance(model.actor.latent_pi, BroNet) and isinstance(model.critic.q_networks, BroNet)
    encoder = model.policy.task_encoder
    assert encoder is not None and encoder.output_dim == 4 and encoder.unit_norm
    th.testing.assert_close(encoder(th.arange(4)).norm(dim=1), th.ones(4))  # BRC's unit-norm task embedding
    assert isinstance(model.critic.optimizer, th.optim.AdamW)
    model.learn(200)
    model.save(tmp_path / "brc.zip")
    th.manual_seed(99)
    loaded = MTSAC.load(tmp_path / "brc.zip", device="cpu")
    assert loaded.critic.support is not None and loaded.max_grad_norm == 1.0
    np.testing.assert_array_equal(loaded.return_scaler.return_max, model.return_scaler.return_max)
    np.testing.assert_array_equal(loaded.return_scaler.return_min, model.return_scaler.return_min)
    obs = {"env_obs": np.random.default_rng(0).uniform(-1, 1, (8, 2)).astype(np.float32), "task_obs": np.arange(8) % 4}
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    # training goes on from the restored statistics
    loaded.set_env(make_mt_vec_env(ENV_ID, seed=1))
    loaded.learn(40, reset_num_timesteps=False)
    assert np.isfinite(loaded.return_scaler.return_max).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="max_grad_norm must be a number > 0 or None"):
        _model(max_grad_norm=0.0)
    with pytest.raises(ValueError, match=r"normalize_task_returns must be a number > 0 or None .*got True"):
        _model(normalize_task_returns=True)
    with pytest.raises(ValueError, match=r"normalize_task_returns \(per-task reward scales\) needs a Discrete task_obs"):
        _model(dict(net_arch=[8]), env=DummyVecEnv([BoxTaskEnv]), normalize_task_returns=10.0)
    with pytest.raises(ValueError, match=r"categorical_kwargs=.*needs critic_type='categorical'"):
        _model(dict(net_arch=[8], categorical_kwargs=dict(n_atoms=11)))


def test_metaworld_presets_build_brcs_networks():
    presets = yaml.safe_load((HYPERPARAMS / "brc.yml").read_text())
    widths = {"MT-MetaWorld-MT10-v0": 1024, "MT-MetaWorld-MT50-v0": 4096, "MT-MetaWorldPlus-MT10-v0": 1024}
    widths.update({"MT-MetaWorldPlus-MT25-v0": 4096, "MT-MetaWorldPlus-MT50-v0": 4096})
    for env_id, width in widths.items():
        preset = presets[env_id]
        assert preset["recipe"] == "brc" and preset["recipe_kwargs"]["critic_width"] == width, env_id
        assert (preset["normalize_task_returns"], preset["max_grad_norm"], preset["batch_size"]) == (10.0, 1.0, 1024)
        assert (preset["ent_coef"], preset["target_entropy"], preset["gradient_steps"]) == ("auto_0.1", -2.0, 2)
    preset = presets["MT-MetaWorld-MT10-v0"]
    hyperparams = apply_recipe(preset["recipe"], preset["recipe_kwargs"], preset)
    kwargs = {k: v for k, v in hyperparams.items() if k not in (*ZOO_ONLY_KEYS, "n_timesteps", "policy", "env_wrapper")}
    model = MTSAC(preset["policy"], make_mt_vec_env(ENV_ID), **{**kwargs, "buffer_size": 1000})
    assert model.policy.net_arch == {"pi": [256] * 3, "qf": [1024] * 5}  # BroNets: 1 and 2 residual blocks
    assert model.critic.support.n_atoms == 101 and model.policy.task_encoder.output_dim == 32
    assert model.actor.squash_log_std and model.actor.log_std_bounds == (-10.0, 2.0)  # BRC's NormalTanhPolicy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brc_learns_point_goal(seed):
    # as tests/mtsac/test_learning.py: standing still scores -30, the optimum about -5.5; measured means -6.3, -5.9, -6.5
    env = make_mt_vec_env(ENV_ID, seed=seed)
    policy_kwargs = brc(critic_width=64, critic_blocks=1, actor_width=64, actor_blocks=1, embedding_dim=8)
    policy_kwargs.update(log_std_bounds=(-10, 2), squash_log_std=True)
    model = MTSAC(
        "MultiInputPolicy",
        env,
        learning_starts=400,
        batch_size=128,
        learning_rate=1e-3,
        ent_coef="auto_0.01",
        target_entropy=-1.0,
        normalize_task_returns=10.0,
        max_grad_norm=1.0,
        policy_kwargs=policy_kwargs,
        seed=seed,
    )
    model.learn(4000)
    results = evaluate_per_task(model, make_mt_vec_env(ENV_ID, seed=1000), n_eval_episodes=2)
    returns = [r["mean_reward"] for r in results.values()]
    print(f"seed {seed}: {[round(r, 2) for r in returns]}")
    assert summarize(results)["mean_reward"] > -20.0, results
    assert min(returns) > -25.0, results
