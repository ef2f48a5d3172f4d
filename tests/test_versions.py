"""Package versions: the supported simulator ranges, the incompatible-simulator error and the version records."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import mtgym.versions as versions
from mtgym.versions import (
    IncompatibleSimulatorError,
    check_simulators,
    format_versions,
    get_versions,
    simulator_differences,
    warn_if_simulators_differ,
)

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")
ROOT = Path(__file__).resolve().parent.parent


def _extra_specifiers(extra: str) -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    return {Requirement(r).name: str(Requirement(r).specifier) for r in extras[extra] if not r.startswith("mtgym")}


@pytest.mark.parametrize("extra", ["metaworld", "dmc"])
def test_supported_ranges_are_pyprojects(extra):
    declared = _extra_specifiers(extra)
    for name, spec in versions.SUPPORTED_SIMULATORS[extra].items():
        assert set(declared[name].split(",")) == set(spec.split(",")), name


def test_every_dependency_has_an_upper_bound():
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group if not r.startswith("mtgym")]
    for requirement in map(Requirement, project["dependencies"] + extras):
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & {"<", "<=", "==", "~="}, f"{requirement} has no upper bound"
        assert operators & {">", ">=", "==", "~="}, f"{requirement} has no lower bound"


def test_installed_simulators_pass_the_check():
    check_simulators("metaworld")
    check_simulators("dmc")


def _fake(monkeypatch, **fake: str | None) -> None:
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version", lambda name: fake[name] if name in fake else real(name))


@pytest.mark.parametrize(
    "extra, fake, found",
    [
        ("metaworld", {"mujoco": "4.0.0"}, "mujoco 4.0.0"),
        ("metaworld", {"metaworld": "3.0.0", "mujoco": "4.0.0"}, "metaworld 3.0.0, mujoco 4.0.0"),
        ("metaworld", {"metaworld": None}, "metaworld (not installed)"),
        ("dmc", {"dm_control": "1.0.50", "mujoco": "3.17.0"}, "dm_control 1.0.50, mujoco 3.17.0"),
    ],
)
def test_incompatible_simulators_raise_one_clear_error(monkeypatch, extra, fake, found):
    _fake(monkeypatch, **fake)
    monkeypatch.delenv(versions.SKIP_CHECK_VARIABLE, raising=False)
    with pytest.raises(IncompatibleSimulatorError) as info:
        check_simulators(extra)
    message = str(info.value)
    assert found in message
    assert "mujoco>=3.3.0,<3.3.1" in message  # the supported versions
    assert f'pip install "mtgym[{extra}]"' in message  # the fix
    assert isinstance(info.value, ImportError)


def test_skip_variable_turns_the_error_into_a_warning(monkeypatch):
    _fake(monkeypatch, mujoco="4.0.0")
    monkeypatch.setenv(versions.SKIP_CHECK_VARIABLE, "1")
    with pytest.warns(UserWarning, match="mujoco 4.0.0"):
        check_simulators("metaworld")


def _fake_distribution(folder: Path, name: str, version: str) -> None:
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.mark.parametrize(
    "env_id, name, version",
    [("MT-MetaWorld-MT10-v0", "mujoco", "4.0.0"), ("MT-HiPBMDP-Finger-Spin-vary-size-v0", "dm_control", "1.0.50")],
)
def test_gym_make_with_an_incompatible_simulator_names_the_fix(tmp_path, env_id, name, version):
    # a dist-info folder ahead on sys.path is what importlib.metadata then reports: the installed version is faked
    # without touching the real packages, and the check must fire before the simulator is imported
    _fake_distribution(tmp_path, name, version)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop(versions.SKIP_CHECK_VARIABLE, None)
    code = f"import gymnasium as gym, mtgym; gym.make({env_id!r})"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("mtgym.versions.IncompatibleSimulatorError:"), result.stderr[-2000:]
    assert f"{name} {version}" in last_line and "pip install" in last_line


def test_get_versions_records_the_key_packages():
    record = get_versions()
    for name in ("python", "mtgym", "gymnasium", "stable-baselines3", "torch", "metaworld", "mujoco", "dm_control"):
        assert record[name], name
    assert record["rl_zoo3"] and record["optuna"]
    assert record["mujoco"] == "3.3.0"
    text = format_versions(record)
    assert "mujoco: 3.3.0" in text.splitlines()


def test_python_m_mtgym_prints_the_versions():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-m", "mtgym"], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert f"mujoco: {get_versions()['mujoco']}" in result.stdout.splitlines()
    assert result.stderr == ""


def test_simulator_differences_and_warning():
    current = {"mujoco": "3.3.0", "metaworld": "3.1.1", "torch": "2.13.0"}
    assert simulator_differences(None, current) == {}
    assert simulator_differences(dict(current, torch="2.0"), current) == {}  # only physics packages count
    saved = dict(current, mujoco="3.17.0")
    assert simulator_differences(saved, current) == {"mujoco": ("3.17.0", "3.3.0")}
    with pytest.warns(UserWarning, match=r"Run x was made with other simulator versions \(mujoco 3.17.0 vs 3.3.0\)"):
        assert warn_if_simulators_differ(saved, "Run x", current)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_simulators_differ(current, "Run y", current)
