"""
Named recipes for the mtrl documentation baselines on MetaWorld MT10 (the mtrl docs, Baselines > Metaworld): each function
returns the ``policy_kwargs`` of :class:`mtsb3.MTSAC` that build that method's networks, and :func:`mtrl_mt10_algo_kwargs`
gives the algorithm settings the mtrl docs commands share::

    from mtsb3 import MTSAC, make_mt_vec_env
    from mtsb3.recipes import care, mtrl_mt10_algo_kwargs

    env = make_mt_vec_env("MT-MetaWorld-MT10-v0", seed=1)
    model = MTSAC("MultiInputPolicy", env, policy_kwargs={**care(), **MTRL_ACTOR_KWARGS}, **mtrl_mt10_algo_kwargs())

Every recipe also takes the sizes that matter, so smaller versions are one argument away. The task encoder of the
recipes that use one is the policy's :class:`~mtsb3.common.task_encoder.TaskEncoder`, shared by actor and critic and
trained by the critic loss (mtrl's ``losses_to_train``); the extractors receive its output through
``condition_features_extractor_on_task=True``. For the "pretrained" recipes (SAC+FiLM, CARE), pass
``task_encoder_kwargs=dict(pretrained_embeddings=<json/npz of sentence embeddings of the task descriptions>)``;
without it the embedding is learned.

Where mtrl has a bug, the recipe builds the intended behaviour (README, "Differences from mtrl and mtenv"): every FiLM and
attention parameter of the actor is trained and CARE's attention detaches the task encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from mtgym.core import check_count
from mtsb3.common.bronet import bronet_arch
from mtsb3.common.compositional import CompositionalTaskHeads
from mtsb3.common.orthogonal_experts import MixtureOfOrthogonalExperts
from mtsb3.common.pixel import PixelExtractor
from mtsb3.common.torch_layers import FeedForwardEncoder, FiLMEncoder, MixtureOfEncoders

#: mtrl's MetaWorld actor/critic MLP: 3 hidden layers of 400 (mtrl's config/setup/metaworld.yaml)
MTRL_NET_ARCH: list[int] = [400, 400, 400]
#: mtrl's MetaWorld actor: log std squashed into [-20, 2] with tanh (mtrl/agent/components/actor.py)
MTRL_ACTOR_KWARGS: dict[str, Any] = dict(log_std_bounds=(-20, 2), squash_log_std=True)


def _identity_extractor(task_conditioning: Literal["none", "one_hot"] = "none") -> dict[str, Any]:
    """mtrl's ``identity`` encoder: the networks read ``env_obs`` (plus the one-hot with ``"one_hot"``)."""
    return dict(
        features_extractor_class=FeedForwardEncoder,
        features_extractor_kwargs=dict(net_arch=[], features_dim=None, task_conditioning=task_conditioning),
    )


def _task_conditioned_extractor(
    net_arch: list[int] | dict[str, list[int]],
    task_encoder_kwargs: dict[str, Any] | None,
    concat_task_encoding: bool,
    features_extractor_class: type[BaseFeaturesExtractor],
    features_extractor_kwargs: dict[str, Any],
    extra_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    ``policy_kwargs`` of a recipe whose features extractor is conditioned on the policy's task encoder
    (``condition_features_extractor_on_task=True``; the policy gives the extractor the encoder's output size as
    ``task_encoding_dim``).

    :param net_arch: actor and critic hidden sizes
    :param task_encoder_kwargs: kwargs of :class:`~mtsb3.common.task_encoder.TaskEncoder`
    :param concat_task_encoding: also concatenate the task encoding to the features before the MLPs
    :param features_extractor_class: the extractor
    :param features_extractor_kwargs: the recipe's extractor kwargs
    :param extra_kwargs: the user's extra extractor kwargs (a key that the recipe sets is an error)
    """
    return dict(
        net_arch=net_arch,
        use_task_encoder=True,
        task_encoder_kwargs=dict(task_encoder_kwargs or {}),
        condition_features_extractor_on_task=True,
        concat_task_encoding=concat_task_encoding,
        features_extractor_class=features_extractor_class,
        features_extractor_kwargs=dict(**features_extractor_kwargs, **(extra_kwargs or {})),
    )


def mt_sac(task_conditioning: Literal["none", "one_hot"] = "none", net_arch: Sequence[int] = MTRL_NET_ARCH) -> dict[str, Any]:
    """
    **MT-SAC**: one SAC network for all tasks (run with ``disentangled_alpha=True``).

    :param task_conditioning: ``"none"`` as in the mtrl docs, where the networks see ``env_obs`` only (the task
        encoder is off, mtrl/agent/components/actor.py; MetaWorld's obs shows the goal); ``"one_hot"`` appends the task
        one-hot, the Meta-World paper's MT-SAC
    :param net_arch: actor and critic hidden sizes
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    return dict(net_arch=list(net_arch), **_identity_extractor(task_conditioning))


def mt_sac_te(task_encoder_kwargs: dict[str, Any] | None = None, net_arch: Sequence[int] = MTRL_NET_ARCH) -> dict[str, Any]:
    """
    **MT-SAC + task encoder**: MT-SAC whose networks read ``concat(env_obs, task encoding)``
    (mtrl ``should_use_task_encoder=True`` with the ``identity`` encoder).

    :param task_encoder_kwargs: kwargs of :class:`~mtsb3.common.task_encoder.TaskEncoder`
    :param net_arch: actor and critic hidden sizes
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    return dict(
        net_arch=list(net_arch),
        use_task_encoder=True,
        task_encoder_kwargs=dict(task_encoder_kwargs or {}),
        concat_task_encoding=True,
        **_identity_extractor("none"),
    )


def mt_mh_sac(net_arch: Sequence[int] = (400, 400, 400, 400), head_net_arch: Sequence[int] = (400,)) -> dict[str, Any]:
    """
    **MT-MH-SAC**: MT-SAC with one output head per task for the actor and each Q-network (run with
    ``disentangled_alpha=True``). The networks read ``env_obs``; the head picks the task.

    mtrl's multi-head actor (mtrl/agent/components/actor.py) is a trunk of ``num_layers + 1 = 4`` linear layers of 400 (each
    followed by ReLU), then per-task heads Linear(400, 400), ReLU, Linear(400, out): the defaults here.

    :param net_arch: trunk hidden sizes
    :param head_net_arch: hidden sizes of each task head
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    return dict(net_arch=list(net_arch), multi_head=True, head_net_arch=list(head_net_arch), **_identity_extractor("none"))


def sac_film(
    task_encoder_kwargs: dict[str, Any] | None = None,
    net_arch: Sequence[int] = MTRL_NET_ARCH,
    film_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    **SAC + FiLM**: a FiLM encoder (:class:`~mtsb3.common.torch_layers.FiLMEncoder`, mtrl sizes ``[50, 50]`` to 50)
    modulated by the task encoding, then the MLP on ``concat(features, task encoding)`` (run with
    ``disentangled_alpha=True``). mtrl uses pretrained task embeddings here.

    mtrl reads one scalar (gamma, beta) per layer directly from a 6-d task encoding; here a linear generator maps
    the 50-d encoding to per-feature (gamma, beta) (``film_kwargs=dict(per_feature=False)`` for scalars), and the
    actor's FiLM layers are trained (see README, "Differences from mtrl and mtenv").

    :param task_encoder_kwargs: kwargs of :class:`~mtsb3.common.task_encoder.TaskEncoder`
    :param net_arch: actor and critic hidden sizes
    :param film_kwargs: extra kwargs of :class:`~mtsb3.common.torch_layers.FiLMEncoder`
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    return _task_conditioned_extractor(
        list(net_arch),
        task_encoder_kwargs,
        concat_task_encoding=True,
        features_extractor_class=FiLMEncoder,
        features_extractor_kwargs=dict(features_dim=50, net_arch=[50, 50], concat_task_encoding=False),
        extra_kwargs=film_kwargs,
    )


def care(
    n_experts: int = 4,
    temperature: float = 1.0,
    task_encoder_kwargs: dict[str, Any] | None = None,
    net_arch: Sequence[int] = MTRL_NET_ARCH,
    moe_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    **CARE** (Sodhani et al. 2021, https://arxiv.org/abs/2102.06177, section 4; mtrl/agent/components/encoder.py):
    ``n_experts`` encoders of ``env_obs`` (Linear 50, ReLU, Linear 50), mixed by a softmax attention over the (detached) task
    encoding, then the MLP on ``concat(mixture, task encoding)`` (run with ``disentangled_alpha=True``). mtrl uses pretrained
    task embeddings here.

    :param n_experts: number of encoders (mtrl docs: 4)
    :param temperature: attention softmax temperature
    :param task_encoder_kwargs: kwargs of :class:`~mtsb3.common.task_encoder.TaskEncoder`
    :param net_arch: actor and critic hidden sizes
    :param moe_kwargs: extra kwargs of :class:`~mtsb3.common.torch_layers.MixtureOfEncoders`
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    check_count(n_experts, "n_experts")  # here, not only when the policy is built
    return _task_conditioned_extractor(
        list(net_arch),
        task_encoder_kwargs,
        concat_task_encoding=True,
        features_extractor_class=MixtureOfEncoders,
        features_extractor_kwargs=dict(
            mode="attention",
            n_experts=n_experts,
            temperature=temperature,
            features_dim=50,
            net_arch=[50],
            concat_task_encoding=False,
        ),
        extra_kwargs=moe_kwargs,
    )


def soft_modularization(
    n_modules: int = 4,
    n_layers: int = 2,
    module_hidden: int = 400,
    task_encoder_kwargs: dict[str, Any] | None = None,
    encoder_net_arch: Sequence[int] = (50, 50),
    encoder_dim: int = 50,
) -> dict[str, Any]:
    """
    **Soft Modularization** (Yang et al. 2020) as mtrl builds it (mtrl/agent/components/soft_modularization.py,
    ``SoftModularizedMLP``; the docs recipe: 4 modules, ``num_layers=2``, 400 units): the actor and each Q-network are a
    routed network of ``n_modules`` modules per layer (:class:`~mtsb3.common.soft_modularization.SoftModularizedMLP`, the
    ``"soft_modularization"`` trunk of :class:`~mtsb3.mtsac.policies.MTSACPolicy`), run with ``disentangled_alpha=True``.

    - Observation encoder: mtrl's ``feedforward`` encoder, ``encoder_net_arch`` then ``encoder_dim`` (Linear, ReLU, Linear,
      ReLU, Linear), one per network.
    - Task encoder: the policy's, of output size ``encoder_dim`` (mtrl multiplies the two encodings elementwise), trained
      by the critic loss.
    - ``n_layers - 1`` routed hidden layers of ``module_hidden`` units, then a routed output layer: the actor's mean and
      log std, each Q-network's value. A Q-network first projects ``[encoding | action]`` back to ``encoder_dim``, so that
      the routing of the critic reads the action too, as in mtrl.

    :param n_modules: modules per layer (mtrl: 4)
    :param n_layers: modular layers, the output layer included (mtrl: 2)
    :param module_hidden: units per module of the hidden layers (mtrl: 400)
    :param task_encoder_kwargs: kwargs of :class:`~mtsb3.common.task_encoder.TaskEncoder` (``output_dim`` is
        ``encoder_dim``)
    :param encoder_net_arch: hidden sizes of the observation encoder (mtrl: ``[50, 50]``)
    :param encoder_dim: output size of the observation encoder and of the task encoder (mtrl: 50)
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    check_count(n_modules, "n_modules")
    check_count(n_layers, "n_layers (Soft Modularization routes between layers)", minimum=2)
    return dict(
        net_arch=[module_hidden] * (n_layers - 1),
        trunk="soft_modularization",
        trunk_kwargs=dict(n_modules=n_modules),
        use_task_encoder=True,
        task_encoder_kwargs={"output_dim": encoder_dim, **(task_encoder_kwargs or {})},
        concat_task_encoding=True,
        features_extractor_class=FeedForwardEncoder,
        features_extractor_kwargs=dict(features_dim=encoder_dim, net_arch=list(encoder_net_arch), task_conditioning="none"),
    )


def moore(
    n_experts: int = 4,
    net_arch: Sequence[int] = (400, 400),
    features_dim: int = 400,
    head_net_arch: Sequence[int] = (),
    qf_net_arch: Sequence[int] = (400,),
    task_encoder_kwargs: dict[str, Any] | None = None,
    moore_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    **MOORE** (Hendawy et al. 2024, https://arxiv.org/abs/2311.11385, section 4; the authors' MetaWorld networks,
    moore/utils/networks_sac.py): ``n_experts`` MLPs of ``env_obs``, orthonormalised per sample by Gram-Schmidt and mixed
    by per-task weights (:class:`~mtsb3.common.orthogonal_experts.MixtureOfOrthogonalExperts`), then one output head per
    task, for the actor (mean and log std from one head, the authors' ``--shared_mu_sigma``) and each Q-network (run with
    ``disentangled_alpha=True``). The actor and the critic have their own experts and task weights, as the authors'.

    The authors' critic experts read ``concat(state, action)``; an SB3 features extractor sees the observation only,
    so here the action joins after the mixture, through a ``qf_net_arch`` hidden layer before the Q heads (without one a
    Q head would be linear in the action). The twin Q-networks share the critic's experts (SB3's critic layout); the
    authors build two whole critics.

    :param n_experts: number of experts (authors: 4 on MT10, 6 on MT50)
    :param net_arch: hidden sizes of each expert (authors: 400, 400, then the 400-unit linear output)
    :param features_dim: size of each expert's representation (authors: 400)
    :param head_net_arch: hidden sizes of each task head (authors: none, a linear head per task)
    :param qf_net_arch: hidden sizes of each Q-network between ``concat(features, action)`` and its task heads
    :param task_encoder_kwargs: ``None``: the task weights are a linear map of the task one-hot, as the authors'; else
        kwargs of the policy's :class:`~mtsb3.common.task_encoder.TaskEncoder` (e.g. ``pretrained_embeddings``), whose
        encoding the extractors map linearly to the weights
    :param moore_kwargs: extra kwargs of :class:`~mtsb3.common.orthogonal_experts.MixtureOfOrthogonalExperts`
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    check_count(n_experts, "n_experts")  # here, not only when the policy is built
    arch = dict(pi=[], qf=list(qf_net_arch))
    extractor_kwargs = dict(n_experts=n_experts, net_arch=list(net_arch), features_dim=features_dim)
    if task_encoder_kwargs is not None:
        policy_kwargs = _task_conditioned_extractor(
            arch, task_encoder_kwargs, False, MixtureOfOrthogonalExperts, extractor_kwargs, moore_kwargs
        )
    else:
        policy_kwargs = dict(
            net_arch=arch,
            features_extractor_class=MixtureOfOrthogonalExperts,
            features_extractor_kwargs=dict(**extractor_kwargs, **(moore_kwargs or {})),
        )
    return dict(**policy_kwargs, multi_head=True, head_net_arch=list(head_net_arch))


def mtrl_mt10_algo_kwargs(disentangled_alpha: bool = True) -> dict[str, Any]:
    """
    The :class:`mtsb3.MTSAC` settings shared by the mtrl MT10 docs commands (the mtrl docs, Baselines > Metaworld, and mtrl's
    config/setup/metaworld.yaml): batch 1280, Adam 3e-4, gamma 0.99, tau 0.005, initial temperature 1.0, 1M-transition buffer,
    one update per vector step (10 transitions), random actions for the first 1500 steps (15,000 transitions) and 1500 updates
    in a row when learning starts (``initial_gradient_steps``), the actor and temperature updated every step. Train for
    ``2e6 * 10`` timesteps to match the docs' 2M steps; add :data:`MTRL_ACTOR_KWARGS` to the recipe's ``policy_kwargs`` for
    mtrl's actor.

    :param disentangled_alpha: one temperature per task (every docs recipe except PCGrad)
    :return: kwargs for :class:`mtsb3.MTSAC`
    """
    return dict(
        disentangled_alpha=disentangled_alpha,
        batch_size=1280,
        learning_rate=3e-4,
        gamma=0.99,
        tau=0.005,
        ent_coef="auto_1.0",
        buffer_size=1_000_000,
        learning_starts=15_000,
        train_freq=(1, "step"),
        gradient_steps=1,
        target_update_interval=1,
        actor_update_freq=1,
        initial_gradient_steps=1500,
    )


def pixel_sac(
    net_arch: Sequence[int] = (1024, 1024), features_dim: int = 50, num_layers: int = 4, num_filters: int = 32
) -> dict[str, Any]:
    """
    **Pixel SAC**: mtrl's ``sac`` agent on the HiP-BMDP setup (config/setup/hipbmdp.yaml; ``pcgrad_sac`` and
    ``gradnorm_sac`` in the mtrl docs, Baselines > DMControl): a pixel encoder (4 convs of 32 filters to 50 features,
    :class:`~mtsb3.common.pixel.PixelExtractor`) under 2 x 1024 actor and critic MLPs. Here the actor and the critic
    have their own convs (mtrl tied the actor's to the critic's); SAC-AE (:class:`mtsb3.SACAE`) ties them.

    :param net_arch: actor and critic hidden sizes
    :param features_dim: encoder output size
    :param num_layers: conv layers
    :param num_filters: filters per conv layer
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    extractor_kwargs = dict(features_dim=features_dim, num_layers=num_layers, num_filters=num_filters)
    return dict(net_arch=list(net_arch), features_extractor_class=PixelExtractor, features_extractor_kwargs=extractor_kwargs)


def paco(n_param_sets: int = 5, net_arch: Sequence[int] = MTRL_NET_ARCH) -> dict[str, Any]:
    """
    **PaCo** (Sun et al. 2022, https://arxiv.org/abs/2210.11653, section 3): the actor and each Q-network are one
    network per task whose parameters are composed from a shared set, ``theta_tau = Phi w_tau``, with ``Phi`` ``K``
    full copies of the network's parameters and ``w_tau in R^K`` the learned task vector
    (:class:`~mtsb3.common.compositional.CompositionalTaskHeads` in place of the per-task heads of a disjoint policy).
    The networks read ``env_obs`` only: the task enters through ``w_tau`` (paco-mtrl's
    paco/examples/metaworld_mt10_paco_conf.py, ``use_task_input=False``). Each network has its own ``Phi`` and ``w``,
    as metaworld-algorithms' PaCo (paco-mtrl shares one task-vector network between actor and critics).

    Run it with :class:`mtsb3.PaCo` for the paper's loss mask-out and w-reset (``disentangled_alpha=True``), or with
    :class:`mtsb3.MTSAC` for the network alone.

    :param n_param_sets: ``K``, the size of the parameter set (paco-mtrl MT10: 5)
    :param net_arch: hidden sizes of the actor and of each Q-network
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC` and :class:`mtsb3.PaCo`
    :raises ValueError: if ``n_param_sets`` is not an integer >= 1
    """
    n_param_sets = check_count(n_param_sets, "n_param_sets (K, the size of PaCo's parameter set)")
    return dict(
        net_arch=list(net_arch),
        disjoint_policy=True,
        task_heads_class=CompositionalTaskHeads,
        task_heads_kwargs=dict(n_param_sets=n_param_sets),
        **_identity_extractor("none"),
    )


def brc(
    critic_width: int = 1024,
    critic_blocks: int = 2,
    actor_width: int = 256,
    actor_blocks: int = 1,
    embedding_dim: int = 32,
    n_atoms: int = 101,
    v_max: float = 10.0,
    weight_decay: float = 1e-4,
) -> dict[str, Any]:
    """
    **BRC** (Nauman et al. 2025, "Bigger, Regularized, Categorical", https://arxiv.org/abs/2505.23150;
    naumix/BiggerRegularizedCategorical, jaxrl/agent/brc_learner.py and jaxrl/networks.py): BroNet actor and critic
    (:class:`~mtsb3.common.bronet.BroNet`, Nauman et al. 2024, https://arxiv.org/abs/2405.16158), a categorical critic
    over ``n_atoms`` atoms on ``[-v_max, v_max]`` trained by cross-entropy, and a learned task embedding of unit norm
    concatenated to the observation of both networks (trained by the critic loss only, as BRC's actor reads the
    critic's embedding). The networks read ``env_obs``; AdamW as BRC (optax's default ``weight_decay=1e-4``).

    Run with ``normalize_task_returns=v_max`` (BRC's per-task reward normalisation) and ``max_grad_norm=1.0``
    (``hyperparams/brc.yml``). BRC's defaults: critic 4096 wide with 2 blocks (its train.py), actor 256 wide with 1 block,
    32-d embedding, 101 atoms, ``v_max=10``; the critic width here defaults to 1024.

    :param critic_width: width of every critic layer
    :param critic_blocks: residual blocks of the critic
    :param actor_width: width of every actor layer
    :param actor_blocks: residual blocks of the actor
    :param embedding_dim: size of the learned task embedding
    :param n_atoms: atoms of the categorical critic
    :param v_max: the support is ``[-v_max, v_max]``
    :param weight_decay: AdamW's decoupled weight decay of the actor and critic
    :return: ``policy_kwargs`` for :class:`mtsb3.MTSAC`
    """
    return dict(
        net_arch=dict(pi=bronet_arch(actor_width, actor_blocks), qf=bronet_arch(critic_width, critic_blocks)),
        trunk="bronet",
        critic_type="categorical",
        categorical_kwargs=dict(n_atoms=n_atoms, v_min=-v_max, v_max=v_max),
        use_task_encoder=True,
        task_encoder_kwargs=dict(embedding_dim=embedding_dim, output_dim=None, net_arch=[], unit_norm=True),
        concat_task_encoding=True,
        optimizer_class=th.optim.AdamW,
        optimizer_kwargs=dict(weight_decay=weight_decay),
        **_identity_extractor("none"),
    )


#: recipe name -> function returning the ``policy_kwargs`` (names as in the mtrl docs, Baselines > Metaworld)
RECIPES: dict[str, Callable[..., dict[str, Any]]] = {
    "mt_sac": mt_sac,
    "mt_sac_te": mt_sac_te,
    "mt_mh_sac": mt_mh_sac,
    "sac_film": sac_film,
    "soft_modularization": soft_modularization,
    "care": care,
    "pixel_sac": pixel_sac,
    "moore": moore,
    "paco": paco,
    "brc": brc,
}


def recipe(name: str, **kwargs: Any) -> dict[str, Any]:
    """
    :param name: one of :data:`RECIPES`
    :param kwargs: passed to the recipe function
    :return: the recipe's ``policy_kwargs``
    :raises ValueError: for an unknown name
    """
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name](**kwargs)
