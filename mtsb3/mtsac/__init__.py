"""Multi-task SAC (mtrl's MT-SAC family) as a subclass of SB3's SAC."""

from mtsb3.mtsac.mtsac import MTSAC
from mtsb3.mtsac.policies import MlpPolicy, MTSACPolicy, MultiInputPolicy, MultiTaskPolicy

__all__ = ["MTSAC", "MTSACPolicy", "MlpPolicy", "MultiInputPolicy", "MultiTaskPolicy"]
