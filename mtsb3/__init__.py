"""mtsb3: multi-task RL algorithms (MTRL) as Stable-Baselines3 subclasses and feature extractors."""

import mtgym  # noqa: F401  (registers the env ids that the algorithms are usually trained on)
from mtsb3.common.buffers import TaskBalancedReplayBuffer
from mtsb3.common.callbacks import MultiTaskEvalCallback
from mtsb3.common.env_util import make_mt_vec_env
from mtsb3.common.resume import RunCheckpointCallback
from mtsb3.common.rollout_metrics import PerTaskRolloutCallback
from mtsb3.common.task_encoder import TaskEncoder
from mtsb3.deepmdp import DeepMDP
from mtsb3.distral import Distral
from mtsb3.hipbmdp import HiPBMDP
from mtsb3.mtsac import MTSAC
from mtsb3.paco import PaCo
from mtsb3.sac_ae import SACAE

__version__ = "0.1.0"
__all__ = ["__version__", "make_mt_vec_env"]
__all__ += ["MTSAC", "MultiTaskEvalCallback", "TaskBalancedReplayBuffer", "TaskEncoder"]
__all__ += ["SACAE", "DeepMDP", "HiPBMDP"]
__all__ += ["Distral"]
__all__ += ["PerTaskRolloutCallback", "RunCheckpointCallback"]
__all__ += ["PaCo"]
