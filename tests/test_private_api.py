"""
Every private name of :mod:`mtsb3.common.private_api` still exists in the installed libraries, where we use it.

Each test builds the smallest object that holds the names of one owner and checks them all, so that an upgrade that
renames one fails here, naming it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

import pytest
import torch as th

from mtsb3.common.experts import BatchedLinear
from mtsb3.common.private_api import PRIVATE_NAMES, PrivateName


def _names(library: str) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = defaultdict(list)
    for entry in PRIVATE_NAMES:
        if entry.library == library:
            owners[entry.owner].append(entry.name)
    return owners


def _missing(obj: object, names: list[str]) -> list[str]:
    return [name for name in names if not hasattr(obj, name)]


def test_every_entry_is_complete():
    libraries = {"torch", "stable_baselines3", "rl_zoo3", "metaworld", "dm_control", "optuna"}
    assert {entry.library for entry in PRIVATE_NAMES} == libraries
    for entry in PRIVATE_NAMES:
        assert isinstance(entry, PrivateName) and entry.name.startswith("_") and entry.used_in and entry.why


def test_torch_autograd_nodes():
    x = th.randn(4, 3)
    nodes = {
        "AddmmBackward0": th.nn.Linear(3, 2)(x).sum().grad_fn.next_functions[0][0],
        "BaddbmmBackward0": BatchedLinear(2, 3, 2)(x.expand(2, 4, 3)).sum().grad_fn.next_functions[0][0],
        "EmbeddingBackward0": th.nn.Embedding(5, 2, padding_idx=0)(th.tensor([1, 2])).sum().grad_fn.next_functions[0][0],
    }
    for owner, names in _names("torch").items():
        node = nodes[owner]
        assert type(node).__name__ == owner
        assert _missing(node, names) == [], owner
    # the values the per-sample engine reads
    assert float(nodes["AddmmBackward0"]._saved_alpha) == 1.0
    assert nodes["EmbeddingBackward0"]._saved_indices.tolist() == [1, 2]
    assert int(nodes["EmbeddingBackward0"]._saved_padding_idx) == 0


def test_stable_baselines3():
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.policies import BaseModel

    env = make_vec_env("Pendulum-v1", n_envs=1)
    model = SAC("MlpPolicy", env, buffer_size=100, policy_kwargs=dict(net_arch=[8]))
    objects = {
        "OffPolicyAlgorithm": model,
        "BaseAlgorithm": model,
        "BaseModel": BaseModel,
        "EvalCallback": EvalCallback(env),
    }
    for owner, names in _names("stable_baselines3").items():
        assert _missing(objects[owner], names) == [], owner
    assert model._n_updates == 0


_ZOO_CHECK = """
import json, sys
from rl_zoo3.exp_manager import ExperimentManager
import inspect, rl_zoo3.enjoy, rl_zoo3.train
names = json.loads(sys.argv[1])
source = inspect.getsource(ExperimentManager)
missing = [n for n in names if not hasattr(ExperimentManager, n) and "self." + n not in source]
# register_zoo replaces these module attributes; MTExperimentManager's _TruthyIndex works around this condition
missing += [n for n, ok in (("rl_zoo3.train.ExperimentManager", hasattr(rl_zoo3.train, "ExperimentManager")),
                            ("rl_zoo3.enjoy.create_test_env", hasattr(rl_zoo3.enjoy, "create_test_env")),
                            ("if ... self.trial_id:", "and self.trial_id:" in source)) if not ok]
print(json.dumps(missing))
"""


def test_rl_zoo3():
    pytest.importorskip("rl_zoo3", reason="the zoo extra is not installed")
    names = _names("rl_zoo3")["ExperimentManager"]
    # rl_zoo3 patches Gymnasium on import: check it in a child process
    out = subprocess.run([sys.executable, "-c", _ZOO_CHECK, json.dumps(names)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_metaworld():
    pytest.importorskip("metaworld", reason="the metaworld extra is not installed")
    from mtgym.envs.metaworld.benchmarks import ALL_V3_ENVIRONMENTS

    env = ALL_V3_ENVIRONMENTS["reach-v3"]()
    try:
        assert _missing(env, _names("metaworld")["SawyerXYZEnv"]) == []
    finally:
        env.close()


def test_dm_control():
    pytest.importorskip("dm_control", reason="the dmc extra is not installed")
    from dm_control.suite import finger

    assert _missing(finger, _names("dm_control")["suite.<domain> module"]) == []


def test_optuna():
    import optuna.storages

    names = _names("optuna")
    assert _missing(optuna.storages, names.pop("optuna.storages module")) == []
    assert _missing(optuna.storages._heartbeat.BaseHeartbeat, names.pop("BaseHeartbeat")) == []
    assert names == {}
