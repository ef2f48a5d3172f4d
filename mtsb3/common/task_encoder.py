"""
Task encoders: a learned (or pretrained, frozen) embedding of the task index followed by an MLP (mtrl's
``TaskEncoder``, mtrl/agent/components/task_encoder.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

TASK_DESCRIPTION_FILES = {"MT10": "metaworld_mt10_descriptions.json", "MT50": "metaworld_mt50_descriptions.json"}
#: sentence embeddings of those descriptions shipped with mtsb3 (``scripts/make_task_embeddings.py`` made them; each file
#: names its model and dimension); ``pretrained_embeddings="MT10"`` or ``"MT50"`` selects one
SHIPPED_TASK_EMBEDDINGS = {"MT10": "metaworld_mt10_task_embeddings.json", "MT50": "metaworld_mt50_task_embeddings.json"}
PretrainedEmbeddings = str | os.PathLike | Mapping[str, Sequence[float]] | np.ndarray


def load_task_descriptions(benchmark: str = "MT10") -> dict[str, str]:
    """
    The one-sentence task descriptions shipped with mtsb3, in benchmark order (the input of
    ``scripts/make_task_embeddings.py``; mtrl embedded the Meta-World paper's descriptions with RoBERTa,
    mtrl/agent/components/task_encoder.py).

    :param benchmark: ``"MT10"`` or ``"MT50"`` (Meta-World v3 task names, e.g. ``"reach-v3"``)
    :return: ``{task_name: description}``
    """
    if benchmark not in TASK_DESCRIPTION_FILES:
        raise ValueError(f"Unknown benchmark {benchmark!r}: task descriptions exist for {sorted(TASK_DESCRIPTION_FILES)}")
    text = resources.files("mtsb3").joinpath("data", TASK_DESCRIPTION_FILES[benchmark]).read_text()
    return json.loads(text)


def shipped_task_embeddings(benchmark: str = "MT10") -> dict[str, Any]:
    """
    The task-description embeddings shipped with mtsb3, in place of mtrl's RoBERTa files
    (``metadata/task_embedding/roberta_small/metaworld-mt10.json``, read by mtrl/agent/components/task_encoder.py),
    which cannot be downloaded at run time.

    :param benchmark: ``"MT10"`` or ``"MT50"``
    :return: ``{"model": name, "package": where the weights came from, "dim": size, "pooling": how, "embeddings":
        {task_name: vector}}``
    """
    if benchmark not in SHIPPED_TASK_EMBEDDINGS:
        raise ValueError(f"Unknown benchmark {benchmark!r}: task embeddings ship for {sorted(SHIPPED_TASK_EMBEDDINGS)}")
    return json.loads(resources.files("mtsb3").joinpath("data", SHIPPED_TASK_EMBEDDINGS[benchmark]).read_text())


def _embedding_table(source: str | os.PathLike) -> Mapping[str, Any]:
    """``{task_name: vector}`` of a shipped benchmark name or a .json/.npz/.npy file (a JSON may carry metadata)."""
    path = os.fspath(source)
    if path in SHIPPED_TASK_EMBEDDINGS:
        return shipped_task_embeddings(path)["embeddings"]
    if path.endswith(".json"):
        with open(path) as file:
            table = json.load(file)
        # the format of scripts/make_task_embeddings.py: the vectors under "embeddings", next to the model name
        return table["embeddings"] if isinstance(table.get("embeddings"), Mapping) else table
    if path.endswith(".npz"):
        with np.load(path) as archive:
            return {key: archive[key] for key in archive.files}
    if path.endswith(".npy"):
        # a dict saved with np.save is a pickled 0-d object array: only load files you made yourself
        loaded = np.load(path, allow_pickle=True)
        table = loaded.item() if loaded.dtype == object and loaded.shape == () else loaded
        if not isinstance(table, Mapping):
            raise ValueError(f"{path} must hold a {{task_name: vector}} dict (np.save(path, dict)), got {type(table)}")
        return table
    raise ValueError(
        f"Unsupported task embedding file {path!r}: expected a .json, .npz or .npy file, or one of "
        f"{sorted(SHIPPED_TASK_EMBEDDINGS)} (the embeddings shipped with mtsb3)"
    )


def load_task_embeddings(source: PretrainedEmbeddings, task_names: Sequence[str] | None = None) -> np.ndarray:
    """
    Read pretrained task embeddings and order them like ``task_names``.

    :param source: ``"MT10"`` or ``"MT50"`` (the embeddings shipped with mtsb3, :func:`shipped_task_embeddings`), a
        ``.json`` file mapping task name to a vector (or holding that mapping under ``"embeddings"``), a ``.npz`` file
        with one array per task name, a ``.npy`` file holding such a dict (saved with ``np.save(path, dict)``), a
        ``{task_name: vector}`` mapping, or an already ordered ``(n_tasks, dim)`` array
    :param task_names: the task names in benchmark order (the order of the task indices); required unless
        ``source`` is an array
    :return: a float32 array ``(n_tasks, dim)`` whose row ``i`` embeds task ``task_names[i]``
    :raises ValueError: on a missing task name, vectors of different shapes, or a non 1-D vector
    """
    if isinstance(source, np.ndarray):
        array = np.asarray(source, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f"Pretrained task embeddings must be a 2-D (n_tasks, dim) array, got shape {array.shape}")
        if task_names is not None and len(task_names) != array.shape[0]:
            raise ValueError(f"Got {array.shape[0]} pretrained task embeddings for {len(task_names)} tasks")
        return array
    if isinstance(source, Mapping):
        table: Mapping[str, Any] = source
        origin = "the given mapping"
    else:
        origin = os.fspath(source)
        table = _embedding_table(source)
    if task_names is None:
        raise ValueError("task_names is required to order pretrained task embeddings read from a file or mapping")
    missing = [name for name in task_names if name not in table]
    if missing:
        raise ValueError(f"{origin} has no embedding for tasks {missing}; it has {sorted(table)}")
    rows = [np.asarray(table[name], dtype=np.float32) for name in task_names]
    shapes = {row.shape for row in rows}
    if len(shapes) != 1 or rows[0].ndim != 1:
        raise ValueError(f"Task embeddings in {origin} must be 1-D vectors of one length, got shapes {sorted(shapes)}")
    return np.stack(rows)


class TaskEncoder(nn.Module):
    """
    Map a task index to a task encoding: an embedding, then an MLP.

    * **Learned** (default): ``Embedding(n_tasks, embedding_dim)``, ReLU, then an MLP ``net_arch`` to ``output_dim``
      (mtrl: 50, [50, 50], 50).
    * **Pretrained**: rows of a frozen table read by :func:`load_task_embeddings` (e.g. sentence embeddings of the
      task descriptions, ``scripts/make_task_embeddings.py``), projected by ``pretrained_net_arch`` (mtrl: 768 to
      100 to 50, with ReLUs), then the same MLP. The table is a buffer, so checkpoints do not need the file.

    mtrl applies a ReLU to the raw pretrained embedding, which zeroes every negative component of a sentence embedding
    (README, "Differences from mtrl and mtenv"). That looks unintended, so it is off here; ``relu_on_pretrained=True`` restores
    it.

    * **BRC** (Nauman et al. 2025, https://arxiv.org/abs/2505.23150, section 3; naumix/BiggerRegularizedCategorical,
      jaxrl/networks.py, ``TaskEmbedding``): ``output_dim=None, net_arch=(), unit_norm=True`` gives the learned embedding
      itself, divided by its L2 norm.

    :param n_tasks: number of tasks
    :param output_dim: size of the task encoding; ``None``: no MLP (``net_arch`` must be empty), the encoding is the
        (projected) embedding itself
    :param embedding_dim: size of the learned embedding (ignored with pretrained embeddings)
    :param net_arch: hidden sizes of the MLP after the (projected) embedding
    :param pretrained_embeddings: pretrained embeddings (see :func:`load_task_embeddings`); ``None`` learns them
    :param task_names: task names in task-index order, used to order a pretrained file or mapping
    :param pretrained_net_arch: the projection of the pretrained embedding (each layer followed by ReLU)
    :param relu_on_pretrained: apply mtrl's ReLU to the raw pretrained embedding
    :param activation_fn: activation between layers
    :param unit_norm: divide each encoding by its L2 norm (BRC)
    """

    def __init__(
        self,
        n_tasks: int,
        output_dim: int | None = 50,
        embedding_dim: int = 50,
        net_arch: Sequence[int] = (50, 50),
        pretrained_embeddings: PretrainedEmbeddings | None = None,
        task_names: Sequence[str] | None = None,
        pretrained_net_arch: Sequence[int] = (100, 50),
        relu_on_pretrained: bool = False,
        activation_fn: type[nn.Module] = nn.ReLU,
        unit_norm: bool = False,
    ):
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
        if output_dim is None and net_arch:
            raise ValueError(f"output_dim=None uses the embedding itself (no MLP): net_arch must be empty, got {net_arch!r}")
        if task_names is not None and len(task_names) != n_tasks:
            raise ValueError(f"Got {len(task_names)} task names for {n_tasks} tasks")
        self.n_tasks, self.unit_norm = n_tasks, unit_norm
        self.pretrained = pretrained_embeddings is not None
        layers: list[nn.Module]
        if pretrained_embeddings is None:
            self.embedding = nn.Embedding(n_tasks, embedding_dim)
            layers = [activation_fn()] if output_dim is not None else []
            in_dim = embedding_dim
        else:
            table = th.as_tensor(load_task_embeddings(pretrained_embeddings, task_names))
            if table.shape[0] != n_tasks:
                raise ValueError(f"Got {table.shape[0]} pretrained task embeddings for {n_tasks} tasks")
            self.embedding = nn.Embedding.from_pretrained(table, freeze=True)
            layers = [activation_fn()] if relu_on_pretrained else []
            layers += create_mlp(table.shape[1], -1, list(pretrained_net_arch), activation_fn)
            in_dim = pretrained_net_arch[-1] if pretrained_net_arch else table.shape[1]
        if output_dim is not None:
            layers += create_mlp(in_dim, output_dim, list(net_arch), activation_fn)
        self.output_dim: int = output_dim if output_dim is not None else in_dim
        self.mlp = nn.Sequential(*layers)

    def forward(self, task_idx: th.Tensor) -> th.Tensor:
        """:param task_idx: ``(batch,)`` long task indices; :return: ``(batch, output_dim)`` task encodings."""
        encoding = self.mlp(self.embedding(task_idx))
        return nn.functional.normalize(encoding, dim=-1) if self.unit_norm else encoding
