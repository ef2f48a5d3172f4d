"""Soft Modularization: routing network, modular network, and the extractor that wraps them."""

from __future__ import annotations

import pytest
import torch as th
from gymnasium import spaces

from mtsb3.common.soft_modularization import RoutingNetwork, SoftModularizationExtractor, SoftModularNetwork

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
