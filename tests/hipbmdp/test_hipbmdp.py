import numpy as np
import pytest
import torch as th

from mtsb3 import HiPBMDP
from mtsb3.hipbmdp import HiPBMDPPolicy, ThetaModel, contrastive_theta_loss
from tests.sac_ae._helpers import (
    SMALL_MODEL,
    SMALL_POLICY,
    SMALL_THETA,
    changed,
    fill_buffer,
    parameters_by_name,
    random_venv,
)


def make_model(**kwargs):
    policy_kwargs = {**SMALL_POLICY, **SMALL_MODEL, **SMALL_THETA, **kwargs.pop("policy_kwargs", {})}
    model = HiPBMDP(
        "MultiInputPolicy",
        random_venv(),
        buffer_size=200,
        batch_size=16,
        seed=0,
        device="cpu",
        policy_kwargs=policy_kwargs,
        **kwargs,
    )
    fill_buffer(model)
    return model


def opt_ids(optimizer):
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def test_theta_wiring():
    model = make_model()
    policy = model.policy
    assert isinstance(policy, HiPBMDPPolicy) and isinstance(policy.theta, ThetaModel)
    # the training tasks come from the env's sub-envs (the train split)
    assert policy.theta.train_tasks.tolist() == [3, 4, 7, 8] and model.policy_kwargs["train_tasks"] == [3, 4, 7, 8]
    # the actor and critic see [encoder(s), θ] with θ detached; θ has its own optimizer, outside the SAC ones
    assert policy.actor.conditioning.task_encoder is policy.theta and policy.critic.conditioning.task_encoder is policy.theta
    assert policy.actor.conditioning.detach_task_encoding and policy.critic.conditioning.detach_task_encoding
    theta_ids = {id(p) for p in policy.task_encoder.parameters()}
    assert opt_ids(policy.theta_optimizer) == theta_ids
    for optimizer in (policy.actor.optimizer, policy.critic.optimizer, policy.encoder_optimizer, policy.transition_optimizer):
        assert not opt_ids(optimizer) & theta_ids
    # latent = 16 encoder features + 8 θ: transition model, reward decoder and pixel decoder work on it
    assert policy.latent_dim == 24
    assert policy.transition_model.fc_mu.out_features == 24 and policy.decoder.fc.in_features == 24
    obs = model.replay_buffer.sample(5).observations
    features, task_idx = policy.encode_features(obs)
    th.testing.assert_close(policy.encode(obs), th.cat([features, policy.theta(task_idx, "embedding")], dim=1))
    th.testing.assert_close(policy.critic.conditioning(obs, policy.critic.features_extractor)[0], policy.encode(obs))


def test_one_update_trains_every_parameter_and_only_train_task_thetas():
    model = make_model()
    policy = model.policy
    before = parameters_by_name(policy)
    embedding_before = policy.task_encoder.embedding.weight.detach().clone()
    # two updates: θ moves at the end of the first one, and the critic target's copy follows it in the second
    model.train(gradient_steps=2, batch_size=16)
    assert [name for name, moved in changed(before, policy).items() if not moved] == []
    rows_moved = (policy.task_encoder.embedding.weight.detach() != embedding_before).any(dim=1)
    assert rows_moved.nonzero().flatten().tolist() == [3, 4, 7, 8]
    logged = model.logger.name_to_value
    assert {"train/transition_loss", "train/reward_loss", "train/ae_loss", "train/contrastive_loss"} <= logged.keys()


def test_contrastive_update_closed_form_and_only_theta_gets_gradients():
    model = make_model()
    policy = model.policy
    batch = model.replay_buffer.sample(16)
    with th.no_grad():
        features, task_idx = policy.encode_features(batch.observations)
        theta = policy.theta(task_idx, "embedding")
        mu = policy.transition_model(th.cat([features, theta, batch.actions], dim=1))[0]
        mu_flip = policy.transition_model(th.cat([features, theta.flip(0), batch.actions], dim=1))[0]
        expected = (th.linalg.norm(theta - theta.flip(0)) - th.linalg.norm(mu - mu_flip)) ** 2
    policy.zero_grad(set_to_none=True)
    loss = model._contrastive_loss(batch)
    th.testing.assert_close(loss, expected)
    th.testing.assert_close(loss, contrastive_theta_loss(theta, mu, mu_flip))
    with_grad = {name for name, p in policy.named_parameters() if p.grad is not None}
    assert with_grad and all("task_encoder" in name for name in with_grad)


def test_strategy_per_eval_split():
    model = make_model()
    policy = model.policy
    # each task acts with its split's strategy: own θ for train ("base"), the mean training θ for unseen tasks
    e, m = "embedding", "mean_train"
    assert policy.theta.task_strategies == [e, e, m, e, e, m, m, e, e, m]
    assert policy.theta.strategy is None
    frames = model.get_env().reset()["env_obs"][:1]

    def act(tasks):
        obs = {"env_obs": np.repeat(frames, len(tasks), axis=0), "task_obs": np.array(tasks)}
        return model.predict(obs, deterministic=True)[0]

    # one batch mixing splits, as MultiTaskEvalCallback evaluates: same frames, same θ for the unseen tasks
    actions = act([3, 4, 5, 6, 2, 9])
    assert not np.allclose(actions[0], actions[1])  # two training tasks, each with its own θ
    for i in (3, 4, 5):
        np.testing.assert_allclose(actions[i], actions[2])
    mean_train = policy.theta.all_thetas()[[3, 4, 7, 8]].mean(0)
    th.testing.assert_close(
        policy.theta(th.tensor([5, 2, 3])), th.stack([mean_train, mean_train, policy.theta.all_thetas()[3]])
    )
    with model.eval_split("base"):  # every task with its own θ
        assert policy.theta.strategy == "embedding"
        base = act([5, 6])
        assert not np.allclose(base[0], base[1])
    assert policy.theta.strategy is None  # restored
    model.set_eval_split("extrapolation")
    assert policy.theta.strategy == "mean_train"
    np.testing.assert_allclose(act([3, 4])[0], act([3, 4])[1])
    model.set_eval_split(None)
    assert policy.theta.strategy is None
    with pytest.raises(ValueError, match=r"no θ strategy for split 'test'; known splits: \['base', 'extrapolation'"):
        model.set_eval_split("test")
    custom = make_model(theta_strategies={"interpolation": "zero", "hard": "mean"})
    assert custom.theta_strategy("interpolation") == "zero" and custom.theta_strategy("hard") == "mean"
    assert custom.policy.theta.task_strategies == [e, e, m, e, e, "zero", "zero", e, e, m]
    # trained on every task: each task acts with its own θ
    everything = HiPBMDP("MultiInputPolicy", random_venv(tasks=range(10)), policy_kwargs={**SMALL_POLICY, **SMALL_THETA})
    assert everything.policy.theta.task_strategies == [e] * 10
    assert everything.policy.theta.train_tasks.tolist() == list(range(10))


def test_save_load_round_trip(tmp_path):
    model = make_model(contrastive_coef=0.5, theta_strategies={"extrapolation": "zero"})
    model.train(gradient_steps=2, batch_size=16)
    obs = model.get_env().reset()
    predictions = {}
    for split in ("base", "interpolation", "extrapolation"):
        with model.eval_split(split):
            predictions[split] = model.predict(obs, deterministic=True)[0]
    model.save(tmp_path / "hipbmdp")
    loaded = HiPBMDP.load(tmp_path / "hipbmdp", env=random_venv(tasks=(2, 5, 6, 9)), device="cpu")
    assert loaded.contrastive_coef == 0.5 and loaded.theta_strategy("extrapolation") == "zero"
    assert loaded.policy.theta.train_tasks.tolist() == [3, 4, 7, 8]  # from the checkpoint, not the new env
    for split, actions in predictions.items():
        with loaded.eval_split(split):
            np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], actions)
    for name, value in model.policy.state_dict().items():
        th.testing.assert_close(loaded.policy.state_dict()[name], value)
    saved, restored = model.policy.theta_optimizer.state_dict(), loaded.policy.theta_optimizer.state_dict()
    th.testing.assert_close(restored["state"][0]["exp_avg"], saved["state"][0]["exp_avg"])
    assert loaded.policy.actor.conditioning.task_encoder is loaded.policy.theta


def test_errors():
    with pytest.raises(ValueError, match="needs use_task_encoder=True"):
        make_model(policy_kwargs=dict(use_task_encoder=False))
    with pytest.raises(ValueError, match="theta strategy must be one of"):
        make_model(theta_strategies={"base": "median"})
    with pytest.raises(ValueError, match="contrastive_coef must be >= 0"):
        make_model(contrastive_coef=-1.0)
    with pytest.raises(ValueError, match="task 3 is in splits 'base' and 'hard'"):
        venv = random_venv(task_splits={"train": [3], "hard": [3]})
        HiPBMDP("MultiInputPolicy", venv, theta_strategies={"hard": "zero"}, policy_kwargs={**SMALL_POLICY, **SMALL_THETA})
