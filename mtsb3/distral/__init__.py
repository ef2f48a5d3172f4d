from mtsb3.distral.distral import Distral, gaussian_kl
from mtsb3.distral.policies import DistralPolicy, MlpPolicy, MultiInputPolicy, MultiTaskPolicy

__all__ = ["Distral", "DistralPolicy", "MlpPolicy", "MultiInputPolicy", "MultiTaskPolicy", "gaussian_kl"]
