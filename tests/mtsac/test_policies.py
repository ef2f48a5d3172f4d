"""Multi-task SAC policies: per-task heads, fused critic, task conditioning, custom extractors, constructor params."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import obs_as_tensor
from torch import nn

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.mtsac.policies import MTCritic, MTSACPolicy, MultiInputPolicy, MultiTaskPolicy, TaskHeads

ENV_ID = "MT-PointGoal-v0"


def _reference_heads(heads: TaskHeads, x: th.Tensor, task_idx: th.Tensor) -> th.Tensor:
    """Each sample through its own task's head, one sample at a time (test reference only)."""
    layers = [m for m in heads.mlp.layers if hasattr(m, "weight")]
    out = []
    for g in range(heads.n_groups):
        rows = []
        for b in range(x.shape[1]):
            e = g * heads.n_tasks + int(task_idx[b])
            h = x[g, b]
            for i, layer in enumerate(layers):
                h = h @ layer.weight[e] + layer.bias[e, 0]
                if i < len(layers) - 1:
                    h = th.relu(h)
            rows.append(h)
        out.append(th.stack(rows))
    return th.stack(out)


@pytest.mark.parametrize(("net_arch", "n_groups"), [([], 1), ([5], 2)])
def test_task_heads_match_per_sample_reference(net_arch, n_groups):
    th.manual_seed(0)
    heads = TaskHeads(n_tasks=4, in_features=6, net_arch=net_arch, out_features=3, n_groups=n_groups)
    task_idx = th.tensor([2, 0, 2, 3, 2, 0, 1])  # unbalanced: task 2 three times
    x = th.randn(n_groups, 7, 6)
    th.testing.assert_close(heads(x, task_idx), _reference_heads(heads, x, task_idx))
    if n_groups == 1:
        th.testing.assert_close(heads(x[0], task_idx), _reference_heads(heads, x, task_idx)[0])


def test_task_heads_gradient_only_reaches_used_heads():
    heads = TaskHeads(n_tasks=4, in_features=3, net_arch=[], out_features=2)
    heads(th.randn(5, 3), th.tensor([1, 1, 3, 3, 1])).sum().backward()
    grad = heads.mlp.layers[0].weight.grad
    assert grad[[0, 2]].abs().sum() == 0 and (grad[[1, 3]].abs().sum(dim=(1, 2)) > 0).all()


def _policy(**kwargs) -> MTSACPolicy:
    env = make_mt_vec_env(ENV_ID)
    return MultiInputPolicy(env.observation_space, env.action_space, lambda _: 1e-3, net_arch=[8, 8], **kwargs)


def _obs(tasks: list[int]) -> dict[str, th.Tensor]:
    rng = np.random.default_rng(0)
    return obs_as_tensor({"env_obs": rng.normal(size=(len(tasks), 2)).astype(np.float32), "task_obs": np.array(tasks)}, "cpu")


def test_multi_head_actor_and_critic_are_per_task():
    policy = _policy(multi_head=True)
    assert not hasattr(policy.actor, "mu")
    obs = _obs([0, 1, 2, 3, 1])
    actions = th.zeros(5, 2)
    mean_before, _, _ = policy.actor.get_action_dist_params(obs)
    q_before = policy.critic.q_values(obs, actions)
    assert q_before.shape == (2, 5, 1)
    with th.no_grad():  # change the heads of task 1 only (actor and both Q-networks)
        policy.actor.heads.mlp.layers[0].weight[1] += 1.0
        policy.critic.heads.mlp.layers[0].weight[[1, 5]] += 1.0  # expert = critic * n_tasks + task
    mean_after, _, _ = policy.actor.get_action_dist_params(obs)
    q_after = policy.critic.q_values(obs, actions)
    changed = th.tensor([False, True, False, False, True])
    assert (mean_after != mean_before).any(dim=1).eq(changed).all()
    assert (q_after != q_before).any(dim=2).eq(changed).all()


def test_fused_critic_is_independent_q_networks():
    policy = _policy(n_critics=3)
    critic = policy.critic
    assert isinstance(critic, MTCritic) and critic.q_networks.n_experts == 3
    obs, actions = _obs([0, 1, 2]), th.randn(3, 2)
    q = critic(obs, actions)
    assert len(q) == 3 and all(v.shape == (3, 1) for v in q)
    th.testing.assert_close(critic.q1_forward(obs, actions), q[0])
    with th.no_grad():
        critic.q_networks.layers[-1].bias[2] += 1.0
    q2 = critic(obs, actions)
    th.testing.assert_close(q2[0], q[0])
    th.testing.assert_close(q2[1], q[1])
    th.testing.assert_close(q2[2], q[2] + 1.0)


def test_task_encoder_is_shared_and_trained_by_the_critic_only():
    policy = _policy(use_task_encoder=True, task_encoder_kwargs=dict(output_dim=5))
    encoder = policy.task_encoder
    assert policy.actor.conditioning.task_encoder is encoder and policy.critic.conditioning.task_encoder is encoder
    assert policy.critic_target.conditioning.task_encoder is not encoder
    encoder_params = {id(p) for p in encoder.parameters()}
    actor_params = {id(p) for g in policy.actor.optimizer.param_groups for p in g["params"]}
    critic_params = {id(p) for g in policy.critic.optimizer.param_groups for p in g["params"]}
    assert not encoder_params & actor_params and encoder_params <= critic_params
    # the actor input is features (2 + 4 one-hot) + encoding (5)
    assert policy.actor.latent_pi[0].in_features == 11
    obs = _obs([0, 3])
    mean, _, _ = policy.actor.get_action_dist_params(obs)
    mean.sum().backward()
    assert all(p.grad is None for p in encoder.parameters())  # detached in the actor
    policy.critic(obs, th.zeros(2, 2))[0].sum().backward()
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)


def test_task_one_hot_concatenation_and_flag_checks():
    policy = _policy(concat_task_one_hot=True)
    assert policy.actor.latent_pi[0].in_features == 6 + 4
    with pytest.raises(ValueError, match="needs use_task_encoder=True"):
        _policy(condition_features_extractor_on_task=True)


class EnvObsFiLM(BaseFeaturesExtractor):
    """A features extractor over ``env_obs`` only, modulated by the policy's task encoding (FiLM-style)."""

    def __init__(self, observation_space: spaces.Dict, features_dim: int = 6, encoding_dim: int = 4):
        super().__init__(observation_space, features_dim)
        self.linear = nn.Linear(observation_space["env_obs"].shape[0], features_dim)
        self.film = nn.Linear(encoding_dim, 2 * features_dim)
        self.calls = 0

    def forward(self, observations, task_encoding):
        self.calls += 1
        gamma, beta = self.film(task_encoding).chunk(2, dim=1)
        return th.relu(gamma * self.linear(observations["env_obs"]) + beta)


def test_custom_extractor_with_task_encoding_multi_head_learns_and_reloads(tmp_path):
    policy_kwargs = dict(
        net_arch=[16],
        features_extractor_class=EnvObsFiLM,
        features_extractor_kwargs=dict(features_dim=6, encoding_dim=4),
        multi_head=True,
        use_task_encoder=True,
        task_encoder_kwargs=dict(output_dim=4, net_arch=[8]),
        condition_features_extractor_on_task=True,
        concat_task_encoding=False,
        share_features_extractor=True,
    )
    env = make_mt_vec_env(ENV_ID, seed=0)
    model = MTSAC("MultiTaskPolicy", env, learning_starts=40, batch_size=16, policy_kwargs=policy_kwargs, seed=0)
    assert model.actor.features_extractor is model.critic.features_extractor
    assert model.actor.latent_pi[0].in_features == 6
    model.learn(80)
    assert model.actor.features_extractor.calls > 0
    model.save(tmp_path / "m")
    loaded = MTSAC.load(tmp_path / "m", env=env)
    obs = env.reset()
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_constructor_parameters_hold_every_argument():
    kwargs = dict(
        multi_head=True,
        head_net_arch=[4],
        use_task_encoder=True,
        task_encoder_kwargs=dict(output_dim=3),
        concat_task_encoding=False,
        condition_features_extractor_on_task=False,
        concat_task_one_hot=True,
        train_task_encoder_with_actor=True,
        share_features_extractor=True,
        n_critics=3,
    )
    policy = _policy(**kwargs)
    params = policy._get_constructor_parameters()
    for key, value in kwargs.items():
        assert params[key] == value, key
    rebuilt = MultiInputPolicy(**params)
    rebuilt.load_state_dict(policy.state_dict())
    obs = _obs([0, 2, 3])
    th.testing.assert_close(rebuilt.actor(obs, deterministic=True), policy.actor(obs, deterministic=True))
    for module in (policy.actor, policy.critic):
        sub_params = module._get_constructor_parameters()
        for key in ("n_tasks", "multi_head", "head_net_arch", "concat_task_one_hot"):
            assert key in sub_params
    assert MTSAC.policy_aliases["MultiTaskPolicy"] is MultiTaskPolicy is MultiInputPolicy


def test_multi_head_with_gsde_raises():
    with pytest.raises(ValueError, match="use_sde"):
        _policy(multi_head=True, use_sde=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(train_task_encoder_with_actor=True), "train_task_encoder_with_actor=True needs use_task_encoder=True"),
        (dict(task_encoder_kwargs=dict(output_dim=3)), "task_encoder_kwargs=.* needs use_task_encoder=True"),
        (dict(head_net_arch=[4]), r"head_net_arch=\[4\] needs multi_head=True"),
        (dict(multi_head=True, use_sde=True), "multi_head=True is not supported with use_sde=True"),
    ],
)
def test_no_option_is_dropped_silently(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _policy(**kwargs)


def test_extractor_gets_the_task_encoding_size_from_the_policys_encoder():
    from mtsb3.common.torch_layers import FiLMEncoder

    kwargs = dict(use_task_encoder=True, task_encoder_kwargs=dict(output_dim=7), condition_features_extractor_on_task=True)
    policy = _policy(features_extractor_class=FiLMEncoder, **kwargs)
    assert policy.actor.features_extractor.task_encoding_dim == 7 and policy.actor.features_extractor.task_encoder is None
    assert "task_encoding_dim" not in policy.features_extractor_kwargs  # nothing stored: the encoder decides on reload
    with pytest.raises(ValueError, match="task_encoding_dim=5, but the policy's task encoder outputs 7"):
        _policy(features_extractor_class=FiLMEncoder, features_extractor_kwargs=dict(task_encoding_dim=5), **kwargs)


def test_optimizers_are_built_once_over_the_listed_parameters(monkeypatch):
    built = []
    original = MTSACPolicy._make_optimizer
    monkeypatch.setattr(
        MTSACPolicy, "_make_optimizer", lambda self, params, *a, **k: built.append(params) or original(self, params, *a, **k)
    )
    policy = _policy(use_task_encoder=True, share_features_extractor=True)
    assert len(built) == 2
    for optimizer, params in (
        (policy.actor.optimizer, policy.actor_parameters()),
        (policy.critic.optimizer, policy.critic_parameters()),
    ):
        assert [p for g in optimizer.param_groups for p in g["params"]] == params
    assert not {id(p) for p in policy.task_encoder.parameters()} & {id(p) for p in policy.actor_parameters()}
    assert not any(p is q for p in policy.critic_parameters() for q in policy.actor.features_extractor.parameters())
