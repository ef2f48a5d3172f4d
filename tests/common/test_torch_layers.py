"""Task-conditioned features extractors: FeedForward, FiLM, MixtureOfEncoders (and Soft Modularization under SB3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC
from stable_baselines3 import PPO, SAC, TD3

from mtsb3 import make_mt_vec_env
from mtsb3.common.bronet import BroNet
from mtsb3.common.experts import BatchedLinear, BatchedMLP
from mtsb3.common.soft_modularization import SoftModularizationExtractor
from mtsb3.common.task_encoder import load_task_descriptions
from mtsb3.common.torch_layers import (
    METAWORLD_CLUSTERS,
    METAWORLD_MT10_DESCRIPTIONS,
    FeedForwardEncoder,
    FiLMEncoder,
    MixtureOfEncoders,
    cluster_mask,
    metaworld_task_descriptions,
)

th.set_num_threads(1)

N_TASKS, OBS_DIM, BATCH = 4, 5, 32
SPACE = spaces.Dict(env_obs=spaces.Box(-1, 1, (OBS_DIM,)), task_obs=spaces.Discrete(N_TASKS))
TASK_NAMES = [f"goal_{i}" for i in range(N_TASKS)]
SMALL_TE = TE = dict(embedding_dim=8, net_arch=[16], output_dim=8)
# goal_0 -> experts {a, c}, goal_1 -> {a}, goal_2 -> {b}, goal_3 -> {c}; upper case checks README, "Differences from mtrl and
# mtenv"
SMALL_CLUSTERS = {"a": ["GOAL_0", "goal 1"], "b": ["Goal_2"], "c": ["goal_3", "goal_0"]}

# name -> (extractor class, kwargs); small sizes keep the SB3 runs fast
ENCODERS = {
    "feedforward": (FeedForwardEncoder, dict(net_arch=[16], features_dim=16, task_encoder_kwargs=SMALL_TE)),
    "film": (FiLMEncoder, dict(net_arch=[16], features_dim=16, task_encoder_kwargs=SMALL_TE)),
    "care": (
        MixtureOfEncoders,
        dict(mode="attention", n_experts=3, net_arch=[16], features_dim=16, task_encoder_kwargs=SMALL_TE),
    ),
    "gate": (MixtureOfEncoders, dict(mode="gate", top_k=2, net_arch=[16], features_dim=16, task_encoder_kwargs=SMALL_TE)),
    "ensemble": (
        MixtureOfEncoders,
        dict(mode="ensemble", n_experts=3, net_arch=[16], features_dim=16, task_encoder_kwargs=SMALL_TE),
    ),
    "cluster": (
        MixtureOfEncoders,
        dict(
            mode="cluster",
            task_names=TASK_NAMES,
            clusters=SMALL_CLUSTERS,
            net_arch=[16],
            features_dim=16,
            task_encoder_kwargs=SMALL_TE,
        ),
    ),
    "one_to_one": (MixtureOfEncoders, dict(mode="one_to_one", net_arch=[16], features_dim=16, task_encoder_kwargs=SMALL_TE)),
    "soft_modularization": (
        SoftModularizationExtractor,
        dict(n_modules=3, n_layers=3, module_hidden=16, embedding_dim=16, task_encoder_kwargs=SMALL_TE),
    ),
}


def make_obs(batch: int = BATCH, seed: int = 0) -> dict[str, th.Tensor]:
    """A preprocessed observation batch (SB3 one-hot task_obs), every task present."""
    gen = th.Generator().manual_seed(seed)
    tasks = th.arange(batch) % N_TASKS
    return {"env_obs": th.randn(batch, OBS_DIM, generator=gen), "task_obs": th.nn.functional.one_hot(tasks, N_TASKS).float()}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_output_shape_matches_features_dim(name):
    cls, kwargs = ENCODERS[name]
    th.manual_seed(0)
    extractor = cls(SPACE, **kwargs)
    out = extractor(make_obs())
    assert out.shape == (BATCH, extractor.features_dim)
    assert th.isfinite(out).all()


def test_feature_dims_of_task_conditionings():
    assert FeedForwardEncoder(SPACE, net_arch=[], features_dim=None, task_conditioning="none").features_dim == OBS_DIM
    assert FeedForwardEncoder(SPACE, net_arch=[8], features_dim=6, task_conditioning="one_hot").features_dim == 6 + N_TASKS
    assert FeedForwardEncoder(SPACE, features_dim=50, task_encoder_kwargs=dict(output_dim=7)).features_dim == 57
    assert FiLMEncoder(SPACE, features_dim=10, concat_task_encoding=False).features_dim == 10
    assert MixtureOfEncoders(SPACE, mode="ensemble", concat_task_encoding=False, features_dim=12).features_dim == 12
    obs = make_obs()
    one_hot = FeedForwardEncoder(SPACE, net_arch=[], features_dim=None, task_conditioning="one_hot")(obs)
    assert th.equal(one_hot, th.cat([obs["env_obs"], obs["task_obs"]], dim=1))


@pytest.mark.parametrize("per_feature", [True, False])
def test_film_modulates_each_layer(per_feature):
    th.manual_seed(0)
    film = FiLMEncoder(SPACE, net_arch=[16, 8], features_dim=6, per_feature=per_feature, concat_task_encoding=False)
    obs = make_obs()
    z = film.encode_task(obs["task_obs"].argmax(1))
    params = film.film_params(z)
    sizes = [16, 8, 6] if per_feature else [1, 1, 1]
    assert [tuple(g.shape) for g, _ in params] == [(BATCH, n) for n in sizes]

    def plain(x, gammas_betas):  # the MLP with h <- gamma * h + beta after each layer group
        for i, (layer, (gamma, beta)) in enumerate(zip(film.layers, gammas_betas, strict=True)):
            x = layer(x)
            x = th.relu(x) if i < 2 else x
            x = gamma * x + beta
        return x

    th.testing.assert_close(film(obs), plain(obs["env_obs"], params))
    with th.no_grad():  # a zero generator is the identity modulation (gamma = 1, beta = 0): the plain MLP
        film.film.weight.zero_()
        film.film.bias.zero_()
    th.testing.assert_close(film(obs), plain(obs["env_obs"], [(1.0, 0.0)] * 3))
    # tasks get different modulations
    film2 = FiLMEncoder(SPACE, per_feature=per_feature, concat_task_encoding=False)
    other = {"env_obs": obs["env_obs"], "task_obs": obs["task_obs"].roll(1, dims=1)}
    assert not th.allclose(film2(obs), film2(other))


def test_raw_task_index_and_one_hot_give_the_same_features():
    th.manual_seed(0)
    extractor = MixtureOfEncoders(SPACE, mode="attention")
    obs = make_obs()
    raw = {"env_obs": obs["env_obs"], "task_obs": obs["task_obs"].argmax(1, keepdim=True).float()}
    th.testing.assert_close(extractor(obs), extractor(raw))


def test_attention_weights_sum_to_one_and_temperature_sharpens():
    th.manual_seed(0)
    warm = MixtureOfEncoders(SPACE, mode="attention", n_experts=5, temperature=1.0)
    cold = MixtureOfEncoders(SPACE, mode="attention", n_experts=5, temperature=0.05)
    cold.load_state_dict(warm.state_dict())
    task_idx = th.arange(BATCH) % N_TASKS
    w_warm, w_cold = warm.expert_weights(task_idx), cold.expert_weights(task_idx)
    assert w_warm.shape == (BATCH, 5)
    th.testing.assert_close(w_warm.sum(1), th.ones(BATCH))
    th.testing.assert_close(w_cold.sum(1), th.ones(BATCH))
    assert (w_warm > 0).all()
    assert w_cold.max(1).values.mean() > w_warm.max(1).values.mean()
    # same task, same weights: the attention depends on the task only
    th.testing.assert_close(w_warm[0], w_warm[N_TASKS])


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_gate_keeps_exactly_top_k(top_k):
    th.manual_seed(0)
    gate = MixtureOfEncoders(SPACE, mode="gate", n_experts=5, top_k=top_k)
    task_idx = th.arange(BATCH) % N_TASKS
    weights = gate.expert_weights(task_idx)
    assert ((weights > 0).sum(1) == top_k).all()
    dense = th.softmax(gate.selection(gate.encode_task(task_idx)), dim=1)
    kept = dense.topk(top_k, dim=1).indices
    assert th.equal((weights > 0), th.zeros_like(weights, dtype=th.bool).scatter(1, kept, True))
    if top_k > 1:  # renormalised over the kept k
        th.testing.assert_close(weights.sum(1), th.ones(BATCH))
    else:  # the kept softmax probability (a renormalised 1 would carry no gradient to the gate)
        th.testing.assert_close(weights.sum(1), dense.max(1).values)


def test_gate_top_k_gradient_reaches_the_gate():
    th.manual_seed(0)
    gate = MixtureOfEncoders(SPACE, mode="gate", n_experts=4, top_k=1)
    gate(make_obs()).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gate.selection.parameters())


def test_cluster_map_is_case_insensitive():
    mask = cluster_mask(["Goal_0", "goal-1", "GOAL_2", "goal_3"], SMALL_CLUSTERS)
    expected = th.tensor([[1.0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert th.equal(mask, expected)
    # the extractor's fixed table is that map, rows normalised, gathered by task index
    extractor = MixtureOfEncoders(SPACE, mode="cluster", task_names=TASK_NAMES, clusters=SMALL_CLUSTERS)
    assert extractor.n_experts == 3
    th.testing.assert_close(
        extractor.expert_weights(th.tensor([0, 1, 2, 3, 0])), (expected / expected.sum(1, keepdim=True))[[0, 1, 2, 3, 0]]
    )


def test_metaworld_clusters_match_capitalised_descriptions():
    names = [f"{name}-v3" for name in METAWORLD_MT10_DESCRIPTIONS]
    mask = cluster_mask(names, METAWORLD_CLUSTERS, METAWORLD_MT10_DESCRIPTIONS)
    clusters = list(METAWORLD_CLUSTERS)

    def assigned(task: str) -> set[str]:
        return {clusters[j] for j in mask[names.index(task)].nonzero().flatten().tolist()}

    # "Reach a goal ..." / "Push the puck ...": mtrl's case-sensitive match missed the capitalised verbs (see README,
    # "Differences from mtrl and mtenv")
    assert assigned("reach-v3") == {"action_default", "object_goal"}
    assert assigned("push-v3") == {"action_push", "object_goal", "object_puck"}
    assert assigned("pick-place-v3") == {"action_default", "object_goal", "object_puck"}
    assert assigned("door-open-v3") == {"action_open", "object_default"}
    assert assigned("window-close-v3") == {"action_push", "action_close", "object_window"}


@pytest.mark.parametrize("benchmark", ["MT10", "MT50"])
@pytest.mark.parametrize("descriptions", ["default", "shipped"])
def test_metaworld_clusters_cover_every_task(benchmark, descriptions):
    names = list(load_task_descriptions(benchmark))
    texts = load_task_descriptions("MT50") if descriptions == "shipped" else None
    clusters = list(METAWORLD_CLUSTERS)
    extractor = MixtureOfEncoders(
        spaces.Dict({"env_obs": spaces.Box(-1, 1, (4,)), "task_obs": spaces.Discrete(len(names))}),
        mode="cluster",
        task_names=names,
        task_descriptions=texts,
        net_arch=[8],
        features_dim=8,
    )
    mask = cluster_mask(names, METAWORLD_CLUSTERS, texts if texts is not None else metaworld_task_descriptions())
    for i, name in enumerate(names):  # every task names an action and an object cluster, or uses that group's default
        assigned = {clusters[j] for j in mask[i].nonzero().flatten().tolist()}
        assert any(c.startswith("action_") for c in assigned) and any(c.startswith("object_") for c in assigned), name
    weights = extractor.expert_weights(th.arange(len(names)))
    th.testing.assert_close(weights.sum(dim=1), th.ones(len(names)))
    obs = {"env_obs": th.randn(len(names), 4), "task_obs": th.eye(len(names))}
    assert th.isfinite(extractor(obs)).all()
    if benchmark == "MT50":
        # "Pick up the ball and drop it through the hoop." names none of mtrl's keywords: both defaults
        assert {clusters[j] for j in mask[names.index("basketball-v3")].nonzero().flatten().tolist()} == {
            "action_default",
            "object_default",
        }


def test_cluster_errors():
    with pytest.raises(ValueError, match="matches no cluster"):
        cluster_mask(["goal_0", "elsewhere"], SMALL_CLUSTERS)
    with pytest.raises(ValueError, match="needs task_names"):
        MixtureOfEncoders(SPACE, mode="cluster")
    with pytest.raises(ValueError, match="3 names but the env has 4 tasks"):
        MixtureOfEncoders(SPACE, mode="cluster", task_names=TASK_NAMES[:3], clusters=SMALL_CLUSTERS)
    with pytest.raises(ValueError, match=r"n_experts == number of clusters \(3\)"):
        MixtureOfEncoders(SPACE, mode="cluster", n_experts=4, task_names=TASK_NAMES, clusters=SMALL_CLUSTERS)


def test_one_to_one_uses_the_tasks_expert():
    th.manual_seed(0)
    extractor = MixtureOfEncoders(SPACE, mode="one_to_one", concat_task_encoding=False)
    assert extractor.n_experts == N_TASKS
    obs = make_obs()
    task_idx = obs["task_obs"].argmax(1)
    every_expert = extractor.experts(obs["env_obs"])  # (E, B, F)
    th.testing.assert_close(extractor(obs), every_expert[task_idx, th.arange(BATCH)])
    assert th.equal(extractor.expert_weights(task_idx), th.nn.functional.one_hot(task_idx, N_TASKS).float())
    with pytest.raises(ValueError, match=r"n_experts == number of tasks \(4\)"):
        MixtureOfEncoders(SPACE, mode="one_to_one", n_experts=3)


def test_ensemble_is_the_mean_of_the_experts():
    th.manual_seed(0)
    extractor = MixtureOfEncoders(SPACE, mode="ensemble", n_experts=3, concat_task_encoding=False)
    obs = make_obs()
    th.testing.assert_close(extractor(obs), extractor.experts(obs["env_obs"]).mean(0))


def test_batched_experts_equal_a_loop_over_experts():
    th.manual_seed(0)
    mlp = BatchedMLP(5, OBS_DIM, [16, 8], 3)
    x = th.randn(BATCH, OBS_DIM)
    looped = []
    for e in range(5):  # the reference: each expert as its own chain of linear maps
        h = x
        linears = [m for m in mlp.layers if isinstance(m, BatchedLinear)]
        for i, layer in enumerate(linears):
            h = th.nn.functional.linear(h, layer.weight[e].T, layer.bias[e, 0])
            if i < len(linears) - 1:
                h = th.relu(h)
        looped.append(h)
    th.testing.assert_close(mlp(x), th.stack(looped))
    layer = BatchedLinear(5, OBS_DIM, 3)
    index = th.randint(0, 5, (BATCH,))
    th.testing.assert_close(layer.forward_selected(x, index), layer(x)[index, th.arange(BATCH)])


@pytest.mark.parametrize(
    "make",
    [
        lambda: BatchedMLP(2, OBS_DIM + 3, [16, 8], 1),
        lambda: BatchedMLP(2, OBS_DIM + 3, [], None),  # no layer: the parts are concatenated
        lambda: BroNet(OBS_DIM + 3, [8, 8, 8], 5, n_experts=2),
        lambda: BroNet(OBS_DIM + 3, [8, 8, 8], 5),
    ],
)
def test_an_input_in_parts_equals_the_concatenated_input(make):
    """The critic feeds (features, actions) as parts: the same values and gradients as their concatenation."""
    th.manual_seed(0)
    net = make()
    features, actions = th.randn(BATCH, OBS_DIM, requires_grad=True), th.randn(BATCH, 3, requires_grad=True)
    inputs = [features, actions, *net.parameters()]
    whole = net(th.cat([features, actions], dim=1))
    parts = net((features, actions))
    th.testing.assert_close(parts, whole)
    for got, want in zip(th.autograd.grad(parts.sum(), inputs), th.autograd.grad(whole.sum(), inputs), strict=True):
        th.testing.assert_close(got, want)


def test_input_parts_must_add_up_to_the_layer_input():
    layer = BatchedLinear(2, OBS_DIM + 3, 4)
    with pytest.raises(ValueError, match=rf"the input parts have \[{OBS_DIM}, 2\] features, the layer takes {OBS_DIM + 3}"):
        layer((th.randn(BATCH, OBS_DIM), th.randn(BATCH, 2)))


@pytest.mark.parametrize("detach", [True, False])
def test_care_attention_detaches_the_task_encoding(detach):
    th.manual_seed(0)
    care = MixtureOfEncoders(SPACE, mode="attention", concat_task_encoding=False, detach_task_encoding=detach)
    care(make_obs()).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in care.selection.parameters())
    encoder_grads = [p.grad for p in care.task_encoder.parameters()]
    if (
        detach
    ):  # CARE as intended: the attention trains its MLP, not the task encoder (see README, "Differences from mtrl and mtenv")
        assert all(g is None for g in encoder_grads)
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in encoder_grads)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        MixtureOfEncoders(SPACE, mode="soft")
    with pytest.raises(ValueError, match="top_k is for mode='gate'"):
        MixtureOfEncoders(SPACE, mode="attention", top_k=2)
    with pytest.raises(ValueError, match="top_k is for mode='gate'"):
        MixtureOfEncoders(SPACE, mode="gate", n_experts=4, top_k=5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        MixtureOfEncoders(SPACE, temperature=0.0)
    with pytest.raises(ValueError, match="task_conditioning must be one of"):
        FeedForwardEncoder(SPACE, task_conditioning="index")
    external = MixtureOfEncoders(SPACE, task_encoding_dim=6)
    assert external.task_encoder is None
    with pytest.raises(ValueError, match="call it as extractor"):
        external(make_obs())
    with pytest.raises(ValueError, match="task encoding of size 6"):
        external(make_obs(), th.zeros(BATCH, 5))
    assert external(make_obs(), th.zeros(BATCH, 6)).shape == (BATCH, 56)
    box_task = spaces.Dict(env_obs=spaces.Box(-1, 1, (3,)), task_obs=spaces.Box(0, 1, (2,)))
    with pytest.raises(ValueError, match="Discrete task_obs"):
        FiLMEncoder(box_task)


# ---------------------------------------------------------------- under SB3 (SAC, TD3, PPO, TQC) on MT-PointGoal-v0


def _model(algo, name, seed=0, **kwargs):
    cls, extractor_kwargs = ENCODERS[name]
    env = make_mt_vec_env("MT-PointGoal-v0", seed=seed)
    policy_kwargs = dict(features_extractor_class=cls, features_extractor_kwargs=extractor_kwargs, net_arch=[32])
    return algo("MultiInputPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device="cpu", **kwargs)


OFF_POLICY = dict(learning_starts=20, batch_size=32, buffer_size=1000)


@pytest.mark.parametrize(
    ("algo", "name", "kwargs"),
    [
        (SAC, "care", OFF_POLICY),
        (TD3, "film", OFF_POLICY),
        (TQC, "soft_modularization", OFF_POLICY),
        (TQC, "gate", OFF_POLICY),
        (PPO, "care", dict(n_steps=16, batch_size=32, n_epochs=1)),
        (PPO, "cluster", dict(n_steps=16, batch_size=32, n_epochs=1)),
    ],
)
def test_learns_under_sb3_algorithms(algo, name, kwargs):
    model = _model(algo, name, **kwargs)
    extractor = model.policy.actor.features_extractor if hasattr(model.policy, "actor") else model.policy.features_extractor
    assert isinstance(extractor, ENCODERS[name][0])
    before = [p.detach().clone() for p in extractor.parameters()]
    model.learn(96)
    assert any(not th.equal(b, p) for b, p in zip(before, extractor.parameters(), strict=True))
    obs = model.env.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (N_TASKS, 2)


def _changed(before: dict[str, th.Tensor], module: th.nn.Module) -> dict[str, bool]:
    return {name: not th.equal(before[name], p) for name, p in module.named_parameters()}


@pytest.mark.parametrize("name", ["feedforward", "film", "care", "ensemble", "one_to_one", "soft_modularization", "gate"])
def test_one_sac_update_trains_every_extractor_parameter(name):
    """README, "Differences from mtrl and mtenv": mtrl never optimised the actor's FiLM / selection network; here the actor and
    the critic do."""
    model = _model(SAC, name, learning_starts=1000, buffer_size=1000)
    model.learn(64)  # fills the buffer with 4 tasks x 16 steps, no update yet
    extractors = {"actor": model.actor.features_extractor, "critic": model.critic.features_extractor}
    assert extractors["actor"] is not extractors["critic"]
    before = {key: {n: p.detach().clone() for n, p in ex.named_parameters()} for key, ex in extractors.items()}
    model.train(gradient_steps=1, batch_size=64)
    for key, extractor in extractors.items():
        changed = _changed(before[key], extractor)
        if name == "gate":  # experts outside every sample's top-k get no gradient; the gate itself must learn
            must = {n: c for n, c in changed.items() if not n.startswith("experts")}
            used = extractor.expert_weights(th.arange(N_TASKS)).sum(0) > 0
            expert_weight = extractor.experts.layers[0].weight
            moved = (expert_weight - before[key]["experts.layers.0.weight"]).flatten(1).abs().sum(1) > 0
            assert th.equal(moved, used), (key, moved, used)
        else:
            must = changed
        assert all(must.values()), f"{key} parameters not updated: {[n for n, c in must.items() if not c]}"


@pytest.mark.parametrize("name", list(ENCODERS))
def test_save_load_round_trip_gives_identical_predictions(name, tmp_path):
    model = _model(SAC, name, learning_starts=32, batch_size=32, buffer_size=1000)
    model.learn(48)
    model.save(tmp_path / "model.zip")
    th.manual_seed(1234)  # a different initialisation, which the load must overwrite
    loaded = SAC.load(tmp_path / "model.zip", device="cpu")
    obs = {
        "env_obs": np.random.default_rng(0).uniform(-1, 1, (8, 2)).astype(np.float32),
        "task_obs": np.arange(8) % N_TASKS,
    }
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
