"""
Optuna samplers of the mtsb3 methods, with the signature of ``rl_zoo3.hyperparams_opt``'s samplers:
``(trial, n_actions, n_envs, additional_args) -> hyperparameters``, and the converter that turns stored trial
parameters back into constructor kwargs (``--trial-id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mtsb3.common.bronet import bronet_arch

if TYPE_CHECKING:
    import optuna

#: network sizes the samplers choose from; "mtrl" is the docs recipe (3 x 400, mtrl's config/setup/metaworld.yaml)
NET_ARCHS: dict[str, list[int]] = {
    "small": [64, 64],
    "medium": [256, 256],
    "big": [400, 400],
    "mtrl": [400, 400, 400],
    "hipbmdp": [1024, 1024],
}
#: BroNet sizes the BRC sampler chooses from, ``"<width>x<residual blocks>"`` (BRC's actor: 256x1, critic: 4096x2)
BRONET_SIZES: dict[str, tuple[str, ...]] = {"actor": ("64x1", "256x1"), "critic": ("256x1", "512x2", "1024x2")}


def _bronet_size(name: str, size: str) -> list[int]:
    width, _, blocks = size.partition("x")
    if not (width.isdigit() and blocks.isdigit()):
        raise ValueError(f"{name} must be '<width>x<residual blocks>' such as '1024x2', got {size!r}")
    return bronet_arch(int(width), int(blocks))


def _convert_brc_params(params: dict[str, Any], policy_kwargs: dict[str, Any], hyperparams: dict[str, Any]) -> None:
    """Move BRC's sampled keys out of ``params`` (see :func:`convert_mtsac_params`)."""
    sizes = {key: params.pop(key) for key in ("bronet_actor", "bronet_critic") if key in params}
    if sizes:
        if len(sizes) != 2:
            raise ValueError(f"bronet_actor and bronet_critic are sampled together (net_arch has both), got {sorted(sizes)}")
        policy_kwargs["net_arch"] = {
            "pi": _bronet_size("bronet_actor", sizes["bronet_actor"]),
            "qf": _bronet_size("bronet_critic", sizes["bronet_critic"]),
        }
    if "v_max" in params:
        # one bound for the categorical support and the reward normalisation, as BRC (jaxrl/normalizer.py)
        v_max = params.pop("v_max")
        policy_kwargs["categorical_kwargs"] = {"v_min": -v_max, "v_max": v_max}
        hyperparams["normalize_task_returns"] = v_max


def convert_mtsac_params(sampled: dict[str, Any]) -> dict[str, Any]:
    """
    Turn raw sampled values (``trial.params``) into constructor kwargs; the ``HYPERPARAMS_CONVERTER`` of every
    off-policy family, used again by ``--trial-id`` to retrain from a stored trial.

    :param sampled: ``one_minus_gamma``, ``batch_size_pow``, ``net_arch`` (a :data:`NET_ARCHS` name), ``policy__<key>``
        (into ``policy_kwargs``; ``policy__<name>_kwargs__<key>`` into the ``<name>_kwargs`` dict of ``policy_kwargs``,
        merged into the recipe's, e.g. ``policy__features_extractor_kwargs__n_experts``), ``grad__<key>`` (into
        ``grad_method_kwargs``) and direct kwargs
        (into ``policy_kwargs``), ``grad__<key>`` (into ``grad_method_kwargs``), BRC's ``bronet_actor`` and
        ``bronet_critic`` (:data:`BRONET_SIZES`, into ``net_arch``) and ``v_max`` (the categorical support
        ``[-v_max, v_max]`` and ``normalize_task_returns``), and direct kwargs
    :return: kwargs for the algorithm, with ``policy_kwargs["net_arch"]``
    """
    params = dict(sampled)
    hyperparams: dict[str, Any] = {}
    if "one_minus_gamma" in params:
        hyperparams["gamma"] = 1.0 - params.pop("one_minus_gamma")
    if "batch_size_pow" in params:
        hyperparams["batch_size"] = 2 ** params.pop("batch_size_pow")
    policy_kwargs: dict[str, Any] = {}
    if "net_arch" in params:
        policy_kwargs["net_arch"] = list(NET_ARCHS[params.pop("net_arch")])
    for key in [k for k in params if k.startswith("policy__")]:
        name, _, inner = key.removeprefix("policy__").partition("__")
        if inner:  # one key of a kwargs dict of the policy (the preset's other keys are kept by the merge)
            policy_kwargs.setdefault(name, {})[inner] = params.pop(key)
        else:
            policy_kwargs[name] = params.pop(key)
    grad_kwargs = {key.removeprefix("grad__"): params.pop(key) for key in [k for k in params if k.startswith("grad__")]}
    _convert_brc_params(params, policy_kwargs, hyperparams)
    hyperparams.update(params)
    if policy_kwargs:
        hyperparams["policy_kwargs"] = policy_kwargs
    if grad_kwargs:
        hyperparams["grad_method_kwargs"] = grad_kwargs
    return hyperparams


def _sample_sac_core(trial: optuna.Trial, net_archs: Sequence[str] | None, batch_pows: tuple[int, int]) -> dict[str, Any]:
    one_minus_gamma = trial.suggest_float("one_minus_gamma", 1e-3, 0.03, log=True)
    batch_size_pow = trial.suggest_int("batch_size_pow", *batch_pows)
    trial.set_user_attr("gamma", 1.0 - one_minus_gamma)
    trial.set_user_attr("batch_size", 2**batch_size_pow)
    params = {
        "one_minus_gamma": one_minus_gamma,
        "batch_size_pow": batch_size_pow,
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "tau": trial.suggest_float("tau", 1e-3, 0.05, log=True),
    }
    if net_archs is not None:  # None: the network is the recipe's (encoders)
        params["net_arch"] = trial.suggest_categorical("net_arch", list(net_archs))
    return params


def sample_mtsac_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for the MTSAC family (mtsac, mtsac_te, mtmhsac): the SAC core of rl-zoo's ``sample_sac_params``
    (log-scale ``one_minus_gamma``, ``batch_size_pow``, categorical ``net_arch``), with batch sizes and networks in
    the multi-task range (128 to 2048, up to the 3 x 400 docs network).
    """
    return convert_mtsac_params(_sample_sac_core(trial, ["small", "medium", "mtrl"], (7, 11)))


def sample_encoder_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for the task-conditioned encoder family (film, softmod, care): the SAC core without the network size,
    which belongs to the recipe (the sampled kwargs are merged into the preset's, so the recipe's extractor is kept).
    """
    return convert_mtsac_params(_sample_sac_core(trial, None, (7, 11)))


def sample_pcgrad_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for PCGrad (``grad_method`` comes from the preset): the MTSAC core."""
    return convert_mtsac_params(_sample_sac_core(trial, ["medium", "mtrl"], (7, 11)))


def sample_gradnorm_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for GradNorm: the MTSAC core plus the asymmetry ``alpha`` (paper: 0.12 to 3; mtrl: 1.0)."""
    params = _sample_sac_core(trial, ["medium", "mtrl"], (7, 11))
    params["grad__alpha"] = trial.suggest_float("grad__alpha", 0.1, 3.0, log=True)
    return convert_mtsac_params(params)


def sample_cagrad_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for CAGrad: the MTSAC core plus the ball radius ``c`` (the paper uses 0.4 on MT10)."""
    params = _sample_sac_core(trial, ["medium", "mtrl"], (7, 11))
    params["grad__c"] = trial.suggest_float("grad__c", 0.1, 0.9)
    return convert_mtsac_params(params)


def sample_famo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for FAMO: the MTSAC core plus the Adam learning rate ``lr`` of the task logits (the reference: 0.025, its
    MTRL config: 0.01) and their weight decay ``gamma`` (the reference MTRL agent: 1e-3).
    """
    params = _sample_sac_core(trial, ["medium", "mtrl"], (7, 11))
    params["grad__lr"] = trial.suggest_float("grad__lr", 1e-3, 0.1, log=True)
    params["grad__gamma"] = trial.suggest_float("grad__gamma", 1e-5, 1e-1, log=True)
    return convert_mtsac_params(params)


def sample_uw_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for uncertainty weighting: the MTSAC core plus the Adam learning rate ``lr`` of the log variances."""
    params = _sample_sac_core(trial, ["medium", "mtrl"], (7, 11))
    params["grad__lr"] = trial.suggest_float("grad__lr", 1e-3, 0.1, log=True)
    return convert_mtsac_params(params)


def sample_distral_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for Distral: the MTSAC core plus the distillation weight ``distral_alpha`` (mtrl/agent/distral.py)."""
    params = _sample_sac_core(trial, ["medium", "mtrl"], (7, 11))
    params["distral_alpha"] = trial.suggest_float("distral_alpha", 0.05, 1.0, log=True)
    return convert_mtsac_params(params)


def sample_pixel_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for the pixel family (sacae, deepmdp, hipbmdp): smaller batches (pixels), up to the 2 x 1024 recipe."""
    return convert_mtsac_params(_sample_sac_core(trial, ["medium", "hipbmdp"], (6, 9)))


def sample_moore_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for MOORE: the SAC core (the network belongs to the recipe) plus the number of orthogonal experts (the
    authors' MetaWorld scripts: 4 on MT10, 6 on MT50) and the size of their representations (authors: 400).
    """
    params = _sample_sac_core(trial, None, (7, 11))
    extractor = "policy__features_extractor_kwargs__"
    params[f"{extractor}n_experts"] = trial.suggest_int(f"{extractor}n_experts", 2, 10)
    params[f"{extractor}features_dim"] = trial.suggest_categorical(f"{extractor}features_dim", [64, 128, 256, 400])
    return convert_mtsac_params(params)


def sample_paco_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for PaCo: the SAC core (the network sizes are the recipe's) plus the parameter-set size ``K``
    (paco-mtrl MT10: 5), the loss mask-out threshold (paco-mtrl: 3e3, on its reward scale) and the w-reset method.
    """
    params = _sample_sac_core(trial, None, (7, 11))
    params["policy__task_heads_kwargs__n_param_sets"] = trial.suggest_int("policy__task_heads_kwargs__n_param_sets", 2, 10)
    params["loss_mask_threshold"] = trial.suggest_float("loss_mask_threshold", 1e2, 1e5, log=True)
    params["w_reset"] = trial.suggest_categorical("w_reset", ["interpolate", "copy"])
    return convert_mtsac_params(params)


def sample_brc_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for BRC: the SAC core (batch 128 to 1024) plus BRC's knobs: the BroNet actor and critic sizes
    (:data:`BRONET_SIZES`), the return bound ``v_max`` of the categorical support and of the per-task reward
    normalisation (BRC: 10) and the gradient clipping norm ``max_grad_norm`` (BRC's preset: 1.0).
    """
    params = _sample_sac_core(trial, None, (7, 10))
    params["bronet_actor"] = trial.suggest_categorical("bronet_actor", list(BRONET_SIZES["actor"]))
    params["bronet_critic"] = trial.suggest_categorical("bronet_critic", list(BRONET_SIZES["critic"]))
    params["v_max"] = trial.suggest_categorical("v_max", [5.0, 10.0, 20.0])
    params["max_grad_norm"] = trial.suggest_float("max_grad_norm", 0.1, 10.0, log=True)
    return convert_mtsac_params(params)
