"""
PaCo: the default network, loss mask-out of a diverging task, w-reset of exactly the masked tasks, argument checks,
save -> load -> predict, and learning MT-PointGoal-v0 (4000 steps, seeds 0-2: mean returns -13.9, -14.3, -13.4 when
written; standing still scores -30, the optimum about -5.5).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from mtsb3 import PaCo, make_mt_vec_env
from mtsb3.common.callbacks import evaluate_per_task, summarize
from mtsb3.common.compositional import CompositionalTaskHeads
from mtsb3.common.torch_layers import FeedForwardEncoder
from mtsb3.mtsac.conditioning import TaskHeads
from mtsb3.recipes import paco

th.set_num_threads(1)

ENV_ID = "MT-PointGoal-v0"
SMALL = dict(learning_starts=64, batch_size=64, buffer_size=1000, seed=0, disentangled_alpha=True)
SMALL_NET = paco(n_param_sets=3, net_arch=[16])
THRESHOLD = 100.0  # PointGoal's critic loss is about 1 early on; a reward of 1e3 makes it about 1e6


def _model(**kwargs) -> PaCo:
    return PaCo("MultiTaskPolicy", make_mt_vec_env(ENV_ID, seed=0), **{**SMALL, "policy_kwargs": SMALL_NET, **kwargs})


def _diverging_batch(model: PaCo) -> ReplayBufferSamples:
    """A minibatch of every task in which task 0's rewards are 1e3: its critic loss diverges, the others' do not."""
    model.learn(64)  # fills the buffer with learning_starts random steps, no update
    batch = model._with_task(model.replay_buffer.sample(64))
    task = batch.observations.task.index
    assert set(task.tolist()) == {0, 1, 2, 3}
    return batch._replace(rewards=th.where(task.view(-1, 1) == 0, th.full_like(batch.rewards, 1e3), batch.rewards))


def _step(model: PaCo, batch: ReplayBufferSamples) -> dict[str, th.Tensor]:
    """One SAC step with the same action noise for every model."""
    th.manual_seed(1)
    return model._sac_step(batch)


def _heads(model: PaCo) -> dict[str, CompositionalTaskHeads]:
    return {name: getattr(model.policy, name).heads for name in ("actor", "critic", "critic_target")}


def test_default_network_is_the_papers():
    model = PaCo("MultiTaskPolicy", make_mt_vec_env(ENV_ID, seed=0), buffer_size=100)
    assert (model.loss_mask_threshold, model.w_reset) == (3e3, "interpolate")
    assert isinstance(model.actor.features_extractor, FeedForwardEncoder)  # env_obs only: the task is in w
    assert model.actor.features_extractor.features_dim == 2
    for name, heads in _heads(model).items():
        assert isinstance(heads, CompositionalTaskHeads), name
        assert heads.n_param_sets == 5 and heads.task_vectors.shape[1:] == (4, 5)
        assert [layer.out_features for layer in heads.layers[:-1]] == [400, 400, 400]
    assert _heads(model)["critic"].n_groups == 2
    assert model.compositional_heads == list(_heads(model).values())


def test_mask_out_removes_the_diverging_tasks_loss():
    masked = _model(loss_mask_threshold=THRESHOLD, w_reset=None)
    batch = _diverging_batch(masked)
    plain = _model(loss_mask_threshold=None, w_reset=None)  # same seed: the same initial networks
    task = batch.observations.task.index
    # the decision: task 0's samples only
    critic_loss = th.cat([th.full((3,), 1e6), th.ones(3), th.full((2,), float("nan"))])
    keep = masked._loss_mask(critic_loss, th.tensor([0, 0, 0, 1, 1, 1, 2, 2]))
    assert keep.tolist() == [False] * 3 + [True] * 3 + [False] * 2  # a nan loss diverged too
    logs = {name: _step(model, batch) for name, model in (("masked", masked), ("plain", plain))}
    assert logs["plain"]["critic_loss"] > 1e5  # the diverging task dominates the unmasked loss
    assert logs["masked"]["critic_loss"] < 10
    for model, moved in ((masked, False), (plain, True)):
        for net in (model.actor, model.critic):
            grad = net.heads.task_vectors.grad
            assert grad[:, 1:].abs().min() > 0
            assert (grad[:, 0].abs().sum() > 0) == moved  # no gradient from task 0's loss when masked
    # Phi gets exactly the gradient of the other tasks' losses: the same as on a batch whose task 0 rows weigh 0
    kept = ~(task == 0)
    expected = _model(loss_mask_threshold=None, w_reset=None)
    expected._loss_mask = lambda loss, idx: kept
    _step(expected, batch)
    for layer, ref in zip(masked.critic.heads.layers, expected.critic.heads.layers, strict=True):
        th.testing.assert_close(layer.weight.grad, ref.weight.grad)
    assert masked._diverged.tolist() == [True, False, False, False]


@pytest.mark.parametrize("method", ["interpolate", "copy"])
def test_w_reset_resets_exactly_the_masked_tasks(method):
    # K = 5 > 3 other tasks: a vector of R^5 is a combination of theirs only if the reset made it one
    net = paco(n_param_sets=5, net_arch=[16])
    model = _model(loss_mask_threshold=THRESHOLD, w_reset=method, policy_kwargs=net)
    batch = _diverging_batch(model)
    reference = _model(loss_mask_threshold=THRESHOLD, w_reset=None, policy_kwargs=net)  # the same step, no reset
    for m in (model, reference):
        _step(m, batch)
        logs = m._after_gradient_step(batch)
        assert logs["masked_tasks"].item() == 1
        assert m.masked_counts.tolist() == [1, 0, 0, 0]
    coefficients = None
    for name, heads in _heads(model).items():
        after = heads.task_vectors.detach()
        before = _heads(reference)[name].task_vectors.detach()
        assert th.equal(after[:, 1:], before[:, 1:]), name  # the other tasks keep their vectors
        assert not th.allclose(after[:, 0], before[:, 0]), name
        for group in range(after.shape[0]):
            # w_0 is a combination of the other tasks' vectors, the same one in every network
            solution = th.linalg.lstsq(before[group, 1:].T, after[group, 0]).solution
            th.testing.assert_close(before[group, 1:].T @ solution, after[group, 0], atol=1e-5, rtol=1e-5)
            coefficients = solution if coefficients is None else coefficients
            th.testing.assert_close(solution, coefficients, atol=1e-4, rtol=1e-4)
    assert coefficients.min() >= -1e-5 and coefficients.sum().item() == pytest.approx(1.0, abs=1e-4)
    if method == "copy":
        assert sorted(np.round(coefficients.numpy(), 4).tolist()) == [0.0, 0.0, 1.0]


def test_no_reset_when_every_task_diverged():
    model = _model(loss_mask_threshold=THRESHOLD)
    before = model.actor.heads.task_vectors.detach().clone()
    model.reset_task_vectors(th.ones(4, dtype=th.bool))
    assert th.equal(model.actor.heads.task_vectors, before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(loss_mask_threshold=0.0), r"loss_mask_threshold must be a loss > 0 or None \(no mask-out\), got 0.0"),
        (dict(w_reset="average"), r"w_reset must be one of \('interpolate', 'copy'\) or None \(no reset\), got 'average'"),
        (dict(loss_mask_threshold=None), r"w_reset='interpolate' resets the tasks .*: set loss_mask_threshold"),
        (
            dict(policy_kwargs=dict(net_arch=[16], multi_head=True, task_heads_class=TaskHeads)),
            r"the policy has no CompositionalTaskHeads: use policy_kwargs=mtsb3.recipes.paco\(\)",
        ),
        (
            dict(policy_kwargs=dict(task_heads_class=CompositionalTaskHeads)),
            r"task_heads_class/task_heads_kwargs build the per-task heads: they need multi_head=True or disjoint_policy",
        ),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model(**kwargs)


def test_save_load_predict_identical_with_the_stabiliser_state(tmp_path):
    model = _model(loss_mask_threshold=THRESHOLD, w_reset="copy")
    batch = _diverging_batch(model)
    _step(model, batch)
    model._after_gradient_step(batch)
    model.learn(64, reset_num_timesteps=False)
    model.save(tmp_path / "paco.zip")
    th.manual_seed(99)
    loaded = PaCo.load(tmp_path / "paco.zip", device="cpu")
    assert (loaded.loss_mask_threshold, loaded.w_reset) == (THRESHOLD, "copy")
    assert loaded.masked_counts.tolist() == [1, 0, 0, 0]
    for name, heads in _heads(loaded).items():
        assert th.equal(heads.task_vectors, _heads(model)[name].task_vectors), name
    rng = np.random.default_rng(0)
    obs = {"env_obs": rng.uniform(-1, 1, (8, 2)).astype(np.float32), "task_obs": np.arange(8) % 4}
    action = model.predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(action, loaded.predict(obs, deterministic=True)[0])
    assert len({tuple(a) for a in np.round(action[:4], 5)}) == 4  # each task has its own network


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paco_learns_point_goal(seed):
    env = make_mt_vec_env(ENV_ID, seed=seed)
    model = PaCo(
        "MultiTaskPolicy",
        env,
        policy_kwargs=paco(n_param_sets=3, net_arch=[64, 64]),
        learning_starts=400,
        batch_size=128,
        learning_rate=1e-3,
        disentangled_alpha=True,
        seed=seed,
    )
    model.learn(4000)
    results = evaluate_per_task(model, make_mt_vec_env(ENV_ID, seed=1000), n_eval_episodes=2)
    returns = [r["mean_reward"] for r in results.values()]
    assert summarize(results)["mean_reward"] > -20.0, results  # standing still: -30
    assert min(returns) > -25.0, results
