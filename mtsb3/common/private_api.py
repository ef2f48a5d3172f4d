"""
Every private (underscore) name of a third-party library that mtgym and mtsb3 read, write or override, in one place.

A library can rename a private name in any release; ``tests/test_private_api.py`` exercises each entry below, so an
upgrade fails there, with the entry's name, rather than deep in a training run. Each entry says where the name is
used and why no public API does the job. Protected methods that SB3 and rl_zoo3 document as extension points of
their subclasses (``_setup_model``, ``_excluded_save_params``, ``_preprocess_hyperparams``, ...) are listed too:
they are the hooks we override.

Names removed because a public API does the job: Optuna's ``optuna.storages._heartbeat.is_heartbeat_enabled`` and
``Study._storage`` (:func:`mtsb3.zoo.storage.heartbeat_enabled` asks the storage we built), and the autograd node
attributes that read the task index back from the graph (the combiners now receive it).
"""

from __future__ import annotations

from typing import NamedTuple


class PrivateName(NamedTuple):
    """One private name of a dependency that the project relies on."""

    library: str
    #: the class, node type or module that holds the name
    owner: str
    name: str
    #: the module of ours that uses it
    used_in: str
    why: str


_AUTOGRAD = "mtsb3.common.gradients.per_sample"
_WHY_AUTOGRAD = "a layer's saved input is what makes per-task gradients one backward pass; autograd exposes it no other way"
_ZOO_MANAGER = "mtsb3.zoo.manager"
_MW = "mtgym.envs.metaworld.benchmarks"
_RESUME = "mtsb3.common.resume"
_RESUME_WHY = "a resumed run starts new episodes from the restored env RNGs (SB3's own reset in _setup_learn)"
_STORAGE = "mtsb3.zoo.storage"
_MW_WHY = "as metaworld._make_tasks"

PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # torch autograd graph nodes (saved tensors of the backward functions)
    PrivateName("torch", "AddmmBackward0", "_saved_mat1", _AUTOGRAD, _WHY_AUTOGRAD),
    PrivateName("torch", "AddmmBackward0", "_saved_alpha", _AUTOGRAD, "addmm's scale factors must be 1 for x^T delta"),
    PrivateName("torch", "AddmmBackward0", "_saved_beta", _AUTOGRAD, "addmm's scale factors must be 1 for x^T delta"),
    PrivateName("torch", "BaddbmmBackward0", "_saved_batch1", _AUTOGRAD, _WHY_AUTOGRAD),
    PrivateName("torch", "BaddbmmBackward0", "_saved_alpha", _AUTOGRAD, "baddbmm's scale factors must be 1"),
    PrivateName("torch", "BaddbmmBackward0", "_saved_beta", _AUTOGRAD, "baddbmm's scale factors must be 1"),
    PrivateName("torch", "EmbeddingBackward0", "_saved_indices", _AUTOGRAD, _WHY_AUTOGRAD),
    PrivateName("torch", "EmbeddingBackward0", "_saved_padding_idx", _AUTOGRAD, "the padding row gets no gradient"),
    PrivateName("torch", "EmbeddingBackward0", "_saved_scale_grad_by_freq", _AUTOGRAD, "that mode mixes samples"),
    # Stable-Baselines3
    PrivateName("stable_baselines3", "OffPolicyAlgorithm", "_vec_normalize_env", "mtsb3.mtsac.mtsac", "SAC.train's own"),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_n_updates", "mtsb3.mtsac.mtsac", "SAC.train's update counter"),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_update_learning_rate", "mtsb3.mtsac.mtsac", "SAC.train's own"),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_setup_model", "mtsb3.mtsac.mtsac", "the documented hook"),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_excluded_save_params", "mtsb3.mtsac.mtsac", "save hook"),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_get_torch_save_params", "mtsb3.mtsac.mtsac", "save hook"),
    PrivateName("stable_baselines3", "OffPolicyAlgorithm", "_setup_learn", "mtsb3.common.overlap", "learn's own setup"),
    PrivateName("stable_baselines3", "BaseModel", "_get_constructor_parameters", "mtsb3.mtsac.policies", "save hook"),
    PrivateName("stable_baselines3", "BaseModel", "_update_features_extractor", "mtsb3.mtsac.policies", "SACPolicy's own"),
    PrivateName("stable_baselines3", "EvalCallback", "_is_success_buffer", "mtsb3.zoo.tuning", "no public success rate"),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_last_obs", _RESUME, _RESUME_WHY),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_last_episode_starts", _RESUME, _RESUME_WHY),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_last_original_obs", _RESUME, _RESUME_WHY),
    PrivateName("stable_baselines3", "BaseAlgorithm", "_stats_window_size", _RESUME, "the window of ep_info_buffer"),
    # rl_zoo3 (ExperimentManager hooks we override, and the two module attributes register_zoo replaces)
    PrivateName("rl_zoo3", "ExperimentManager", "_preprocess_hyperparams", _ZOO_MANAGER, "zoo-only YAML keys, recipes"),
    PrivateName("rl_zoo3", "ExperimentManager", "_save_config", _ZOO_MANAGER, "run.yml next to config.yml"),
    PrivateName("rl_zoo3", "ExperimentManager", "_maybe_normalize", _ZOO_MANAGER, "rl-zoo's VecNormalize handling"),
    PrivateName("rl_zoo3", "ExperimentManager", "_create_sampler", _ZOO_MANAGER, "rl-zoo's --sampler"),
    PrivateName("rl_zoo3", "ExperimentManager", "_create_pruner", _ZOO_MANAGER, "rl-zoo's --pruner"),
    PrivateName("rl_zoo3", "ExperimentManager", "_hyperparams", _ZOO_MANAGER, "the preprocessed hyperparameters"),
    PrivateName("rl_zoo3", "ExperimentManager", "_eval_env_kwargs_args", _ZOO_MANAGER, "whether --eval-env-kwargs was given"),
    PrivateName("rl_zoo3", "ExperimentManager", "_load_pretrained_agent", _ZOO_MANAGER, "resuming from a run checkpoint"),
    # Optuna (heartbeats for the journal-file storage)
    PrivateName("optuna", "optuna.storages module", "_heartbeat", _STORAGE, "BaseHeartbeat marks heartbeat storages"),
    PrivateName("optuna", "BaseHeartbeat", "_get_stale_trial_ids", _STORAGE, "the hook fail_stale_trials calls"),
    # Meta-World v3 (generating one task's goals without building the whole benchmark)
    PrivateName("metaworld", "SawyerXYZEnv", "_freeze_rand_vec", _MW, _MW_WHY),
    PrivateName("metaworld", "SawyerXYZEnv", "_set_task_called", _MW, _MW_WHY),
    PrivateName("metaworld", "SawyerXYZEnv", "_set_task_inner", _MW, _MW_WHY),
    PrivateName("metaworld", "SawyerXYZEnv", "_last_rand_vec", _MW, _MW_WHY),
    PrivateName("metaworld", "SawyerXYZEnv", "_reset_hand", _MW, "skipped while drawing goals"),
    # dm_control
    PrivateName("dm_control", "suite.<domain> module", "_CONTROL_TIMESTEP", "mtgym.envs.hipbmdp.dmc_env", "the suite's step"),
)
"""The private names, grouped by library."""
