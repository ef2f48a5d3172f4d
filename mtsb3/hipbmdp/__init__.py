"""HiP-BMDP (Zhang et al. 2020) on multi-task SAC, after mtrl's ``hipbmdp.Agent`` with the task encoder on."""

from mtsb3.hipbmdp.hipbmdp import DEFAULT_THETA_STRATEGIES, HiPBMDP
from mtsb3.hipbmdp.policies import (
    THETA_STRATEGIES,
    HiPBMDPPolicy,
    MultiInputPolicy,
    MultiTaskPolicy,
    ThetaModel,
    contrastive_theta_loss,
)

__all__ = [
    "DEFAULT_THETA_STRATEGIES",
    "THETA_STRATEGIES",
    "HiPBMDP",
    "HiPBMDPPolicy",
    "MultiInputPolicy",
    "MultiTaskPolicy",
    "ThetaModel",
    "contrastive_theta_loss",
]
