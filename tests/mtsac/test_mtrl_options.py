"""mtrl's actor and update schedule as MTSAC options: tanh-squashed log std, actor_update_freq, the burst of
initial updates, target updates counted over the run, and the disjoint (one network per task) policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import obs_as_tensor

from mtsb3 import MTSAC, SACAE, make_mt_vec_env
from mtsb3.mtsac.actor import bound_log_std, check_log_std_bounds
from mtsb3.mtsac.policies import MultiInputPolicy
from mtsb3.recipes import recipe

ENV_ID = "MT-PointGoal-v0"
SMALL = dict(learning_starts=40, batch_size=16, buffer_size=2_000, policy_kwargs=dict(net_arch=[8]), seed=0)


def _model(**kwargs) -> MTSAC:
    return MTSAC("MultiInputPolicy", make_mt_vec_env(ENV_ID, seed=0), **{**SMALL, **kwargs})


def _obs(tasks: list[int]) -> dict[str, th.Tensor]:
    rng = np.random.default_rng(0)
    return obs_as_tensor({"env_obs": rng.normal(size=(len(tasks), 2)).astype(np.float32), "task_obs": np.array(tasks)}, "cpu")


def test_squashed_log_std_is_mtrls_formula():
    x = th.linspace(-30, 30, 13)
    expected = -20 + 0.5 * 22 * (np.tanh(x.numpy()) + 1)
    np.testing.assert_allclose(bound_log_std(x, (-20, 2), squash=True).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert float(bound_log_std(th.zeros(1), (-20, 2), squash=True)) == pytest.approx(-9.0)  # a fresh mtrl actor
    assert th.equal(bound_log_std(x, (-20, 2)), th.clamp(x, -20, 2))  # SB3's default


@pytest.mark.parametrize("bounds", [(2, -20), (1,), (0, float("inf"))])
def test_bad_log_std_bounds_raise(bounds):
    with pytest.raises(ValueError, match="log_std_bounds must be two finite numbers"):
        check_log_std_bounds(bounds)


@pytest.mark.parametrize("multi_head", [False, True])
def test_actor_squashes_its_log_std_into_the_bounds(multi_head):
    env = make_mt_vec_env(ENV_ID)
    kwargs = dict(net_arch=[8], log_std_bounds=[-10, 2], squash_log_std=True, multi_head=multi_head)
    policy = MultiInputPolicy(env.observation_space, env.action_space, lambda _: 1e-3, **kwargs)
    last = policy.actor.heads.mlp.layers[-1] if multi_head else policy.actor.log_std
    with th.no_grad():  # the raw log std output is then exactly 0 (multi-head: mean and log std share the layer)
        last.weight.zero_()
        last.bias.zero_()
    _, log_std, _ = policy.actor.get_action_dist_params(_obs([0, 1, 2]))
    th.testing.assert_close(log_std, th.full_like(log_std, -4.0))  # -10 + 0.5 * 12 * (tanh(0) + 1)
    # the option survives the constructor parameters (save/load)
    rebuilt = MultiInputPolicy(**policy._get_constructor_parameters())
    assert rebuilt.actor.squash_log_std and rebuilt.actor.log_std_bounds == (-10.0, 2.0)


def test_squash_log_std_with_gsde_raises():
    with pytest.raises(ValueError, match="squash_log_std=True bounds the actor's log std output"):
        _model(use_sde=True, policy_kwargs=dict(net_arch=[8], squash_log_std=True))


def _count_steps(model: MTSAC) -> dict[str, int]:
    counts = {"actor": 0, "critic": 0, "ent_coef": 0, "target": 0}
    for name, optimizer in (("actor", model.actor.optimizer), ("critic", model.critic.optimizer)):
        optimizer.register_step_post_hook(lambda *_, n=name: counts.__setitem__(n, counts[n] + 1))
    model.ent_coef_optimizer.register_step_post_hook(lambda *_: counts.__setitem__("ent_coef", counts["ent_coef"] + 1))
    update = model._update_target_networks

    def counted() -> None:
        counts["target"] += 1
        update()

    model._update_target_networks = counted
    return counts


def test_actor_and_target_updates_follow_their_frequencies_over_the_run():
    model = _model(actor_update_freq=2, target_update_interval=3)
    model.learn(44)  # fills the buffer, one update
    model.set_logger(configure(None, []))
    n0 = model._n_updates
    counts = _count_steps(model)
    for _ in range(7):  # one gradient step per call, as train_freq=1: SB3 would update the target every call
        model.train(gradient_steps=1, batch_size=16)
    steps = range(n0, n0 + 7)
    assert counts["critic"] == 7
    assert counts["actor"] == counts["ent_coef"] == sum(n % 2 == 0 for n in steps)
    assert counts["target"] == sum(n % 3 == 0 for n in steps)
    assert "train/actor_loss" in model.logger.name_to_value


@pytest.mark.parametrize(("initial", "expected"), [(0, 10), (25, 34)])
def test_initial_gradient_steps_burst_when_learning_starts(initial, expected):
    # 4 sub-envs: train runs at timesteps 44, 48, ..., 80 (10 calls of 1 update); the first call runs `initial`
    model = _model(initial_gradient_steps=initial)
    model.learn(80)
    assert model._n_updates == expected


def test_schedule_options_are_checked_and_inherited():
    with pytest.raises(ValueError, match="actor_update_freq must be >= 1"):
        _model(actor_update_freq=0)
    assert issubclass(SACAE, MTSAC)  # SAC-AE, DeepMDP and HiP-BMDP take the same keyword arguments


def test_disjoint_policy_is_one_whole_network_per_task(tmp_path):
    model = _model(policy_kwargs=dict(net_arch=[8, 8], disjoint_policy=True))
    actor, critic = model.actor, model.critic
    assert len(actor.latent_pi) == 0 and len(critic.q_networks.layers) == 0  # nothing shared
    weights = [m.weight for m in actor.heads.mlp.layers if hasattr(m, "weight")]
    assert [tuple(w.shape) for w in weights] == [(4, 6, 8), (4, 8, 8), (4, 8, 4)]  # obs 2 + one-hot 4 -> 2 x (mean, log std)
    assert critic.heads.mlp.layers[0].weight.shape == (2 * 4, 6 + 2, 8)  # 2 Q-networks x 4 tasks
    obs = _obs([0, 1, 2, 3, 1])
    mean, _, _ = actor.get_action_dist_params(obs)
    q = critic.q_values(obs, th.zeros(5, 2))
    with th.no_grad():  # task 1's first layer only
        weights[0][1] += 1.0
        critic.heads.mlp.layers[0].weight[[1, 5]] += 1.0
    changed = th.tensor([False, True, False, False, True])
    assert (actor.get_action_dist_params(obs)[0] != mean).any(dim=1).eq(changed).all()
    assert (critic.q_values(obs, th.zeros(5, 2)) != q).any(dim=2).eq(changed).all()
    model.save(tmp_path / "m")
    loaded = MTSAC.load(tmp_path / "m", env=model.get_env())
    assert loaded.policy.disjoint_policy and loaded.policy.disjoint_net_arch == [8, 8]
    th.testing.assert_close(loaded.actor.get_action_dist_params(obs)[0], actor.get_action_dist_params(obs)[0])


@pytest.mark.parametrize(
    ("policy_kwargs", "message"),
    [
        (dict(disjoint_policy=True, multi_head=True), "already gives each task its whole network"),
        (dict(disjoint_policy=True, net_arch=dict(pi=[8], qf=[16])), "needs the same actor and critic sizes"),
    ],
)
def test_disjoint_policy_bad_combinations_raise(policy_kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model(policy_kwargs=policy_kwargs)


def test_encoder_tau_averages_the_target_features_extractor_with_its_own_rate():

    policy_kwargs = recipe("care", net_arch=[8], task_encoder_kwargs=dict(output_dim=4), n_experts=2)
    model = _model(tau=0.1, encoder_tau=0.5, policy_kwargs=policy_kwargs)
    with th.no_grad():
        for p in model.critic.parameters():
            p.add_(1.0)
    before = {name: t.detach().clone() for name, t in model.critic_target.named_parameters()}
    online = dict(model.critic.named_parameters())
    model._update_target_networks()
    names = list(before)
    for name, target in model.critic_target.named_parameters():
        rate = 0.5 if name.startswith("features_extractor.") else 0.1
        th.testing.assert_close(target, (1 - rate) * before[name] + rate * online[name])
    assert any(n.startswith("features_extractor.") for n in names) and any(
        not n.startswith("features_extractor.") for n in names
    )
    with pytest.raises(ValueError, match=r"encoder_tau must be in \[0, 1\]"):
        _model(encoder_tau=1.5)
