"""SAC-AE: multi-task SAC with a pixel auto-encoder (Yarats et al. 2019), after mtrl's ``sac_ae.Agent``."""

from mtsb3.sac_ae.policies import MultiInputPolicy, MultiTaskPolicy, SACAEPolicy
from mtsb3.sac_ae.sac_ae import SACAE, reconstruction_loss

__all__ = ["SACAE", "MultiInputPolicy", "MultiTaskPolicy", "SACAEPolicy", "reconstruction_loss"]
