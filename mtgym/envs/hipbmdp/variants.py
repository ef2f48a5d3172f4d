"""
The four HiP-BMDP task families: which element of the dm_control suite XML varies, and its ten values
(mtenv/envs/hipbmdp/env.py).

The reference (mtenv's vendored ``local_dm_control_suite``) ships ten edited XML files per family,
``{domain}_{family}_{1..10}.xml``. We generate the same edits at run time from the XML that ships with the installed
dm_control, so no copies are vendored and the rest of the model always matches the installed suite.
"""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

#: Number of XML variants (tasks) per family; task ``i`` uses variant ``i + 1``.
N_VARIANTS = 10

#: Train / interpolation / extrapolation task indices (0-based, ``task i`` = XML variant ``i + 1``). This split is
#: mtrl's ``env/dmcontrol-finger-spin-distribution-v0.yaml``. The reference defines it for Finger only; every family's
#: values increase with the task index, so the same indices give the same structure everywhere: the two middle
#: values of the eight used ones are interpolation, the two outer ones extrapolation. Tasks 0 and 1 are in no split.
TASK_SPLITS: dict[str, list[int]] = {"train": [3, 4, 7, 8], "interpolation": [5, 6], "extrapolation": [2, 9]}


def import_dm_control(module: str) -> ModuleType:
    """
    Import ``dm_control.<module>``; dm_control is an optional dependency, imported only when an env is built.

    :param module: the submodule, e.g. ``"suite"`` or ``"rl.control"``
    :raises ImportError: naming the extra that installs it, when dm_control is missing
    """
    try:
        return importlib.import_module(f"dm_control.{module}")
    except ImportError as e:
        raise ImportError(f'The HiP-BMDP envs need dm_control ({e}): pip install "mtgym[dmc]"') from e


def _set_component(element: ET.Element, attribute: str, index: int, value: float) -> None:
    """Set one whitespace-separated component of a vector attribute, e.g. the x radius in ``size=".025 .03 .025"``."""
    components = element.attrib[attribute].split()
    components[index] = f"{value:g}"
    element.set(attribute, " ".join(components))


def _find(root: ET.Element, path: str) -> ET.Element:
    element = root.find(path)
    if element is None:  # the installed dm_control changed its model; fail loudly rather than build the base model
        raise RuntimeError(f"dm_control's model has no element {path!r}; this dm_control version is not supported")
    return element


def _finger_size(root: ET.Element, value: float) -> None:
    # The touch sites (touchtop / touchbottom) take their ellipsoid size from the "finger" default class.
    _set_component(_find(root, "./default/default[@class='finger']/site"), "size", 0, value)


def _cheetah_torso_length(root: ET.Element, value: float) -> None:
    _find(root, ".//geom[@name='torso']").set("fromto", f"{-value:g} 0 0 {value:g} 0 0")


def _walker_friction(root: ET.Element, value: float) -> None:
    # The top-level default geom: every walker geom and the floor inherit this sliding friction.
    _set_component(_find(root, "./default/geom"), "friction", 0, value)


def _walker_left_foot_len(root: ET.Element, value: float) -> None:
    _set_component(_find(root, ".//geom[@name='left_foot']"), "size", 1, value)


def _read_site_x_radius(physics: Any) -> float:
    sizes = physics.named.model.site_size[["touchtop", "touchbottom"], 0]
    return _unique(sizes)


def _read_torso_half_length(physics: Any) -> float:
    return float(physics.named.model.geom_size["torso", 1])


def _read_sliding_friction(physics: Any) -> float:
    return _unique(physics.model.geom_friction[:, 0])


def _read_left_foot_half_length(physics: Any) -> float:
    return float(physics.named.model.geom_size["left_foot", 1])


def _unique(values: np.ndarray) -> float:
    if not np.allclose(values, values[0]):
        raise RuntimeError(f"Expected one shared value, got {values}")
    return float(values[0])


@dataclass(frozen=True)
class XMLVariant:
    """
    One HiP-BMDP family: a dm_control domain/task and one XML element that takes ten values.

    :param name: the reference's XML family name (files ``{domain}_{name}_{i}.xml``)
    :param domain: dm_control suite domain (``finger``, ``cheetah``, ``walker``)
    :param task: dm_control suite task of that domain
    :param parameter: human-readable name of the varied quantity
    :param values: the ten values, for XML variants 1..10
    :param edit: writes one value into the parsed model XML
    :param read: reads the value back from a compiled ``physics`` (what MuJoCo actually simulates)
    """

    name: str
    domain: str
    task: str
    parameter: str
    values: tuple[float, ...]
    edit: Callable[[ET.Element, float], None]
    read: Callable[[Any], float]

    @property
    def suite_module(self) -> ModuleType:
        """The dm_control suite module of the domain (imported lazily: dm_control is an optional dependency)."""
        return getattr(import_dm_control("suite"), self.domain)

    @property
    def task_names(self) -> list[str]:
        """``["{name}_1", ..., "{name}_10"]``, the reference's XML ids."""
        return [f"{self.name}_{i + 1}" for i in range(len(self.values))]

    def model_xml(self, index: int) -> tuple[str, dict[str, bytes]]:
        """
        :param index: the task index (XML variant ``index + 1``)
        :return: the edited model XML string and the suite's asset dict, for ``Physics.from_xml_string``
        """
        xml, assets = self.suite_module.get_model_and_assets()
        root = ET.fromstring(xml)
        self.edit(root, self.values[index])
        return ET.tostring(root, encoding="unicode"), assets


def _values(first: float, step: float) -> tuple[float, ...]:
    # Rounded so the XML holds "0.3", not "0.30000000000000004".
    return tuple(round(first + step * i, 6) for i in range(N_VARIANTS))


FINGER_SIZE = XMLVariant(
    "size",
    "finger",
    "spin",
    "x radius of the finger touch-sensor sites",
    _values(0.025, 0.025),
    _finger_size,
    _read_site_x_radius,
)
CHEETAH_TORSO_LENGTH = XMLVariant(
    "torso_length",
    "cheetah",
    "run",
    "torso capsule half-length L (fromto = -L..L along x)",
    _values(0.5, 0.1),
    _cheetah_torso_length,
    _read_torso_half_length,
)
WALKER_FRICTION = XMLVariant(
    "friction", "walker", "walk", "sliding friction of every geom", _values(0.7, 0.1), _walker_friction, _read_sliding_friction
)
WALKER_LEN = XMLVariant(
    "len",
    "walker",
    "walk",
    "half-length of the left foot capsule",
    _values(0.08, 0.01),
    _walker_left_foot_len,
    _read_left_foot_half_length,
)
