"""
Task-conditioned features extractors (mtrl's encoders, mtrl/agent/components/encoder.py): feed-forward, FiLM and a mixture of
encoders (CARE attention, gate with top-k, ensemble, cluster, one-to-one).

Each one is a :class:`~stable_baselines3.common.torch_layers.BaseFeaturesExtractor` over the preprocessed multi-task
observation ``{"env_obs": (B, obs_dim), "task_obs": one-hot (B, n_tasks)}``, so it plugs into SB3 SAC, TD3, PPO,
sb3-contrib TQC and :class:`mtsb3.MTSAC` through ``policy_kwargs``::

    from mtsb3.common.torch_layers import MixtureOfEncoders

    policy_kwargs = dict(
        features_extractor_class=MixtureOfEncoders,
        features_extractor_kwargs=dict(mode="attention", n_experts=4),
        net_arch=[400, 400, 400],
    )

Divergences from mtrl, on purpose (README, "Differences from mtrl and mtenv"):

- mtrl's actor optimizer only covers ``actor.model``, so the actor's FiLM layers and MoE selection network
  keep their random initial weights. Here the extractor is part of the SB3 actor (and, with
  ``share_features_extractor=False``, the critic has its own), so every parameter is trained by its optimizer.
- CARE's attention detaches the task encoding, as the paper intends (mtrl's config key typo turned that
  off). The task encoder is trained through the concatenated encoding only.
- cluster keywords are matched case-insensitively.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp, get_flattened_obs_dim
from torch import nn

from mtgym.core import check_count
from mtsb3.common.experts import BatchedMLP
from mtsb3.common.task import ENV_KEY, TaskBatch, n_tasks_of
from mtsb3.common.task_encoder import TaskEncoder, load_task_descriptions

MoEMode = Literal["attention", "gate", "ensemble", "cluster", "one_to_one"]
MOE_MODES: tuple[str, ...] = ("attention", "gate", "ensemble", "cluster", "one_to_one")
TASK_CONDITIONING: tuple[str, ...] = ("none", "one_hot", "encoding")

# mtrl's MetaWorld clusters (config/agent/components/metaworld_task_to_encoder_cluster.yaml): cluster -> keywords,
# matched against the task descriptions below. The order fixes the expert index of each cluster.
METAWORLD_CLUSTERS: dict[str, list[str]] = {
    "action_close": ["close"],
    "action_default": ["insert", "pick and place", "press", "reach"],
    "action_open": ["open"],
    "action_push": ["push"],
    "object_default": ["button", "door", "peg", "revolving joint"],
    "object_drawer": ["drawer"],
    "object_goal": ["goal"],
    "object_puck": ["puck"],
    "object_window": ["window"],
}

# The MT10 task descriptions of the Meta-World paper (Yu et al. 2019), keyed by task name without the version
# suffix; mtrl matches the cluster keywords against these, not against the names.
METAWORLD_MT10_DESCRIPTIONS: dict[str, str] = {
    "reach": "Reach a goal position. Randomize the goal positions.",
    "push": "Push the puck to a goal. Randomize puck and goal positions.",
    "pick-place": "Pick and place a puck to a goal. Randomize puck and goal positions.",
    "door-open": "Open a door with a revolving joint. Randomize door positions.",
    "drawer-open": "Open a drawer. Randomize drawer positions.",
    "drawer-close": "Push and close a drawer. Randomize the drawer positions.",
    "button-press-topdown": "Press a button from the top. Randomize button positions.",
    "peg-insert-side": "Insert a peg sideways. Randomize peg and goal positions.",
    "window-open": "Push and open a window. Randomize window positions.",
    "window-close": "Push and close a window. Randomize window positions.",
}


def metaworld_task_descriptions() -> dict[str, str]:
    """
    The descriptions the ``cluster`` mode matches by default: the Meta-World paper's for the MT10 tasks
    (:data:`METAWORLD_MT10_DESCRIPTIONS`), the ones shipped with mtsb3 for the other MT50 tasks
    (:func:`~mtsb3.common.task_encoder.load_task_descriptions`), keyed by task name without the version suffix.
    """
    shipped = {_strip_version(name): text for name, text in load_task_descriptions("MT50").items()}
    return {**shipped, **METAWORLD_MT10_DESCRIPTIONS}


def _normalise_text(text: str) -> str:
    """Lower case, with ``-`` and ``_`` read as spaces, so ``"Pick-Place"`` matches the keyword ``"pick place"``."""
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


def _strip_version(task_name: str) -> str:
    """``"reach-v3"`` -> ``"reach"``."""
    head, sep, tail = task_name.rpartition("-v")
    return head if sep and tail.isdigit() else task_name


def cluster_mask(
    task_names: Sequence[str],
    clusters: Mapping[str, Sequence[str]],
    task_descriptions: Mapping[str, str] | None = None,
) -> th.Tensor:
    """
    The fixed task-to-experts map of the ``cluster`` mode: task ``i`` uses expert ``j`` if any keyword of cluster
    ``j`` occurs in task ``i``'s description (or, without one, its name).

    Matching is **case-insensitive** and reads ``-``/``_`` as spaces. mtrl matched case-sensitively (README, "Differences from
    mtrl and mtenv"), so a description starting with a capitalised verb ("Reach ...", "Push ...") silently missed its action
    cluster.

    Clusters named ``<group>_<name>`` form groups (mtrl's ``action_*`` and ``object_*``); a task that matches no cluster
    of a group that has a ``<group>_default`` cluster uses that default, as its name says. mtrl's keywords were written
    for MT10, so many MT50 tasks ("Pick up the ball and drop it through the hoop.") name no action or no object of them;
    mtrl gave such a task an all-zero mask (a division by zero in the expert average).

    :param task_names: the env's task names, in task-index order
    :param clusters: cluster name -> keywords; the order gives the expert index
    :param task_descriptions: task name (with or without the ``-vN`` suffix) -> description
    :return: ``(n_tasks, n_clusters)`` float 0/1 mask
    :raises ValueError: if a task matches no cluster
    """
    descriptions = dict(task_descriptions or {})
    keywords = [[_normalise_text(word) for word in words] for words in clusters.values()]
    groups: dict[str, list[int]] = {}
    for j, cluster in enumerate(clusters):
        groups.setdefault(cluster.split("_")[0], []).append(j)
    defaults = {cluster.split("_")[0]: j for j, cluster in enumerate(clusters) if cluster.endswith("_default")}
    mask = th.zeros(len(task_names), len(keywords))
    for i, name in enumerate(task_names):
        text = descriptions.get(name, descriptions.get(_strip_version(name), name))
        text = _normalise_text(text)
        for j, words in enumerate(keywords):
            mask[i, j] = float(any(word in text for word in words))
        for group, default in defaults.items():
            if mask[i, groups[group]].sum() == 0:
                mask[i, default] = 1.0
        if mask[i].sum() == 0:
            raise ValueError(
                f"Task {name!r} (text {text!r}) matches no cluster of {list(clusters)}; "
                "add a keyword for it or pass its description in task_descriptions."
            )
    return mask


def make_task_encoder(n_tasks: int, task_encoder_kwargs: dict[str, Any] | None = None) -> tuple[nn.Module, int]:
    """
    Build the task encoder of an extractor.

    :param n_tasks: number of tasks
    :param task_encoder_kwargs: kwargs of :class:`~mtsb3.common.task_encoder.TaskEncoder` (learned embedding + MLP,
        or pretrained embeddings with ``pretrained_embeddings=`` and ``task_names=``); a ``task_encoder_class``
        entry picks another module, called as ``cls(n_tasks, **rest)``, that maps ``(batch,)`` long task indices to
        ``(batch, module.output_dim)``
    :return: the module and its output size
    """
    kwargs = dict(task_encoder_kwargs or {})
    cls = kwargs.pop("task_encoder_class", TaskEncoder)
    encoder = cls(n_tasks, **kwargs)
    return encoder, int(encoder.output_dim)


class TaskConditionedExtractor(BaseFeaturesExtractor):
    """
    Base of the extractors here: reads ``env_obs`` and the task index, and owns the task encoder.

    The task encoding comes either from the extractor's own task encoder (``task_encoder_kwargs``: works under any
    SB3 algorithm), or from the caller (``task_encoding_dim``): :class:`mtsb3.MTSAC` with
    ``policy_kwargs=dict(use_task_encoder=True, condition_features_extractor_on_task=True)`` calls
    ``extractor(obs, task_encoding)`` with the policy's task encoder, shared by actor and critic as in mtrl
    (mtrl/agent/components/actor.py).

    Subclasses build their layers after this ``__init__`` (which knows the task encoding size) and then set
    ``self._features_dim``.

    :param observation_space: ``Dict(env_obs=Box, task_obs=Discrete(n_tasks))``
    :param task_encoder_kwargs: see :func:`make_task_encoder`; ``None`` when the subclass needs no task encoder
    :param task_encoding_dim: size of a task encoding passed to ``forward``; the extractor then has no task encoder
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        task_encoder_kwargs: dict[str, Any] | None,
        task_encoding_dim: int | None = None,
    ):
        n_tasks = n_tasks_of(observation_space, type(self).__name__)
        super().__init__(observation_space, features_dim=1)  # the subclass sets the real size
        self.n_tasks = n_tasks
        self.env_obs_dim = get_flattened_obs_dim(observation_space[ENV_KEY])
        self.task_encoder: nn.Module | None = None
        self.task_encoding_dim = 0
        self.external_task_encoding = task_encoding_dim is not None
        if task_encoding_dim is not None:
            self.task_encoding_dim = task_encoding_dim
        elif task_encoder_kwargs is not None:
            self.task_encoder, self.task_encoding_dim = make_task_encoder(n_tasks, task_encoder_kwargs)

    def split(self, observations: dict[str, th.Tensor]) -> tuple[th.Tensor, th.Tensor]:
        """
        :return: the flat ``env_obs`` ``(B, obs_dim)`` and the long task indices ``(B,)``: those the caller derived
            (a :class:`~mtsb3.common.task.TaskObs`, from :class:`mtsb3.MTSAC`), else read from ``task_obs`` (under
            any other SB3 algorithm)
        """
        return observations[ENV_KEY].flatten(1).float(), TaskBatch.from_obs(observations, self.n_tasks).index

    def encode_task(self, task_idx: th.Tensor, task_encoding: th.Tensor | None = None) -> th.Tensor:
        """
        :param task_idx: ``(B,)`` long task indices
        :param task_encoding: a task encoding from the caller, used as is when given
        :return: the task encoding ``(B, task_encoding_dim)``
        """
        if task_encoding is not None:
            if task_encoding.shape[-1] != self.task_encoding_dim:
                raise ValueError(
                    f"expected a task encoding of size {self.task_encoding_dim}, got {tuple(task_encoding.shape)}"
                )
            return task_encoding
        if self.task_encoder is None:
            raise ValueError(
                f"{type(self).__name__} was built with task_encoding_dim={self.task_encoding_dim} and no task encoder: "
                "call it as extractor(obs, task_encoding) (MTSAC: use_task_encoder=True, "
                "condition_features_extractor_on_task=True), or build it with task_encoder_kwargs instead"
            )
        return self.task_encoder(task_idx)


class FeedForwardEncoder(TaskConditionedExtractor):
    """
    An MLP over ``env_obs`` (mtrl's ``feedforward`` and ``identity`` encoders, mtrl/agent/components/encoder.py), with the task
    appended.

    mtrl's defaults are ``net_arch=[50, 50]``, ``features_dim=50`` (Linear, ReLU, Linear, ReLU, Linear). With
    ``net_arch=[]`` and ``features_dim=None`` the body is the identity (mtrl's ``identity`` encoder).

    :param observation_space: ``Dict(env_obs=Box, task_obs=Discrete(n_tasks))``
    :param features_dim: size of the last (linear, no activation) layer; ``None``: no output layer
    :param net_arch: hidden sizes
    :param activation_fn: activation after each hidden layer
    :param task_conditioning: what is concatenated to the body's output: ``"none"`` (nothing: the networks see
        ``env_obs`` only, as mtrl's MT-SAC, mtrl/agent/components/actor.py), ``"one_hot"`` (the task one-hot, as SB3's
        ``CombinedExtractor``) or ``"encoding"`` (the learned task encoding: MT-SAC + task encoder)
    :param task_encoder_kwargs: the task encoder for ``"encoding"`` (see :func:`make_task_encoder`)
    :param task_encoding_dim: for ``"encoding"``: take the encoding, of this size, from the caller instead
        (see :class:`TaskConditionedExtractor`)
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        features_dim: int | None = 50,
        net_arch: Sequence[int] = (50, 50),
        activation_fn: type[nn.Module] = nn.ReLU,
        task_conditioning: Literal["none", "one_hot", "encoding"] = "encoding",
        task_encoder_kwargs: dict[str, Any] | None = None,
        task_encoding_dim: int | None = None,
    ):
        if task_conditioning not in TASK_CONDITIONING:
            raise ValueError(f"task_conditioning must be one of {TASK_CONDITIONING}, got {task_conditioning!r}")
        encoding = task_conditioning == "encoding"
        super().__init__(
            observation_space, (task_encoder_kwargs or {}) if encoding else None, task_encoding_dim if encoding else None
        )
        self.task_conditioning = task_conditioning
        self.body = nn.Sequential(*create_mlp(self.env_obs_dim, features_dim or -1, list(net_arch), activation_fn))
        body_dim = features_dim if features_dim is not None else (list(net_arch) or [self.env_obs_dim])[-1]
        task_dim = {"none": 0, "one_hot": self.n_tasks, "encoding": self.task_encoding_dim}[task_conditioning]
        self._features_dim = body_dim + task_dim

    def forward(self, observations: dict[str, th.Tensor], task_encoding: th.Tensor | None = None) -> th.Tensor:
        """
        :param observations: the preprocessed ``Dict`` observation batch
        :param task_encoding: the task encoding, when it comes from the caller
        """
        env_obs, task_idx = self.split(observations)
        features = self.body(env_obs)
        if self.task_conditioning == "one_hot":
            return th.cat([features, nn.functional.one_hot(task_idx, self.n_tasks).to(features.dtype)], dim=1)
        if self.task_conditioning == "encoding":
            return th.cat([features, self.encode_task(task_idx, task_encoding)], dim=1)
        return features


class FiLMEncoder(TaskConditionedExtractor):
    """
    Feature-wise linear modulation (Perez et al. 2018, https://arxiv.org/abs/1709.07871) of an MLP over ``env_obs``
    by the task: after each layer group ``[Linear, ReLU]``, ..., ``[Linear]``, ``h <- gamma_l(z) * h + beta_l(z)``.

    mtrl (mtrl/agent/components/encoder.py) reads one scalar (gamma, beta) pair per layer straight from a 6-d task encoding.
    Here a linear generator maps the task encoding ``z`` to gamma and beta, per feature by default (the FiLM paper), or one
    scalar per layer with ``per_feature=False`` (mtrl's shape). gamma is parameterised as ``1 + delta_gamma`` so that the
    network starts close to the unmodulated MLP. The generator, the task encoder and the MLP all receive
    gradients from the actor and the critic losses (mtrl never trained the actor's FiLM encoder, README, "Differences from mtrl
    and mtenv").

    :param observation_space: ``Dict(env_obs=Box, task_obs=Discrete(n_tasks))``
    :param features_dim: size of the last (linear) layer
    :param net_arch: hidden sizes (mtrl: ``[50, 50]``)
    :param activation_fn: activation after each hidden layer
    :param per_feature: a (gamma, beta) per feature (``True``) or one scalar pair per layer (``False``, mtrl)
    :param concat_task_encoding: append the task encoding to the output (mtrl's default
        ``should_concatenate_task_info_with_encoder=True``)
    :param task_encoder_kwargs: the task encoder (see :func:`make_task_encoder`)
    :param task_encoding_dim: take the task encoding, of this size, from the caller instead
        (see :class:`TaskConditionedExtractor`)
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        features_dim: int = 50,
        net_arch: Sequence[int] = (50, 50),
        activation_fn: type[nn.Module] = nn.ReLU,
        per_feature: bool = True,
        concat_task_encoding: bool = True,
        task_encoder_kwargs: dict[str, Any] | None = None,
        task_encoding_dim: int | None = None,
    ):
        super().__init__(observation_space, task_encoder_kwargs or {}, task_encoding_dim)
        task_dim = self.task_encoding_dim
        self._features_dim = features_dim + (task_dim if concat_task_encoding else 0)
        sizes = [self.env_obs_dim, *net_arch, features_dim]
        self.layers = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in itertools.pairwise(sizes))
        self.activation = activation_fn()
        self.film_sizes = [n if per_feature else 1 for n in sizes[1:]]
        self.film = nn.Linear(task_dim, 2 * sum(self.film_sizes))
        self.per_feature = per_feature
        self.concat_task_encoding = concat_task_encoding

    def film_params(self, z: th.Tensor) -> list[tuple[th.Tensor, th.Tensor]]:
        """:return: per layer, ``(gamma, beta)`` each ``(B, size)`` (size 1 when not per feature)."""
        gammas, betas = self.film(z).chunk(2, dim=1)
        return [(1.0 + g, b) for g, b in zip(gammas.split(self.film_sizes, 1), betas.split(self.film_sizes, 1), strict=True)]

    def forward(self, observations: dict[str, th.Tensor], task_encoding: th.Tensor | None = None) -> th.Tensor:
        """
        :param observations: the preprocessed ``Dict`` observation batch
        :param task_encoding: the task encoding, when it comes from the caller
        """
        h, task_idx = self.split(observations)
        z = self.encode_task(task_idx, task_encoding)
        for i, (layer, (gamma, beta)) in enumerate(zip(self.layers, self.film_params(z), strict=True)):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
            h = gamma * h + beta
        return th.cat([h, z], dim=1) if self.concat_task_encoding else h


class MixtureOfEncoders(TaskConditionedExtractor):
    """
    ``E`` encoders over ``env_obs``, mixed per sample by weights that depend on the task (mtrl's ``moe`` encoder,
    mtrl/agent/components/encoder.py). All experts run as one batched matmul (:class:`~mtsb3.common.experts.BatchedMLP`,
    weights ``(E, in, out)``), and the mixture is one ``einsum`` over their ``(E, B, F)`` outputs.

    Modes:

    - ``"attention"`` (CARE, Sodhani et al. 2021, https://arxiv.org/abs/2102.06177): ``softmax(MLP(z) / T)`` over
      the ``E`` experts, where ``z`` is the task encoding, **detached** in the attention as the paper intends
      (mtrl's config typo left it attached, README, "Differences from mtrl and mtenv").
    - ``"gate"``: the same network, but only the ``top_k`` largest weights are kept and renormalised over the kept
      ones. With ``top_k=1`` a renormalised weight would be the constant 1, which cuts the gate off from any
      gradient; the kept softmax probability is used instead (as Switch Transformers do).
    - ``"ensemble"``: the mean of all experts.
    - ``"cluster"``: a fixed task-to-experts map from keyword clusters (:func:`cluster_mask`), one expert per
      cluster, averaged over the task's clusters.
    - ``"one_to_one"``: expert ``i`` for task ``i`` (``n_experts == n_tasks``).

    The fixed modes keep a ``(n_tasks, E)`` mixing table in a buffer and gather its rows by task index.

    :param observation_space: ``Dict(env_obs=Box, task_obs=Discrete(n_tasks))``
    :param mode: one of ``"attention"``, ``"gate"``, ``"ensemble"``, ``"cluster"``, ``"one_to_one"``
    :param n_experts: ``E``; ``None`` means 4 (``attention``, ``gate``, ``ensemble``), the number of clusters
        (``cluster``) or of tasks (``one_to_one``)
    :param features_dim: each expert's output size (mtrl: 50)
    :param net_arch: each expert's hidden sizes (mtrl: ``[50]``, i.e. Linear, ReLU, Linear)
    :param activation_fn: the experts' hidden activation
    :param temperature: softmax temperature of ``attention`` and ``gate``
    :param top_k: experts kept per sample in ``gate`` mode (mtrl: 2); ``None`` keeps all
    :param selection_net_arch: hidden sizes of the attention/gate MLP (mtrl: ``[50, 50]``)
    :param detach_task_encoding: detach the task encoding inside the attention/gate (CARE)
    :param concat_task_encoding: append the task encoding to the mixture (CARE paper, Sodhani et al. 2021, section 4)
    :param task_names: the env's task names in index order, needed by ``cluster`` mode
        (``venv.get_attr("task_names", [0])[0]``)
    :param clusters: cluster name -> keywords (default :data:`METAWORLD_CLUSTERS`)
    :param task_descriptions: texts matched instead of the names (default :func:`metaworld_task_descriptions`)
    :param task_encoder_kwargs: the task encoder (see :func:`make_task_encoder`)
    :param task_encoding_dim: take the task encoding, of this size, from the caller instead
        (see :class:`TaskConditionedExtractor`)
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        mode: MoEMode = "attention",
        n_experts: int | None = None,
        features_dim: int = 50,
        net_arch: Sequence[int] = (50,),
        activation_fn: type[nn.Module] = nn.ReLU,
        temperature: float = 1.0,
        top_k: int | None = None,
        selection_net_arch: Sequence[int] = (50, 50),
        detach_task_encoding: bool = True,
        concat_task_encoding: bool = True,
        task_names: Sequence[str] | None = None,
        clusters: Mapping[str, Sequence[str]] | None = None,
        task_descriptions: Mapping[str, str] | None = None,
        task_encoder_kwargs: dict[str, Any] | None = None,
        task_encoding_dim: int | None = None,
    ):
        if mode not in MOE_MODES:
            raise ValueError(f"mode must be one of {MOE_MODES}, got {mode!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        n_tasks = n_tasks_of(observation_space, f"MixtureOfEncoders(mode={mode!r})")
        mixing = None
        if mode == "cluster":
            if task_names is None:
                raise ValueError('mode="cluster" needs task_names (e.g. venv.get_attr("task_names", [0])[0])')
            if len(task_names) != n_tasks:
                raise ValueError(f"task_names has {len(task_names)} names but the env has {n_tasks} tasks")
            mixing = cluster_mask(
                task_names,
                METAWORLD_CLUSTERS if clusters is None else clusters,
                metaworld_task_descriptions() if task_descriptions is None else task_descriptions,
            )
        elif mode == "one_to_one":
            mixing = th.eye(n_tasks)
        default_experts = {"cluster": None if mixing is None else mixing.shape[1], "one_to_one": n_tasks}.get(mode, 4)
        # None means the mode's default; 0 is an error, not the default
        n_experts = default_experts if n_experts is None else check_count(n_experts, "n_experts")
        if mixing is not None and n_experts != mixing.shape[1]:
            what = "clusters" if mode == "cluster" else "tasks"
            raise ValueError(f"mode={mode!r} needs n_experts == number of {what} ({mixing.shape[1]}), got {n_experts}")
        if mode == "ensemble":
            mixing = th.ones(n_tasks, n_experts)
        if top_k is not None and (mode != "gate" or not 1 <= top_k <= n_experts):
            raise ValueError(f"top_k is for mode='gate', with 1 <= top_k <= n_experts={n_experts}; got {top_k}")
        needs_encoder = mode in ("attention", "gate") or concat_task_encoding
        super().__init__(observation_space, (task_encoder_kwargs or {}) if needs_encoder else None, task_encoding_dim)
        task_dim = self.task_encoding_dim
        self._features_dim = features_dim + (task_dim if concat_task_encoding else 0)
        self.mode, self.n_experts, self.temperature, self.top_k = mode, n_experts, temperature, top_k
        self.detach_task_encoding, self.concat_task_encoding = detach_task_encoding, concat_task_encoding
        self.experts = BatchedMLP(n_experts, self.env_obs_dim, list(net_arch), features_dim, activation_fn)
        self.selection: nn.Module | None = None
        if mode in ("attention", "gate"):
            self.selection = nn.Sequential(*create_mlp(task_dim, n_experts, list(selection_net_arch)))
        if mixing is not None:
            # rows normalised once here, so the forward pass is a gather + einsum (mtrl divides by Σ w every call)
            self.register_buffer("mixing", mixing / mixing.sum(dim=1, keepdim=True))
        else:
            self.mixing: th.Tensor | None = None

    def expert_weights(self, task_idx: th.Tensor, z: th.Tensor | None = None) -> th.Tensor:
        """
        :param task_idx: ``(B,)`` long task indices
        :param z: the task encoding ``(B, d)`` for ``attention`` / ``gate`` (computed if ``None``)
        :return: ``(B, E)`` mixing weights; each row sums to 1 (except ``gate`` with ``top_k=1``, see the class doc)
        """
        if self.mixing is not None:
            return self.mixing[task_idx]
        assert self.selection is not None
        z = self.encode_task(task_idx, z)
        if self.detach_task_encoding:
            z = z.detach()
        weights = th.softmax(self.selection(z) / self.temperature, dim=1)
        if self.top_k is not None and self.top_k < self.n_experts:
            top_values, top_index = weights.topk(self.top_k, dim=1)
            if self.top_k > 1:
                top_values = top_values / top_values.sum(dim=1, keepdim=True)
            weights = th.zeros_like(weights).scatter(1, top_index, top_values)
        return weights

    def forward(self, observations: dict[str, th.Tensor], task_encoding: th.Tensor | None = None) -> th.Tensor:
        """
        :param observations: the preprocessed ``Dict`` observation batch
        :param task_encoding: the task encoding, when it comes from the caller
        """
        env_obs, task_idx = self.split(observations)
        z = None
        if self.selection is not None or self.concat_task_encoding:
            z = self.encode_task(task_idx, task_encoding)
        weights = self.expert_weights(task_idx, z)
        features = th.einsum("be,ebf->bf", weights, self.experts(env_obs))
        if self.concat_task_encoding:
            assert z is not None
            features = th.cat([features, z], dim=1)
        return features
