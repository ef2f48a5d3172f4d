"""DeepMDP (Gelada et al. 2019) on multi-task SAC, after mtrl's ``deepmdp.Agent`` (pixel and state variants)."""

from mtsb3.deepmdp.deepmdp import DeepMDP
from mtsb3.deepmdp.policies import (
    DeepMDPPolicy,
    DeterministicTransitionModel,
    MultiInputPolicy,
    MultiTaskPolicy,
    ProbabilisticTransitionModel,
    RewardDecoder,
    make_transition_model,
    transition_loss,
)

__all__ = [
    "DeepMDP",
    "DeepMDPPolicy",
    "DeterministicTransitionModel",
    "MultiInputPolicy",
    "MultiTaskPolicy",
    "ProbabilisticTransitionModel",
    "RewardDecoder",
    "make_transition_model",
    "transition_loss",
]
