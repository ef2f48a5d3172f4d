"""MTSAC: per-task alpha, task loss weights, the gradient-combiner hook, argument checks, checkpoints and resume."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from mtsb3 import MTSAC, TaskBalancedReplayBuffer, make_mt_vec_env
from tests.mtsac._envs import BoxTaskEnv

ENV_ID = "MT-PointGoal-v0"
TASKS = ["goal_0", "goal_1", "goal_2", "goal_3"]
SMALL = dict(learning_starts=64, batch_size=32, buffer_size=2_000, policy_kwargs=dict(net_arch=[16]), seed=0)


def _model(env=None, **kwargs) -> MTSAC:
    return MTSAC("MultiInputPolicy", env or make_mt_vec_env(ENV_ID, seed=0), **{**SMALL, **kwargs})


def test_disentangled_alpha_one_per_task_and_logged():
    model = _model(disentangled_alpha=True, ent_coef="auto_0.5")
    assert model.log_ent_coef.shape == (4,)
    np.testing.assert_allclose(model.log_ent_coef.detach().numpy(), np.log(0.5), rtol=1e-6)
    assert model.ent_coef_optimizer.param_groups[0]["params"][0] is model.log_ent_coef
    model.learn(120)
    model.set_logger(configure(None, []))
    model.train(gradient_steps=2, batch_size=32)
    logged = model.logger.name_to_value
    alphas = th.exp(model.log_ent_coef.detach()).numpy()
    for i, name in enumerate(TASKS):
        assert logged[f"train/ent_coef/{name}"] == pytest.approx(alphas[i])
    assert len(set(np.round(alphas, 8))) == 4  # each task's alpha got its own gradient


def test_alpha_only_moves_for_tasks_in_the_batch():
    # the buffer only holds tasks 0 and 1: the alphas of tasks 2 and 3 get no gradient
    env = make_mt_vec_env(ENV_ID, seed=0, tasks=[0, 1])
    model = _model(env, disentangled_alpha=True)
    before = model.log_ent_coef.detach().clone()
    model.learn(100)
    after = model.log_ent_coef.detach()
    assert (after[:2] != before[:2]).all()
    assert th.equal(after[2:], before[2:])


def test_entropy_terms_use_each_samples_own_alpha(monkeypatch):
    model = _model(disentangled_alpha=True)
    model.learn(80)
    model.set_logger(configure(None, []))
    with th.no_grad():
        model.log_ent_coef.copy_(th.log(th.tensor([0.1, 0.2, 0.4, 0.8])))
    model.ent_coef_optimizer.param_groups[0]["lr"] = 0.0  # keep the alphas fixed during the step
    model.lr_schedule = lambda _: 0.0
    seen = {}
    original = model.actor.action_log_prob

    def spy(obs):
        actions, log_prob = original(obs)
        seen.setdefault("log_prob", log_prob)
        seen.setdefault("task_obs", obs["task_obs"])
        return actions, log_prob

    calls = []
    monkeypatch.setattr(model.actor, "action_log_prob", spy)
    monkeypatch.setattr(model, "_apply_update", lambda opt, loss, *a, **k: calls.append(loss.detach()) or loss.mean().detach())
    model.train(1, 32)
    ent_loss = calls[0]
    task = seen["task_obs"].reshape(-1).long()
    alpha_log = th.log(th.tensor([0.1, 0.2, 0.4, 0.8]))[task]
    expected = -(alpha_log * (seen["log_prob"].detach() + model.target_entropy))
    th.testing.assert_close(ent_loss, expected)


def test_task_loss_weights_softmax_of_minus_log_alpha(monkeypatch):
    model = _model(disentangled_alpha=True, task_loss_weights=True)
    model.learn(80)
    model.set_logger(configure(None, []))
    log_alpha = th.log(th.tensor([0.1, 0.2, 0.4, 0.8]))
    with th.no_grad():
        model.log_ent_coef.copy_(log_alpha)
    model.lr_schedule = lambda _: 0.0
    model.tau = 0.0  # the target critic must not move between the two steps
    weighted = []
    monkeypatch.setattr(
        model, "_apply_update", lambda opt, loss, *a, **k: weighted.append(loss.detach()) or loss.mean().detach()
    )
    th.manual_seed(0)
    np.random.seed(0)
    model.train(1, 32)
    # the same step without weights
    model.task_loss_weights = False
    unweighted = []
    monkeypatch.setattr(
        model, "_apply_update", lambda opt, loss, *a, **k: unweighted.append(loss.detach()) or loss.mean().detach()
    )
    th.manual_seed(0)
    np.random.seed(0)
    model.train(1, 32)
    replay = model.replay_buffer
    np.random.seed(0)
    task = replay.sample(32).observations["task_obs"].reshape(-1).long()
    weights = (4 * th.softmax(-log_alpha, 0))[task]
    for w_loss, loss in zip(weighted[1:], unweighted[1:], strict=True):  # critic and actor losses
        th.testing.assert_close(w_loss, loss * weights)


class _SumCombiner(th.nn.Module):
    """A stand-in gradient combiner: the plain sum of the per-task losses, recording what it was given."""

    def __init__(self, n_tasks: int, seed: int | None = None, scale: float = 1.0):
        super().__init__()
        self.n_tasks, self.seed, self.scale = n_tasks, seed, scale
        self.batch_size: int | None = None  # set by the test
        self.calls = []
        self.register_buffer("n_calls", th.zeros((), dtype=th.long))

    def backward(self, task_losses, params, task_present, task_idx):
        assert task_idx.shape == (self.batch_size,) and task_idx.dtype == th.long
        self.calls.append((task_losses.detach().clone(), task_present.clone(), len(params)))
        self.n_calls += 1
        (self.scale * task_losses[task_present].sum()).backward()


def test_grad_method_hook_routes_per_task_losses(monkeypatch, tmp_path):
    import mtsb3.mtsac.mtsac

    fake = lambda name, n_tasks, seed=None, **kw: _SumCombiner(n_tasks, seed, **kw)  # noqa: E731
    monkeypatch.setattr(mtsb3.mtsac.mtsac, "make_grad_combiner", fake)
    model = _model(grad_method="sum", grad_method_kwargs=dict(scale=2.0))
    critic, actor = model.critic_grad_combiner, model.actor_grad_combiner
    critic.batch_size = actor.batch_size = model.batch_size
    assert (critic.seed, actor.seed, critic.scale) == (0, 1, 2.0)
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.learn(100)
    assert len(critic.calls) == len(actor.calls) == model._n_updates > 0
    task_losses, present, n_params = critic.calls[-1]
    assert task_losses.shape == (4,) and present.dtype == th.bool and present.all()
    assert n_params == len(model.critic.optimizer.param_groups[0]["params"])
    assert actor.calls[-1][2] == len(model.actor.optimizer.param_groups[0]["params"])
    assert any(not th.equal(b, a) for b, a in zip(before, model.actor.parameters(), strict=True))
    # a combiner with state is saved and restored like the networks
    model.save(tmp_path / "model")
    loaded = MTSAC.load(tmp_path / "model", env=model.get_env())
    assert loaded.critic_grad_combiner.n_calls.item() == len(critic.calls)


def test_grad_method_without_discrete_tasks_raises():
    with pytest.raises(ValueError, match="Discrete task_obs"):
        MTSAC("MultiInputPolicy", DummyVecEnv([BoxTaskEnv]), grad_method="pcgrad")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(disentangled_alpha=True), "disentangled_alpha=True .*needs a Discrete task_obs"),
        (dict(policy_kwargs=dict(multi_head=True)), "multi_head=True needs a Discrete task_obs"),
        (dict(policy_kwargs=dict(use_task_encoder=True)), "use_task_encoder=True needs a Discrete task_obs"),
    ],
)
def test_task_options_need_a_discrete_task_space(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        MTSAC("MultiInputPolicy", DummyVecEnv([BoxTaskEnv]), **kwargs)
    assert "continuous task descriptor" in str(error.value)


def test_bad_option_combinations_raise():
    with pytest.raises(ValueError, match="needs disentangled_alpha=True"):
        _model(task_loss_weights=True)
    with pytest.raises(ValueError, match="needs ent_coef='auto'"):
        _model(disentangled_alpha=True, ent_coef=0.1)


def test_box_task_space_still_trains_as_plain_conditioning():
    model = MTSAC("MultiInputPolicy", DummyVecEnv([BoxTaskEnv]), **SMALL)
    model.learn(100)
    assert model.n_tasks is None and model.log_ent_coef.shape == (1,)


CONFIGS = {
    "plain": dict(),
    "disentangled": dict(disentangled_alpha=True),
    "multi_head_encoder": dict(
        disentangled_alpha=True,
        task_loss_weights=True,
        policy_kwargs=dict(net_arch=[16], multi_head=True, use_task_encoder=True, task_encoder_kwargs=dict(output_dim=8)),
    ),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_save_load_predict_identical(config, tmp_path):
    model = _model(**CONFIGS[config])
    model.learn(100)
    model.save(tmp_path / "model")
    assert sorted(os.listdir(tmp_path)) == ["model.zip"]  # no temporary file left behind
    env = make_mt_vec_env(ENV_ID, seed=3)
    loaded = MTSAC.load(tmp_path / "model", env=env)
    assert loaded.env_id == ENV_ID and loaded.task_names == TASKS
    th.testing.assert_close(loaded.log_ent_coef, model.log_ent_coef, rtol=0, atol=0)
    obs = env.reset()
    for deterministic in (True, False):
        th.manual_seed(1)
        expected, _ = model.predict(obs, deterministic=deterministic)
        th.manual_seed(1)
        actual, _ = loaded.predict(obs, deterministic=deterministic)
        np.testing.assert_array_equal(actual, expected)
    # the policy alone round-trips through its constructor parameters
    policy = type(model.policy).load(_save_policy(model, tmp_path))
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def _save_policy(model: MTSAC, tmp_path) -> str:
    path = str(tmp_path / "policy.pth")
    model.policy.save(path)
    return path


def test_load_with_another_task_order_raises(tmp_path):
    model = _model()
    model.task_names = list(reversed(TASKS))
    model.save(tmp_path / "model")
    with pytest.raises(ValueError, match="another order"):
        MTSAC.load(tmp_path / "model", env=make_mt_vec_env(ENV_ID))
    model.task_names = ["a", "b", "c", "d"]
    model.save(tmp_path / "model")
    with pytest.raises(ValueError, match="trained on 'MT-PointGoal-v0' with \\['a'"):
        MTSAC.load(tmp_path / "model", env=make_mt_vec_env(ENV_ID))
    loaded = MTSAC.load(tmp_path / "model")  # without an env there is nothing to check
    assert loaded.task_names == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="trained on"):
        loaded.set_env(make_mt_vec_env(ENV_ID))


def test_resume_continues_the_run_exactly(tmp_path):
    kwargs = dict(disentangled_alpha=True, replay_buffer_class=TaskBalancedReplayBuffer, learning_starts=40)
    reference = _model(**kwargs)
    reference.learn(160)

    interrupted = _model(**kwargs)
    interrupted.learn(80)
    env = interrupted.get_env()
    interrupted.save(tmp_path / "ckpt" / "model")
    interrupted.save_replay_buffer(tmp_path / "ckpt" / "buffer")
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["buffer.pkl", "model.zip"]
    del interrupted
    th.manual_seed(123)  # anything drawn from the global RNGs in between must not matter
    np.random.seed(123)
    resumed = MTSAC.load(tmp_path / "ckpt" / "model", env=env, resume=True)
    resumed.load_replay_buffer(tmp_path / "ckpt" / "buffer")
    resumed.learn(80, reset_num_timesteps=False)

    assert resumed.num_timesteps == reference.num_timesteps == 160
    for (name, expected), actual in zip(
        reference.policy.state_dict().items(), resumed.policy.state_dict().values(), strict=True
    ):
        assert th.equal(expected, actual), name
    assert th.equal(reference.log_ent_coef, resumed.log_ent_coef)


def test_resume_needs_an_mtsac_checkpoint(tmp_path):
    from stable_baselines3 import SAC

    SAC("MultiInputPolicy", make_mt_vec_env(ENV_ID), policy_kwargs=dict(net_arch=[8])).save(tmp_path / "sac")
    with pytest.raises((ValueError, KeyError, TypeError)):
        MTSAC.load(tmp_path / "sac", env=make_mt_vec_env(ENV_ID), resume=True)


@pytest.mark.parametrize(
    ("task_obs", "message"),
    [
        (7, r"Invalid task_obs 7: expected an integer task index in \[0, 3\] \(4 tasks\)"),
        (-1, r"Invalid task_obs -1: expected an integer task index in \[0, 3\]"),
        (1.5, r"Invalid task_obs 1\.5: expected an integer task index in \[0, 3\]"),
        (np.array([0, 1, 5]), r"Invalid task_obs 5: expected an integer task index in \[0, 3\]"),
    ],
)
@pytest.mark.parametrize("multi_head", [False, True])
def test_predict_rejects_bad_task_indices(task_obs, message, multi_head):
    model = _model(policy_kwargs=dict(net_arch=[8], multi_head=multi_head))
    env_obs = np.zeros((np.size(task_obs), 2) if np.ndim(task_obs) else 2, dtype=np.float32)
    with pytest.raises(ValueError, match=message):  # a torch RuntimeError, or a silently rounded task, before
        model.predict({"env_obs": env_obs, "task_obs": task_obs})
    with pytest.raises(ValueError, match=r"needs observations with \['env_obs', 'task_obs'\] keys, got \['env_obs'\]"):
        model.predict({"env_obs": env_obs})
    assert model.predict({"env_obs": np.zeros(2, np.float32), "task_obs": np.int64(3)})[0].shape == (2,)


def test_multi_task_policy_on_a_box_env_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"MultiInputPolicy \(MultiTaskPolicy\) needs a Dict observation space .* use 'MlpPolicy'"
    ):
        MTSAC("MultiTaskPolicy", "Pendulum-v1")  # an AttributeError from CombinedExtractor before


def test_loading_a_checkpoint_of_another_algorithm_names_it(tmp_path):
    from mtsb3.distral import Distral

    env = make_mt_vec_env(ENV_ID, seed=0)
    _model(env).save(tmp_path / "mtsac")
    Distral("MultiInputPolicy", env, buffer_size=100, policy_kwargs=dict(net_arch=[8])).save(tmp_path / "distral")
    with pytest.raises(ValueError, match=r"mtsac.zip was saved by MTSAC, not Distral: load it with MTSAC.load\(...\)"):
        Distral.load(tmp_path / "mtsac.zip", env=env)  # an AttributeError before
    with pytest.raises(ValueError, match=r"distral was saved by Distral, not MTSAC: load it with Distral.load\(...\)"):
        MTSAC.load(tmp_path / "distral")  # a KeyError before

    class MyMTSAC(MTSAC):
        pass

    assert MyMTSAC.load(tmp_path / "mtsac").task_names == TASKS  # a subclass may load its base's checkpoints


def _count_task_derivations(monkeypatch) -> dict[str, int]:
    """Count the calls of the task-index derivation and of the per-task routing (both in mtsb3.common.task)."""
    import mtsb3.common.task as task_module

    calls = {"task_indices": 0, "group_by_task": 0}

    def counter(name: str):
        original = getattr(task_module, name)

        def counted(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return counted

    for name in calls:
        monkeypatch.setattr(task_module, name, counter(name))
    return calls


@pytest.mark.parametrize("extractor", ["one_hot", "care"])
def test_one_task_index_derivation_per_gradient_step_and_per_predict(monkeypatch, extractor):
    from mtsb3.common.torch_layers import FeedForwardEncoder
    from mtsb3.recipes import care

    if extractor == "care":
        policy_kwargs = care(net_arch=[16], task_encoder_kwargs=dict(output_dim=4))
    else:
        policy_kwargs = dict(
            net_arch=[16],
            features_extractor_class=FeedForwardEncoder,
            features_extractor_kwargs=dict(net_arch=[8], features_dim=8, task_conditioning="one_hot"),
            use_task_encoder=True,
            task_encoder_kwargs=dict(output_dim=4),
            concat_task_one_hot=True,
        )
    # every consumer at once: per-task heads, task encoder, one-hot, extractor, per-task alphas and loss weights
    model = _model(
        policy_kwargs={**policy_kwargs, "multi_head": True},
        disentangled_alpha=True,
        task_loss_weights=True,
        grad_method="pcgrad",
    )
    model.learn(70)
    calls = _count_task_derivations(monkeypatch)
    model.train(gradient_steps=3, batch_size=32)
    assert calls == {"task_indices": 3, "group_by_task": 3}
    calls.update(task_indices=0, group_by_task=0)
    obs = {"env_obs": np.zeros((5, 2), np.float32), "task_obs": np.array([0, 1, 2, 3, 1])}
    model.predict(obs, deterministic=True)
    assert calls == {"task_indices": 1, "group_by_task": 1}


def test_a_transition_has_the_task_of_its_observation():
    # what lets a gradient step derive the task once for s and s': tasks change at resets only, and SB3 stores an
    # episode's terminal observation as the next observation of its last transition
    import gymnasium as gym

    from mtgym.wrappers import SampleRandomTask

    env = DummyVecEnv([lambda: SampleRandomTask(gym.make(ENV_ID, max_episode_steps=5)) for _ in range(2)])
    model = _model(env, learning_starts=200)
    model.learn(100)
    buffer = model.replay_buffer
    tasks, next_tasks = (
        data["task_obs"][: buffer.pos].reshape(-1) for data in (buffer.observations, buffer.next_observations)
    )
    assert len(np.unique(tasks)) > 1  # the tasks did change, at resets
    np.testing.assert_array_equal(tasks, next_tasks)
