"""The ``--algo`` names that mtsb3 adds to the zoo, and which of them this install can run."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from mtsb3.zoo.samplers import (
    sample_brc_params,
    sample_cagrad_params,
    sample_distral_params,
    sample_encoder_params,
    sample_famo_params,
    sample_gradnorm_params,
    sample_moore_params,
    sample_mtsac_params,
    sample_paco_params,
    sample_pcgrad_params,
    sample_pixel_params,
    sample_uw_params,
)

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


class ZooAlgo(NamedTuple):
    """How an ``--algo`` name maps onto mtsb3."""

    #: ``"module:Class"`` of the algorithm
    cls: str
    #: the Optuna sampler of its family
    sampler: Callable[..., dict[str, Any]]
    #: further ``"module:attribute"`` the method needs (e.g. its encoder); the name is offered only if all import
    requires: tuple[str, ...] = ()


#: every named method (the mtrl docs, Baselines > Metaworld and the mtsb3 issues); each has its preset in
# ``hyperparams/<name>.yml``
ZOO_ALGOS: dict[str, ZooAlgo] = {
    "mtsac": ZooAlgo("mtsb3:MTSAC", sample_mtsac_params),
    "mtsac_te": ZooAlgo("mtsb3:MTSAC", sample_mtsac_params),
    "mtmhsac": ZooAlgo("mtsb3:MTSAC", sample_mtsac_params),
    "film": ZooAlgo("mtsb3:MTSAC", sample_encoder_params, ("mtsb3.recipes:sac_film",)),
    "softmod": ZooAlgo("mtsb3:MTSAC", sample_encoder_params, ("mtsb3.recipes:soft_modularization",)),
    "care": ZooAlgo("mtsb3:MTSAC", sample_encoder_params, ("mtsb3.recipes:care",)),
    "pcgrad": ZooAlgo("mtsb3:MTSAC", sample_pcgrad_params, ("mtsb3.common.gradients:PCGrad",)),
    "gradnorm": ZooAlgo("mtsb3:MTSAC", sample_gradnorm_params, ("mtsb3.common.gradients:GradNorm",)),
    "cagrad": ZooAlgo("mtsb3:MTSAC", sample_cagrad_params, ("mtsb3.common.gradients:CAGrad",)),
    "distral": ZooAlgo("mtsb3.distral:Distral", sample_distral_params),
    "sacae": ZooAlgo("mtsb3.sac_ae:SACAE", sample_pixel_params),
    "deepmdp": ZooAlgo("mtsb3.deepmdp:DeepMDP", sample_pixel_params),
    "hipbmdp": ZooAlgo("mtsb3.hipbmdp:HiPBMDP", sample_pixel_params),
    "moore": ZooAlgo("mtsb3:MTSAC", sample_moore_params, ("mtsb3.recipes:moore",)),
    "paco": ZooAlgo("mtsb3.paco:PaCo", sample_paco_params),
    "brc": ZooAlgo("mtsb3:MTSAC", sample_brc_params, ("mtsb3.recipes:brc",)),
    "famo": ZooAlgo("mtsb3:MTSAC", sample_famo_params, ("mtsb3.common.gradients:FAMO",)),
    "uw": ZooAlgo("mtsb3:MTSAC", sample_uw_params, ("mtsb3.common.gradients:UncertaintyWeighting",)),
}


def require_zoo(*modules: str) -> None:
    """
    Import the packages of the ``zoo`` extra that a zoo entry point needs (``rl_zoo3``, ``optuna``).

    :param modules: the modules to import
    :raises ImportError: naming the extra, instead of a bare ``ModuleNotFoundError`` from deep inside a command
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ImportError(f'The rl-zoo integration needs {module} ({e}): pip install "mtgym[zoo]"') from e


def _import_attr(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _resolve(name: str) -> tuple[type[BaseAlgorithm] | None, str]:
    spec = ZOO_ALGOS[name]
    try:
        for required in spec.requires:
            _import_attr(required)
        return _import_attr(spec.cls), ""
    except (ImportError, AttributeError) as e:
        return None, f"{type(e).__name__}: {e}"


def available_algos() -> dict[str, type[BaseAlgorithm]]:
    """:return: ``--algo`` name -> class, for every named method whose class (and requirements) import"""
    return {name: cls for name in ZOO_ALGOS if (cls := _resolve(name)[0]) is not None}


def unavailable_algos() -> dict[str, str]:
    """:return: ``--algo`` name -> why it is not available in this install"""
    return {name: why for name in ZOO_ALGOS if _resolve(name)[0] is None and (why := _resolve(name)[1])}
