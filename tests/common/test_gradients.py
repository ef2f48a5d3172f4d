"""Gradient combiners: vectorised per-task gradients, PCGrad, CAGrad, GradNorm, the registry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch as th

from mtsb3.common.experts import BatchedMLP
from mtsb3.common.gradients import (
    GRAD_METHODS,
    CAGrad,
    GradCombiner,
    GradNorm,
    PCGrad,
    cagrad_weights,
    make_grad_combiner,
    pcgrad_orders,
    per_sample_task_gradients,
    per_task_gradients,
    register_grad_method,
)
from mtsb3.common.task import per_task_mean

th.set_num_threads(1)


def _linear_losses(task_grads: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """Task losses L_t = a_t . theta, whose gradients are exactly the rows a_t (in float64)."""
    theta = th.zeros(task_grads.shape[1], dtype=th.float64, requires_grad=True)
    return task_grads.double() @ theta, theta


def _combine(method: GradCombiner, task_grads: th.Tensor, present: th.Tensor | None = None) -> th.Tensor:
    losses, theta = _linear_losses(task_grads)
    method.backward(losses, [theta], present)
    assert theta.grad is not None
    return theta.grad


def test_per_task_gradients_equal_a_loop_of_backward_passes():
    th.manual_seed(0)
    n_tasks, batch = 5, 64
    net = th.nn.Sequential(th.nn.Linear(6, 16), th.nn.Tanh(), th.nn.Linear(16, 16), th.nn.ReLU(), th.nn.Linear(16, 1))
    params = list(net.parameters())
    x, y = th.randn(batch, 6), th.randn(batch)
    task_idx = th.randint(0, n_tasks, (batch,))
    task_idx[:n_tasks] = th.arange(n_tasks)
    task_losses, present = per_task_mean((net(x).squeeze(1) - y) ** 2, task_idx, n_tasks)
    assert bool(present.all())

    batched = per_task_gradients(task_losses, params, retain_graph=True)
    loop = th.stack(
        [th.cat([g.reshape(-1) for g in th.autograd.grad(loss, params, retain_graph=True)]) for loss in task_losses]
    )
    assert batched.shape == (n_tasks, sum(p.numel() for p in params))
    th.testing.assert_close(batched, loop, rtol=1e-5, atol=1e-6)


def _loop(task_losses: th.Tensor, params: list[th.Tensor]) -> th.Tensor:
    rows = []
    for loss in task_losses:
        grads = th.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        rows.append(
            th.cat([p.new_zeros(p.numel()) if g is None else g.reshape(-1) for g, p in zip(grads, params, strict=True)])
        )
    return th.stack(rows)


def _unbalanced_tasks(batch: int, n_tasks: int) -> th.Tensor:
    task_idx = th.randint(0, n_tasks - 1, (batch,))  # the last task is missing from the batch
    task_idx[: n_tasks - 1] = th.arange(n_tasks - 1)
    return task_idx


def test_per_sample_path_equals_a_loop_on_linear_networks():
    # nn.Linear layers (SB3 actors) and a BatchedMLP fed the same 2-D input (MTSAC's fused twin critic), with
    # unbalanced tasks and a missing one
    th.manual_seed(0)
    n_tasks, batch = 5, 70
    mlp = th.nn.Sequential(th.nn.Linear(6, 16), th.nn.Tanh(), th.nn.Linear(16, 8), th.nn.ReLU(), th.nn.Linear(8, 2))
    twin = BatchedMLP(2, 8, [16, 16], 1)
    params = [*mlp.parameters(), *twin.parameters()]
    x, task_idx = th.randn(batch, 6), _unbalanced_tasks(batch, n_tasks)
    actions = th.tanh(mlp(x))
    q = twin(th.cat([x, actions], dim=1)).squeeze(-1).T  # (batch, 2)
    per_sample_loss = (q - 1).pow(2).sum(1) + actions.pow(2).sum(1)
    task_losses, present = per_task_mean(per_sample_loss, task_idx, n_tasks)
    assert not present[-1]
    expected = _loop(task_losses, params)
    fast = per_sample_task_gradients(task_losses, params, task_idx, retain_graph=True)
    assert fast is not None
    th.testing.assert_close(fast, expected, rtol=1e-4, atol=1e-6)
    th.testing.assert_close(per_task_gradients(task_losses, params), expected, rtol=1e-4, atol=1e-6)


def test_per_sample_path_equals_a_loop_with_embeddings_and_per_task_heads():
    # a task embedding (padding row 0 gets no gradient) and per-task heads run on padded (T, m, in) task blocks
    from mtsb3.common.experts import BatchedLinear
    from mtsb3.common.task import from_task_blocks, group_by_task, to_task_blocks

    th.manual_seed(1)
    n_tasks, batch = 4, 37
    embedding = th.nn.Embedding(n_tasks + 1, 3, padding_idx=0)
    trunk, heads = th.nn.Linear(5 + 3, 8), BatchedLinear(2 * n_tasks, 8, 1)  # two groups of per-task heads
    params = [*embedding.parameters(), *trunk.parameters(), *heads.parameters()]
    x, task_idx = th.randn(batch, 5), _unbalanced_tasks(batch, n_tasks)
    lookup = th.where(task_idx == 1, th.zeros_like(task_idx), task_idx + 1)  # task 1 reads the padding row
    hidden = th.relu(trunk(th.cat([x, embedding(lookup)], dim=1)))
    grouping = group_by_task(task_idx, n_tasks)
    blocks = to_task_blocks(hidden, grouping, n_tasks).repeat(2, 1, 1)  # (2 T, m, 8)
    q = from_task_blocks(heads(blocks).view(2, n_tasks, grouping.n_slots).permute(1, 2, 0), grouping)  # (batch, 2)
    task_losses, _ = per_task_mean(q.pow(2).sum(1), task_idx, n_tasks)
    expected = _loop(task_losses, params)
    fast = per_sample_task_gradients(task_losses, params, task_idx, retain_graph=True)
    assert fast is not None
    th.testing.assert_close(fast, expected, rtol=1e-4, atol=1e-6)


def test_per_sample_path_declines_other_uses_of_a_parameter():
    th.manual_seed(0)
    layer, scale = th.nn.Linear(3, 2), th.nn.Parameter(th.ones(2))
    x, task_idx = th.randn(12, 3), th.arange(12) % 3
    task_losses, _ = per_task_mean((layer(x) * scale).pow(2).sum(1), task_idx, 3)
    params = [*layer.parameters(), scale]
    assert per_sample_task_gradients(task_losses, params, task_idx) is None  # `scale` is not a linear layer's weight
    # the combiner then uses the batched backward, which is exact
    method = PCGrad(3, seed=0)
    method.backward(task_losses, params, task_idx=task_idx)
    assert method._per_sample_ok == {tuple(id(p) for p in params): False}
    task_losses, _ = per_task_mean((layer(x) * scale).pow(2).sum(1), task_idx, 3)
    expected = PCGrad(3, seed=0, per_sample=False)
    grads = [p.grad.clone() for p in params]
    expected.backward(task_losses, params)
    for g, p in zip(grads, params, strict=True):
        th.testing.assert_close(g, p.grad)


def test_a_layer_that_mixes_samples_is_caught_by_the_first_check():
    # batch normalisation couples the samples: the per-sample shortcut would be wrong, and the first-use check sees it
    th.manual_seed(0)
    net = th.nn.Sequential(th.nn.Linear(4, 8), th.nn.BatchNorm1d(8, affine=False), th.nn.Linear(8, 1))
    params = list(net.parameters())
    x, task_idx = th.randn(32, 4), th.arange(32) % 4

    def task_losses() -> th.Tensor:
        return per_task_mean(net(x).squeeze(1).pow(2), task_idx, 4)[0]

    method = CAGrad(4, c=0.0)
    with pytest.warns(RuntimeWarning, match="do not match an ordinary backward"):
        method.backward(task_losses(), params, task_idx=task_idx)
    th.testing.assert_close(th.cat([p.grad.reshape(-1) for p in params]), _loop(task_losses(), params).mean(0))


def test_per_task_gradients_of_an_unused_parameter_are_zero():
    theta, unused = th.ones(3, requires_grad=True), th.ones(2, requires_grad=True)
    grads = per_task_gradients(th.stack([theta.sum(), 2 * theta.sum()]), [theta, unused])
    th.testing.assert_close(grads, th.tensor([[1.0, 1, 1, 0, 0], [2.0, 2, 2, 0, 0]]))


def test_pcgrad_conflicting_pair_matches_the_closed_form():
    g1, g2 = th.tensor([1.0, 0.0, 1.0]), th.tensor([-1.0, 1.0, 0.5])
    assert g1 @ g2 < 0
    expected = ((g1 - (g1 @ g2) / (g2 @ g2) * g2) + (g2 - (g2 @ g1) / (g1 @ g1) * g1)) / 2
    combined = _combine(PCGrad(2, seed=0), th.stack([g1, g2]))
    th.testing.assert_close(combined, expected.double())
    # each projected gradient is orthogonal to the other task's gradient, so the update conflicts with neither
    assert float(combined @ g1.double()) >= -1e-12 and float(combined @ g2.double()) >= -1e-12
    # the paper's sum
    th.testing.assert_close(_combine(PCGrad(2, seed=0, reduction="sum"), th.stack([g1, g2])), 2 * expected.double())


def test_pcgrad_non_conflicting_pair_is_the_mean():
    g1, g2 = th.tensor([1.0, 2.0, 0.0]), th.tensor([0.5, -0.1, 3.0])
    assert g1 @ g2 > 0
    th.testing.assert_close(_combine(PCGrad(2, seed=0), th.stack([g1, g2])), ((g1 + g2) / 2).double())


def _pcgrad_reference(grads: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """The reference algorithm (mtrl/agent/pcgrad.py) on the full gradient vectors, round by round."""
    unit = grads / (np.linalg.norm(grads, axis=1, keepdims=True) + 1e-8)
    projected = grads.copy()
    for k in range(orders.shape[1]):
        other = unit[orders[:, k]]
        dots = (projected * other).sum(axis=1, keepdims=True)
        projected = projected - np.minimum(dots, 0.0) * other
    return projected.mean(axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pcgrad_equals_the_reference_on_many_conflicting_tasks(seed):
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(6, 11))
    orders = pcgrad_orders(6, np.random.default_rng(seed))
    assert sorted(orders[3].tolist()) == [0, 1, 2, 4, 5]  # each task meets every other task once
    combined = _combine(PCGrad(6, seed=seed), th.as_tensor(grads))
    np.testing.assert_allclose(combined.numpy(), _pcgrad_reference(grads, orders), rtol=1e-9, atol=1e-12)


def test_pcgrad_order_comes_from_the_seed():
    grads = th.as_tensor(np.random.default_rng(0).normal(size=(5, 8)))
    a, b = PCGrad(5, seed=3), PCGrad(5, seed=3)
    results_a = [_combine(a, grads) for _ in range(3)]
    results_b = [_combine(b, grads) for _ in range(3)]
    for ra, rb in zip(results_a, results_b, strict=True):
        th.testing.assert_close(ra, rb, rtol=0, atol=0)
    # with 5 conflicting tasks the order matters: consecutive calls (fresh random orders) differ
    assert not th.allclose(results_a[0], results_a[1])
    # the RNG state is part of the checkpoint
    c = PCGrad(5, seed=0)
    c.load_state_dict(PCGrad(5, seed=3).state_dict())
    th.testing.assert_close(_combine(c, grads), results_a[0], rtol=0, atol=0)


@pytest.mark.parametrize("method", [PCGrad(3, seed=0), CAGrad(3, c=0.5)])
def test_a_missing_task_is_left_out_of_the_surgery(method):
    g = th.tensor([[1.0, 0.0, 1.0], [-1.0, 1.0, 0.5], [-5.0, -5.0, -5.0]])
    present = th.tensor([True, True, False])
    two_tasks = type(method)(2, seed=0, **({"c": 0.5} if isinstance(method, CAGrad) else {}))
    # the missing task's gradient (whatever the caller left in its row) neither projects nor counts in the mean
    th.testing.assert_close(_combine(method, g, present), _combine(two_tasks, g[:2]))


def test_cagrad_with_c_zero_is_the_mean_gradient():
    grads = th.as_tensor(np.random.default_rng(0).normal(size=(4, 9)))
    th.testing.assert_close(_combine(CAGrad(4, c=0.0), grads), grads.mean(dim=0))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cagrad_dual_solution_is_optimal(seed):
    grads = np.random.default_rng(seed).normal(size=(3, 6))
    gram, c = grads @ grads.T, 0.5
    present = np.ones(3, dtype=bool)
    w, g0_norm = cagrad_weights(gram, present, c)
    g0 = grads.mean(axis=0)
    np.testing.assert_allclose(g0_norm, np.linalg.norm(g0))
    assert abs(w.sum() - 1) < 1e-9 and (w >= 0).all()

    def objective(weights: np.ndarray) -> float:
        gw = weights @ grads
        return float(gw @ g0 + c * np.linalg.norm(g0) * np.linalg.norm(gw))

    grid = [np.array([a, b, 1 - a - b]) for a, b in itertools.product(np.linspace(0, 1, 101), repeat=2) if a + b <= 1]
    assert objective(w) <= min(objective(x) for x in grid) + 1e-6


def test_cagrad_improves_the_worst_task_over_the_mean():
    g = th.tensor([[1.0, 0.1], [-0.9, 0.3]], dtype=th.float64)
    mean = g.mean(dim=0)
    d = _combine(CAGrad(2, c=0.8, rescale=0), g)
    # the conflict-averse update: the worst task's first-order improvement is larger than with the mean gradient
    assert float((g @ d).min()) > float((g @ mean).min())
    # rescale=1 (the authors' default) only divides by 1 + c^2
    th.testing.assert_close(_combine(CAGrad(2, c=0.8, rescale=1), g), d / (1 + 0.8**2))


def test_gradnorm_weights_balance_gradient_norms():
    # two tasks learning at the same rate, but task 1's gradient is 10x larger: its weight must go down
    theta = th.nn.Parameter(th.zeros(4))
    target = th.ones(4)
    gradnorm = GradNorm(2, alpha=1.0, lr=0.01, shared_layer=None)
    for _ in range(100):
        task_losses = th.stack([((theta - target) ** 2).sum(), 10 * ((theta - target) ** 2).sum()])
        info = gradnorm.backward(task_losses, [theta])
    weights = gradnorm.weights[0].detach()
    assert weights[0] > 1.5 and weights[1] < 0.5, weights
    th.testing.assert_close(
        weights.sum(), th.tensor(2.0)
    )  # renormalised to sum to T (a fix of mtrl, see README, "Differences from mtrl and mtenv")
    assert info["task_weight_0"] == pytest.approx(float(weights[0]))


def test_gradnorm_favours_the_task_that_trains_slower():
    # equal gradient norms at the start; task 1's loss stays at its initial value, task 0's drops (current loss over
    # the *initial* loss, README, "Differences from mtrl and mtenv"): task 1 has the higher inverse training rate, so its
    # weight must go up
    theta = th.nn.Parameter(th.ones(3))
    gradnorm = GradNorm(2, alpha=1.5, lr=0.01, shared_layer=None)
    for step in range(60):
        scale = 1.0 / (1 + step)  # task 0 "improves" over time
        task_losses = th.stack([scale * (theta**2).sum(), (theta**2).sum()])
        gradnorm.backward(task_losses, [theta])
        with th.no_grad():
            theta.copy_(th.ones(3))  # keep task 1's loss constant
    weights = gradnorm.weights[0].detach()
    assert weights[1] > weights[0] and weights[1] > 1.0, weights


def test_gradnorm_update_is_the_weighted_loss_gradient_and_round_trips():
    th.manual_seed(0)
    net = th.nn.Sequential(th.nn.Linear(3, 8), th.nn.ReLU(), th.nn.Linear(8, 1))
    params = list(net.parameters())
    x, task_idx = th.randn(40, 3), th.arange(40) % 4
    gradnorm = GradNorm(4, alpha=0.5, lr=0.05)  # W = the last weight matrix
    for _ in range(3):
        task_losses, present = per_task_mean(net(x).squeeze(1) ** 2, task_idx, 4)
        weights = gradnorm.weights[0].detach().clone() if gradnorm.weights else th.ones(4)
        gradnorm.backward(task_losses, params, present)
        expected = th.autograd.grad((weights * per_task_mean(net(x).squeeze(1) ** 2, task_idx, 4)[0]).sum(), params)
        for p, g in zip(params, expected, strict=True):
            th.testing.assert_close(p.grad, g)
    assert not th.allclose(gradnorm.weights[0], th.ones(4))
    restored = GradNorm(4, alpha=0.5, lr=0.05)
    restored.load_state_dict(gradnorm.state_dict())
    task_losses, present = per_task_mean(net(x).squeeze(1) ** 2, task_idx, 4)
    a = gradnorm.backward(task_losses, params, present)
    task_losses, present = per_task_mean(net(x).squeeze(1) ** 2, task_idx, 4)
    b = restored.backward(task_losses, params, present)
    assert a == pytest.approx(b)


def test_gradnorm_leaves_a_missing_task_alone():
    theta = th.nn.Parameter(th.zeros(2))
    gradnorm = GradNorm(3, lr=0.1, shared_layer=None)
    present = th.tensor([True, True, False])
    for _ in range(5):
        gradnorm.backward(th.stack([(theta - 1).pow(2).sum(), 5 * (theta + 1).pow(2).sum(), th.zeros(())]), [theta], present)
    assert th.isnan(gradnorm.initial_losses[0][2])  # never seen
    weights = gradnorm.weights[0].detach()
    th.testing.assert_close(weights.sum(), th.tensor(3.0))
    # task 2 only follows the renormalisation: its weight is 3 / (sum of the weights before renormalising) ...
    assert weights[2] > 0 and th.isfinite(weights).all()
    # ... while the two present tasks moved apart (task 1's gradient is 5x larger, so its weight went down)
    assert weights[1] < weights[2] < weights[0]


def test_the_combined_gradient_replaces_existing_grads():
    theta = th.nn.Parameter(th.zeros(2))
    theta.grad = th.full((2,), 100.0)
    PCGrad(2, seed=0).backward(th.stack([theta.sum(), 3 * theta.sum()]), [theta])
    th.testing.assert_close(theta.grad, th.full((2,), 2.0))


def test_frozen_parameters_are_skipped():
    theta, frozen = th.nn.Parameter(th.zeros(2)), th.nn.Parameter(th.ones(3), requires_grad=False)
    for method in (PCGrad(2, seed=0), GradNorm(2, shared_layer=None)):
        method.backward(th.stack([theta.sum(), 3 * theta.sum()]), [frozen, theta])
        assert frozen.grad is None and theta.grad is not None


def test_registry_and_factory():
    assert {"pcgrad", "gradnorm", "cagrad"} <= set(GRAD_METHODS)
    assert make_grad_combiner(None, n_tasks=3) is None
    assert isinstance(make_grad_combiner("cagrad", n_tasks=3, seed=0, c=0.2), CAGrad)
    with pytest.raises(ValueError, match=r"Unknown grad_method 'nope'.*'cagrad'.*'gradnorm'.*'pcgrad'"):
        make_grad_combiner("nope", n_tasks=3)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        make_grad_combiner("pcgrad", n_tasks=3, reduction="max")
    with pytest.raises(ValueError, match=r"task_losses must have shape \(3,\)"):
        PCGrad(3).backward(th.zeros(2, requires_grad=True), [th.zeros(1, requires_grad=True)])

    @register_grad_method("test-sum")
    class SumOfTaskGradients(GradCombiner):
        def combine(self, grads, task_present):
            return grads[task_present].sum(dim=0), {"n_present": float(task_present.sum())}

    try:
        method = make_grad_combiner("test-sum", n_tasks=2, seed=0)
        assert isinstance(method, SumOfTaskGradients)
        g = th.tensor([[1.0, 2.0], [3.0, -1.0]])
        th.testing.assert_close(_combine(method, g), g.sum(0).double())
        with pytest.raises(ValueError, match="already registered"):
            register_grad_method("test-sum")(type("Other", (GradCombiner,), {}))
    finally:
        del GRAD_METHODS["test-sum"]


# -- with MTSAC ----------------------------------------------------------------------------------------------------------
def _mtsac(grad_method: str, **kwargs):
    from mtsb3 import MTSAC, make_mt_vec_env

    kwargs.setdefault("policy_kwargs", dict(net_arch=[64, 64]))
    return MTSAC(
        "MultiInputPolicy",
        make_mt_vec_env("MT-PointGoal-v0", seed=0),
        grad_method=grad_method,
        disentangled_alpha=True,
        seed=0,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("grad_method", "policy_kwargs"),
    [
        ("pcgrad", dict(net_arch=[32, 32])),
        ("gradnorm", dict(net_arch=[32, 32])),
        ("cagrad", dict(net_arch=[32, 32])),
        ("pcgrad", dict(net_arch=[32, 32], multi_head=True, use_task_encoder=True)),
    ],
)
def test_mtsac_uses_the_checked_per_sample_path(grad_method, policy_kwargs):
    model = _mtsac(grad_method, learning_starts=64, batch_size=64, policy_kwargs=policy_kwargs)
    model.learn(120)
    # both combiners took the one-backward path, and it matched an ordinary backward on MTSAC's actor and critic
    for combiner in (model.critic_grad_combiner, model.actor_grad_combiner):
        assert list(combiner._per_sample_ok.values()) == [True]


def test_mtsac_per_sample_gradients_equal_the_batched_ones():
    from mtsb3.common.task import task_indices

    model = _mtsac("pcgrad", learning_starts=64, batch_size=96)
    model.learn(100)
    data = model.replay_buffer.sample(96)
    task_idx = task_indices(data.observations["task_obs"], 4)
    params = [p for group in model.critic.optimizer.param_groups for p in group["params"]]
    q = th.cat(model.critic(data.observations, data.actions), dim=1)
    task_losses, _ = per_task_mean(0.5 * (q - data.rewards).pow(2).sum(1), task_idx, 4)
    fast = per_sample_task_gradients(task_losses, params, task_idx, retain_graph=True)
    assert fast is not None
    th.testing.assert_close(fast, per_task_gradients(task_losses, params), rtol=1e-4, atol=1e-6)


def test_mtsac_gradnorm_weights_are_checkpointed(tmp_path):
    from mtsb3 import MTSAC

    model = _mtsac("gradnorm", learning_starts=64, batch_size=64, grad_method_kwargs=dict(alpha=1.5, lr=0.05))
    model.learn(160)
    weights = model.critic_grad_combiner.weights[0].detach().clone()
    assert not th.allclose(weights, th.ones(4)) and float(weights.sum()) == pytest.approx(4.0)
    model.save(tmp_path / "model")
    loaded = MTSAC.load(tmp_path / "model", env=model.get_env())
    th.testing.assert_close(loaded.critic_grad_combiner.weights[0].detach(), weights)
    th.testing.assert_close(loaded.critic_grad_combiner.initial_losses[0], model.critic_grad_combiner.initial_losses[0])
    loaded.learn(40)


@pytest.mark.parametrize("grad_method", ["pcgrad", "gradnorm", "cagrad"])
def test_mtsac_with_gradient_surgery_learns_point_goal(grad_method):
    # random ≈ -30, optimal ≈ -5.5; after 4000 transitions seeds 0 and 1 reach -16.3 to -17.1 with every method (plain
    # MTSAC: -17.1, -16.3), and about -21 after 3000
    from stable_baselines3.common.evaluation import evaluate_policy

    from mtsb3 import make_mt_vec_env

    model = _mtsac(grad_method, learning_starts=500, batch_size=128, learning_rate=1e-3, gamma=0.9)
    model.learn(4000)
    mean_return, _ = evaluate_policy(model, make_mt_vec_env("MT-PointGoal-v0", seed=100), n_eval_episodes=20)
    assert mean_return > -20.0, mean_return
