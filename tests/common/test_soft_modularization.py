"""Soft Modularization: routing network, modular network, the extractor, and mtrl's networks (the MTSAC trunk)."""

from __future__ import annotations

import pytest
import torch as th
from gymnasium import spaces

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.callbacks import evaluate_per_task, summarize
from mtsb3.common.soft_modularization import (
    RoutingNetwork,
    SoftModularizationExtractor,
    SoftModularizedMLP,
    SoftModularNetwork,
)
from mtsb3.recipes import soft_modularization
from tests.mtsac.test_learning import MEAN_RETURN_THRESHOLD, POINT_GOAL, STEPS, TASK_RETURN_THRESHOLD

th.set_num_threads(1)

N_TASKS, OBS_DIM, BATCH, E = 4, 5, 16, 3
SPACE = spaces.Dict(env_obs=spaces.Box(-1, 1, (OBS_DIM,)), task_obs=spaces.Discrete(N_TASKS))


def make_obs(batch: int = BATCH) -> dict[str, th.Tensor]:
    gen = th.Generator().manual_seed(0)
    tasks = th.arange(batch) % N_TASKS
    return {"env_obs": th.randn(batch, OBS_DIM, generator=gen), "task_obs": th.nn.functional.one_hot(tasks, N_TASKS).float()}


@pytest.mark.parametrize("n_layers", [2, 3, 4])
def test_routing_matrices_are_row_stochastic(n_layers):
    th.manual_seed(0)
    extractor = SoftModularizationExtractor(SPACE, n_modules=E, n_layers=n_layers, module_hidden=8, embedding_dim=12)
    routing = extractor.routing_weights(make_obs())
    assert len(routing) == n_layers - 1
    for weights in routing:
        assert weights.shape == (BATCH, E, E)
        assert (weights > 0).all()
        th.testing.assert_close(weights.sum(dim=2), th.ones(BATCH, E))
    out = extractor(make_obs())
    assert out.shape == (BATCH, extractor.features_dim) == (BATCH, 8)


def test_routing_depends_on_task_and_observation():
    th.manual_seed(0)
    extractor = SoftModularizationExtractor(SPACE, n_modules=E, n_layers=2, module_hidden=8, embedding_dim=12)
    obs = make_obs()
    weights = extractor.routing_weights(obs)[0]
    other_task = {"env_obs": obs["env_obs"], "task_obs": obs["task_obs"].roll(1, dims=1)}
    other_obs = {"env_obs": obs["env_obs"] + 1.0, "task_obs": obs["task_obs"]}
    assert not th.allclose(weights, extractor.routing_weights(other_task)[0])
    assert not th.allclose(weights, extractor.routing_weights(other_obs)[0])


def test_routing_recursion_follows_the_paper():
    """p_1 = W_d(ReLU(r)); p_2 = W_d'(ReLU(W_u(p_1) * r)) from the raw p_1; softmax over the last axis."""
    th.manual_seed(0)
    routing = RoutingNetwork(embedding_dim=6, n_modules=2, n_routings=2)
    r = th.randn(BATCH, 6)
    p1 = routing.down[0](th.relu(r))
    p2 = routing.down[1](th.relu(routing.up[0](p1) * r))
    expected = [th.softmax(p.view(BATCH, 2, 2), dim=2) for p in (p1, p2)]
    for got, want in zip(routing(r), expected, strict=True):
        th.testing.assert_close(got, want)


def test_modular_network_equals_a_loop_over_modules():
    th.manual_seed(0)
    net = SoftModularNetwork(in_features=6, n_modules=E, n_layers=3, module_hidden=5)
    x = th.randn(BATCH, 6)
    routing = [th.softmax(th.randn(BATCH, E, E), dim=2) for _ in range(2)]

    def module(layer, e, inp):  # module e of one layer, as a plain linear map
        return th.relu(inp @ layer.weight[e] + layer.bias[e, 0])

    outs = [module(net.layers[0], e, x) for e in range(E)]
    for layer, weights in zip(net.layers[1:], routing, strict=True):
        mixed = [sum(weights[:, i, j : j + 1] * outs[j] for j in range(E)) for i in range(E)]
        outs = [module(layer, i, mixed[i]) for i in range(E)]
    th.testing.assert_close(net(x, routing), sum(outs) / E)


def test_every_parameter_gets_gradient():
    th.manual_seed(0)
    extractor = SoftModularizationExtractor(SPACE, n_modules=E, n_layers=3, module_hidden=8, embedding_dim=12)
    extractor(make_obs()).pow(2).sum().backward()
    missing = [n for n, p in extractor.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"n_layers \(Soft Modularization routes between layers\) must be an integer >= 2"):
        SoftModularizationExtractor(SPACE, n_layers=1)
    with pytest.raises(ValueError, match="Discrete task_obs"):
        SoftModularizationExtractor(spaces.Dict(env_obs=spaces.Box(-1, 1, (3,)), task_obs=spaces.Box(0, 1, (2,))))


def _reference_forward(extractor: SoftModularizationExtractor, obs: dict[str, th.Tensor]) -> th.Tensor:
    """Yang et al. 2020, Eqs. 1-2 written out step by step and module by module (no fused or in-place operations)."""
    env_obs, task_idx = extractor.split(obs)
    embedding = extractor.obs_embedding(env_obs)
    r = embedding * extractor.task_embedding(extractor.encode_task(task_idx, None))
    routing, base = extractor.routing, extractor.base
    logits = [routing.down[0](th.relu(r))]
    for up, down in zip(routing.up, routing.down[1:], strict=True):
        logits.append(down(th.relu(up(logits[-1]) * r)))
    probs = [th.softmax(p.reshape(-1, E, E), dim=2) for p in logits]
    first = base.layers[0]
    outs = [th.relu(embedding @ first.weight[e] + first.bias[e, 0]) for e in range(E)]
    for layer, weights in zip(base.layers[1:], probs, strict=True):
        mixed = [sum(weights[:, i, j : j + 1] * outs[j] for j in range(E)) for i in range(E)]
        outs = [th.relu(mixed[i] @ layer.weight[i] + layer.bias[i, 0]) for i in range(E)]
    return sum(outs) / E


@pytest.mark.parametrize("n_layers", [2, 3])
def test_extractor_equals_a_step_by_step_reference(n_layers):
    """The batched, in-place forward and its gradients equal the plain per-layer, per-module computation."""
    th.manual_seed(0)
    extractor = SoftModularizationExtractor(
        SPACE, n_modules=E, n_layers=n_layers, module_hidden=8, embedding_dim=12, embedding_net_arch=[10]
    )
    obs, grad_out = make_obs(), th.randn(BATCH, 8)
    params = list(extractor.parameters())
    out = extractor(obs)
    grads = th.autograd.grad(out, params, grad_out)
    expected = _reference_forward(extractor, obs)
    expected_grads = th.autograd.grad(expected, params, grad_out)
    th.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    for got, want in zip(grads, expected_grads, strict=True):
        th.testing.assert_close(got, want, rtol=0, atol=1e-5)
    with th.no_grad():  # the in-place activations also run without a graph
        th.testing.assert_close(extractor(obs), expected, rtol=0, atol=1e-5)


# -- mtrl's networks: SoftModularizedMLP, the "soft_modularization" trunk of MTSAC ------------------------------------
OBS_ENC, ACTION_DIM, HIDDEN, OUT = 6, 3, 5, 2


def _mtrl_forward(net: SoftModularizedMLP, x: th.Tensor, network: int) -> th.Tensor:
    """
    mtrl's SoftModularizedMLP (mtrl/agent/components/soft_modularization.py) and QFunction projection written out for one
    network of the ensemble: every linear map applied on its own, modules in a loop, mixing then output layer then mean.
    """
    batched = net.base.n_networks is not None

    def linear(layer: th.nn.Module, inp: th.Tensor) -> th.Tensor:
        return inp @ layer.weight[network] + layer.bias[network] if batched else layer(inp)

    obs, task, action = x.split([net.obs_dim, net.task_dim, net.extra_dim], dim=-1)
    if net.projection is not None:
        obs = linear(net.projection, th.cat([obs, action], dim=-1))
    r = linear(net.routing_projection, obs * task)
    logits = [linear(net.routing.down[0], th.relu(r))]
    for up, down in zip(net.routing.up, net.routing.down[1:], strict=True):
        logits.append(linear(down, th.relu(linear(up, logits[-1]) * r)))
    probs = [th.softmax(p.reshape(-1, E, E), dim=2) for p in logits]
    layers, first = net.base.layers, (network if batched else 0) * E

    def module(layer: th.nn.Module, e: int, inp: th.Tensor) -> th.Tensor:
        return inp @ layer.weight[first + e] + layer.bias[first + e, 0]

    outs = [th.relu(module(layers[0], e, obs)) for e in range(E)]
    for index, (layer, weights) in enumerate(zip(layers[1:], probs, strict=True)):
        mixed = [sum(weights[:, i, j : j + 1] * outs[j] for j in range(E)) for i in range(E)]
        outs = [module(layer, i, mixed[i]) for i in range(E)]
        if index < len(layers) - 2:  # the last modular layer is the output layer: no activation
            outs = [th.relu(out) for out in outs]
    return sum(outs) / E


@pytest.mark.parametrize(
    "n_networks, extra_dim, net_arch",
    [(None, 0, [HIDDEN]), (2, ACTION_DIM, [HIDDEN]), (2, ACTION_DIM, [HIDDEN, HIDDEN]), (None, 0, [HIDDEN] * 3)],
)
def test_soft_modularized_mlp_equals_mtrl_step_by_step(n_networks, extra_dim, net_arch):
    """The batched networks (routed output layer folded into one matmul) give mtrl's values and gradients."""
    th.manual_seed(0)
    net = SoftModularizedMLP(OBS_ENC, OBS_ENC, OUT, extra_dim, n_modules=E, net_arch=net_arch, n_networks=n_networks)
    x = th.randn(BATCH, 2 * OBS_ENC + extra_dim, requires_grad=True)
    out = net(x)
    expected = th.stack([_mtrl_forward(net, x, n) for n in range(n_networks or 1)])
    expected = expected if n_networks else expected[0]
    assert out.shape == expected.shape == ((n_networks,) if n_networks else ()) + (BATCH, OUT)
    grad_out, params = th.randn_like(out), [x, *net.parameters()]
    th.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    got, want = th.autograd.grad(out, params, grad_out), th.autograd.grad(expected, params, grad_out)
    for name, g, w in zip(["x", *dict(net.named_parameters())], got, want, strict=True):
        th.testing.assert_close(g, w, rtol=0, atol=1e-5, msg=name)
    # the critic's input in parts (features, actions) is the same input
    if extra_dim:
        th.testing.assert_close(net((x[:, :-extra_dim], x[:, -extra_dim:])), out)


def test_soft_modularized_mlp_bad_arguments():
    with pytest.raises(ValueError, match=r"multiplies the observation encoding \(6\) by the task encoding \(4\)"):
        SoftModularizedMLP(6, 4, OUT)
    with pytest.raises(ValueError, match=r"needs net_arch = \[hidden\] \* n .* got \[8, 4\]"):
        SoftModularizedMLP(6, 6, OUT, net_arch=[8, 4])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_modularization_recipe_learns_point_goal(seed):
    """
    mtrl's networks (2 modules, a routed hidden layer of 64) learn MT-PointGoal-v0 as the MTSAC configs of
    tests/mtsac/test_learning.py do (4000 steps; 2 gradient steps per step: the routed networks have fewer parameters).
    Seeds 0, 1, 2 scored -11.4, -10.6 and -11.7; standing still scores -30, the optimum about -5.5.
    """
    env = make_mt_vec_env(POINT_GOAL, seed=seed)
    policy_kwargs = soft_modularization(n_modules=2, module_hidden=64)
    model = MTSAC("MultiInputPolicy", env, learning_starts=400, batch_size=128, learning_rate=1e-3, gradient_steps=2,
                  policy_kwargs=policy_kwargs, disentangled_alpha=True, seed=seed)  # fmt: skip
    model.learn(STEPS)
    results = evaluate_per_task(model, make_mt_vec_env(POINT_GOAL, seed=1000), n_eval_episodes=2)
    assert summarize(results)["mean_reward"] > MEAN_RETURN_THRESHOLD, results
    assert min(r["mean_reward"] for r in results.values()) > TASK_RETURN_THRESHOLD, results
