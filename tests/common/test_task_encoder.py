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
from mtsb3.common.task_encoder import load_task_descriptions, load_task_embeddings

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
