"""Distral: batched task policies, the KL term, training on own-task data, save/load, learning."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from mtsb3 import make_mt_vec_env
from mtsb3.common.callbacks import MultiTaskEvalCallback
from mtsb3.common.task import from_task_blocks, group_by_task, to_task_blocks
from mtsb3.distral import Distral, gaussian_kl
from mtsb3.distral.policies import TaskActors

th.set_num_threads(1)

ENV_ID = "MT-PointGoal-v0"
SMALL = dict(net_arch=[32, 32])


def _model(**kwargs) -> Distral:
    kwargs.setdefault("policy_kwargs", SMALL)
    kwargs.setdefault("learning_starts", 100)
    kwargs.setdefault("seed", 0)
    return Distral("MultiInputPolicy", make_mt_vec_env(ENV_ID, seed=0), **kwargs)


def _obs(n: int = 64, seed: int = 0) -> dict[str, th.Tensor]:
    gen = th.Generator().manual_seed(seed)
    return {"env_obs": th.rand(n, 2, generator=gen) * 2 - 1, "task_obs": th.arange(n) % 4}


def test_task_blocks_round_trip_with_unbalanced_tasks():
    task_idx = th.tensor([2, 0, 2, 2, 1, 0, 2])
    grouping = group_by_task(task_idx, 4)
    assert grouping.n_slots == 4
    x = th.arange(7.0).unsqueeze(1).repeat(1, 3)
    blocks = to_task_blocks(x, grouping, 4)
    assert blocks.shape == (4, 4, 3)
    # task 2's samples, in batch order, then zero padding; task 3 has none
    th.testing.assert_close(blocks[2, :, 0], th.tensor([0.0, 2.0, 3.0, 6.0]))
    th.testing.assert_close(blocks[3], th.zeros(4, 3))
    th.testing.assert_close(from_task_blocks(blocks, grouping), x)


def test_each_sample_uses_its_own_task_actor():
    th.manual_seed(0)
    actors = TaskActors(3, 5, 2, [8, 8], th.nn.ReLU)
    obs, task_idx = th.randn(10, 5), th.tensor([0, 1, 2, 2, 1, 0, 0, 2, 1, 1])
    mean, log_std = actors.get_action_dist_params(obs, group_by_task(task_idx, 3))
    for b in range(10):
        t = int(task_idx[b])
        h = obs[b]
        for layer in actors.latent_pi.layers:
            h = th.relu(h @ layer.weight[t] + layer.bias[t, 0]) if hasattr(layer, "weight") else h
        th.testing.assert_close(mean[b], h @ actors.mu.weight[t] + actors.mu.bias[t, 0])
        th.testing.assert_close(log_std[b], (h @ actors.log_std.weight[t] + actors.log_std.bias[t, 0]).clamp(-20, 2))


def test_gaussian_kl_is_the_closed_form():
    gen = th.Generator().manual_seed(0)
    mp, lp, mq, lq = (th.randn(6, 3, generator=gen) for _ in range(4))
    expected = th.distributions.kl_divergence(th.distributions.Normal(mp, lp.exp()), th.distributions.Normal(mq, lq.exp()))
    th.testing.assert_close(gaussian_kl(mp, lp, mq, lq), expected.sum(-1))
    th.testing.assert_close(gaussian_kl(mp, lp, mp, lp), th.zeros(6))


def test_the_kl_term_of_the_objective_matches_the_gaussian_closed_form():
    # the regularised reward's terms log π_i(a|s) - log π0(a|s) at a ~ π_i (tanh-squashed) estimate KL(π_i || π0),
    # which equals the closed-form KL of the pre-tanh Gaussians (KL is invariant under the tanh bijection)
    model = _model()
    th.manual_seed(0)
    with th.no_grad():  # make the task policies and π0 differ clearly
        for p in model.actor.parameters():
            p.add_(0.5 * th.randn_like(p))
    obs = _obs(8)
    env_obs, grouping = model.policy.split_obs(obs)
    with th.no_grad():
        mean_i, log_std_i = model.actor.get_action_dist_params(env_obs, grouping)
        mean_0, log_std_0, _ = model.distilled.get_action_dist_params(env_obs)
        closed_form = gaussian_kl(mean_i, log_std_i, mean_0, log_std_0)
    estimate = model.distral_kl(obs, n_samples=4000)
    assert (closed_form > 0.05).all()
    th.testing.assert_close(estimate, closed_form, rtol=0.1, atol=0.03)


def test_log_pi0_is_evaluated_at_the_task_policy_action():
    # the soft target and the actor loss use log π0(a|s) at the task policy's own sample a (a fix of mtrl, see README,
    # "Differences from mtrl and mtenv"), computed from its pre-tanh value; it equals π0's log-density of the squashed action a
    # itself
    model = _model()
    obs = _obs(16)
    env_obs, grouping = model.policy.split_obs(obs)
    with th.no_grad():
        actions, gaussian, _, _, _ = model.actor.sample(env_obs, grouping)
        log_pi0 = model._distilled_log_prob(env_obs, actions, gaussian)
        mean_0, log_std_0, _ = model.distilled.get_action_dist_params(env_obs)
    base = th.distributions.Normal(mean_0.double(), log_std_0.exp().double())
    squashed = th.distributions.TransformedDistribution(base, [th.distributions.TanhTransform()])
    expected = squashed.log_prob(actions.double().clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    th.testing.assert_close(log_pi0.double(), expected, rtol=1e-3, atol=1e-3)


def test_each_task_policy_trains_on_its_own_task_data_only():
    # only task 1 is ever run, so only task 1's slices of the stacked networks may change (a fix of mtrl, see README,
    # "Differences from mtrl and mtenv")
    env = make_mt_vec_env(ENV_ID, n_envs=2, seed=0, tasks=[1])
    model = Distral("MultiInputPolicy", env, learning_starts=64, batch_size=32, policy_kwargs=SMALL, seed=0)
    before = {name: p.detach().clone() for name, p in model.policy.named_parameters()}
    model.learn(160)
    stacked = [n for n in before if n.startswith(("actor.", "critic.")) and not n.startswith("critic_target")]
    assert stacked
    for name in stacked:
        after = dict(model.policy.named_parameters())[name].detach()
        n_blocks = after.shape[0]  # T for the actors, n_critics * T for the critics (task-major within each critic)
        own = [i for i in range(n_blocks) if i % 4 == 1]
        others = [i for i in range(n_blocks) if i % 4 != 1]
        assert not th.equal(after[own], before[name][own]), name
        th.testing.assert_close(after[others], before[name][others], rtol=0, atol=0, msg=name)
    # and π0 is distilled from task 1's policy
    assert not th.equal(dict(model.policy.named_parameters())["distilled.mu.weight"], before["distilled.mu.weight"])


@pytest.mark.parametrize(("distral_alpha", "same"), [(0.0, True), (1.0, False)])
def test_distral_alpha_controls_the_pull_towards_pi0(distral_alpha, same):
    # with alpha = 0 the task policies ignore π0 (independent SAC learners): perturbing π0 changes nothing
    results = []
    for perturb in (False, True):
        model = _model(distral_alpha=distral_alpha, distral_beta=5.0, batch_size=32)
        if perturb:
            with th.no_grad():
                model.distilled.mu.bias.add_(0.7)
        model.learn(200)
        results.append(th.cat([p.detach().reshape(-1) for p in model.actor.parameters()]))
    assert th.equal(results[0], results[1]) is same


def test_save_load_round_trip(tmp_path):
    model = _model(distral_beta="auto_0.2")
    model.learn(200)
    assert model.log_ent_coef.shape == (4,)
    obs = {"env_obs": np.random.default_rng(0).uniform(-1, 1, (8, 2)).astype(np.float32), "task_obs": np.arange(8) % 4}
    actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "distral")
    loaded = Distral.load(tmp_path / "distral", env=make_mt_vec_env(ENV_ID, seed=1))
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    for (name, p), q in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        assert th.equal(p, q), name
    th.testing.assert_close(loaded.log_ent_coef, model.log_ent_coef)
    assert loaded.distilled.optimizer.state_dict()["state"], "π0's optimizer state is saved"
    assert loaded.task_names == ["goal_0", "goal_1", "goal_2", "goal_3"] and loaded.env_id == ENV_ID
    # the task decides the action: same position, different tasks -> different actions
    same_pos = {"env_obs": np.zeros((4, 2), dtype=np.float32), "task_obs": np.arange(4)}
    assert len({tuple(np.round(a, 5)) for a in loaded.predict(same_pos, deterministic=True)[0]}) == 4
    loaded.learn(50)  # and it keeps training


def test_checkpoint_is_atomic_and_checks_the_task_order(tmp_path):
    model = _model()
    model.task_names = ["goal_3", "goal_2", "goal_1", "goal_0"]
    model.save(tmp_path / "distral")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["distral.zip"]  # no temporary file left behind
    with pytest.raises(ValueError, match="another order"):
        Distral.load(tmp_path / "distral", env=make_mt_vec_env(ENV_ID))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Distral .* needs a multi-task Dict observation space"):
        Distral("MlpPolicy", gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match=r"distral_alpha must be in \[0, 1\]"):
        _model(distral_alpha=1.5)
    with pytest.raises(ValueError, match="distral_beta must be > 0"):
        _model(distral_beta=0.0)
    with pytest.raises(ValueError, match="distral_beta must be a positive float, 'auto'"):
        _model(distral_beta="fixed")


def test_distral_learns_point_goal(tmp_path):
    # 4 goals that are not in env_obs: each task policy must learn its own goal. Random ≈ -30, optimal ≈ -5.5;
    # seeds 0, 1, 2 reach -12.4, -14.9, -15.8 after 4000 transitions. Evaluated by MultiTaskEvalCallback at the end.
    callback = MultiTaskEvalCallback(
        make_mt_vec_env(ENV_ID, seed=100), n_eval_episodes=5, eval_freq=1000, best_model_save_path=str(tmp_path), verbose=0
    )
    model = Distral(
        "MultiInputPolicy",
        make_mt_vec_env(ENV_ID, seed=0),
        learning_starts=500,
        distral_beta="auto_0.1",
        policy_kwargs=dict(net_arch=[64, 64]),
        seed=0,
    )
    model.learn(4000, callback=callback)
    assert set(callback.last_results) == {"goal_0", "goal_1", "goal_2", "goal_3"}
    assert callback.last_summary["mean_reward"] > -20.0, callback.last_summary
    assert Distral.load(tmp_path / "best_model.zip").task_names == model.task_names
