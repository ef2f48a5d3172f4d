"""
Versions of the packages a result depends on, and the simulator versions this project supports.

Meta-World and DeepMind Control results are not comparable across physics versions (a MuJoCo release changes contact
dynamics; metaworld 3.0.0 crashes under mujoco 4 with a broadcast error deep in ``reset_mocap_welds``). So:

* :func:`get_versions` collects the versions that matter, in the spirit of SB3's ``get_system_info``; they are stored
  in every checkpoint and zoo run folder and printed by ``python -m mtgym`` for bug reports;
* :func:`check_simulators` runs before a Meta-World or HiP-BMDP env is built and raises
  :class:`IncompatibleSimulatorError`, naming the installed and supported versions and the pip command that fixes it;
* :func:`simulator_differences` and :func:`warn_if_simulators_differ` compare two version records.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import warnings
from collections.abc import Mapping

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

#: distribution names whose versions are recorded with every result, in print order
RECORDED_PACKAGES = (
    "mtgym",
    "gymnasium",
    "stable-baselines3",
    "sb3-contrib",
    "torch",
    "numpy",
    "metaworld",
    "mujoco",
    "dm_control",
    "rl_zoo3",
    "optuna",
)

#: simulator packages whose versions change physics; results made with other versions are flagged
PHYSICS_PACKAGES = ("metaworld", "mujoco", "dm_control")

#: the tested ranges of each extra's simulators (the same specifiers as pyproject.toml, checked by the tests)
SUPPORTED_SIMULATORS: dict[str, dict[str, str]] = {
    "metaworld": {"metaworld": ">=3.1.1,<3.2", "mujoco": ">=3.3.0,<3.3.1"},
    "dmc": {"dm_control": ">=1.0.28,<1.0.29", "mujoco": ">=3.3.0,<3.3.1"},
}

#: set to 1 to build envs on untested simulator versions anyway (results may differ from the tested physics)
SKIP_CHECK_VARIABLE = "MTGYM_SKIP_VERSION_CHECK"


class IncompatibleSimulatorError(ImportError):
    """The installed simulator versions are outside the tested ranges of an extra."""


def installed_version(distribution: str) -> str | None:
    """
    :param distribution: a distribution name (``"mujoco"``, ``"dm_control"``)
    :return: its installed version, or ``None`` when it is not installed
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def get_versions() -> dict[str, str | None]:
    """:return: ``{"python": ..., "platform": ..., <package>: version or None}`` for :data:`RECORDED_PACKAGES`."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    versions.update({name: installed_version(name) for name in RECORDED_PACKAGES})
    return versions


def format_versions(versions: Mapping[str, str | None] | None = None) -> str:
    """
    :param versions: a record from :func:`get_versions` (the current one by default)
    :return: one ``name: version`` line per entry, ``-`` for a package that is not installed
    """
    versions = get_versions() if versions is None else versions
    return "\n".join(f"{name}: {version or '-'}" for name, version in versions.items())


def _in_range(version: str | None, specifier: str) -> bool:
    if version is None:
        return False
    try:
        return Version(version) in SpecifierSet(specifier)
    except InvalidVersion:
        return False


def check_simulators(extra: str) -> None:
    """
    Raise :class:`IncompatibleSimulatorError` when the simulators of ``extra`` are missing or outside their tested
    ranges. Call it before the simulator is first imported. ``MTGYM_SKIP_VERSION_CHECK=1`` turns the error into a
    warning, for users who knowingly try other versions.

    :param extra: ``"metaworld"`` (Meta-World ids) or ``"dmc"`` (HiP-BMDP ids)
    """
    supported = SUPPORTED_SIMULATORS[extra]
    installed = {name: installed_version(name) for name in supported}
    if all(_in_range(installed[name], spec) for name, spec in supported.items()):
        return
    found = ", ".join(f"{name} {version or '(not installed)'}" for name, version in installed.items())
    wanted = ", ".join(f"{name}{spec}" for name, spec in supported.items())
    pins = " ".join(f'"{name}{spec}"' for name, spec in supported.items())
    message = (
        f"mtgym's {extra} envs need {wanted}, but found {found}. Other versions change the physics or crash "
        f'(e.g. metaworld 3.0.0 under mujoco 4). Fix: pip install "mtgym[{extra}]" (or pip install {pins}). '
        f"Set {SKIP_CHECK_VARIABLE}=1 to try the installed versions anyway."
    )
    if os.environ.get(SKIP_CHECK_VARIABLE) == "1":
        warnings.warn(message, stacklevel=2)
        return
    raise IncompatibleSimulatorError(message)


def simulator_differences(saved: Mapping[str, str | None] | None, current: Mapping[str, str | None]) -> dict[str, tuple]:
    """
    :param saved: a version record stored with a result (``None`` for old results that have none)
    :param current: the record to compare with
    :return: ``{package: (saved version, current version)}`` for the physics packages that differ
    """
    if not saved:
        return {}
    return {
        name: (saved.get(name), current.get(name))
        for name in PHYSICS_PACKAGES
        if name in saved and saved.get(name) != current.get(name)
    }


def warn_if_simulators_differ(saved: Mapping[str, str | None] | None, what: str, current: Mapping | None = None) -> bool:
    """
    Warn when ``saved`` was made with other simulator versions than ``current`` (the installed ones by default).

    :param saved: the version record of a checkpoint or run
    :param what: what it belongs to, for the message (``"checkpoint model.zip"``)
    :param current: the record to compare with
    :return: whether a warning was issued
    """
    differences = simulator_differences(saved, get_versions() if current is None else current)
    if differences:
        listed = ", ".join(f"{name} {old} vs {new}" for name, (old, new) in differences.items())
        warnings.warn(
            f"{what} was made with other simulator versions ({listed}); its results are not comparable with runs on "
            "other physics versions",
            stacklevel=2,
        )
    return bool(differences)
