"""Wrappers for multi-task envs (one per module) and the reward/observation wrappers used by the benchmarks."""

from mtgym.wrappers.env_to_mtenv import EnvToMTEnv
from mtgym.wrappers.episode_success import EpisodeSuccess
from mtgym.wrappers.flatten_task_observation import FlattenTaskObservation
from mtgym.wrappers.frame_stack import FrameStack
from mtgym.wrappers.multi_env import MultiEnvWrapper
from mtgym.wrappers.multi_task import MultiTask
from mtgym.wrappers.n_tasks import NTasks
from mtgym.wrappers.n_tasks_id import NTasksId
from mtgym.wrappers.normalize_reward import NormalizeReward
from mtgym.wrappers.normalized_env import NormalizedEnv
from mtgym.wrappers.sample_random_task import SampleRandomTask
from mtgym.wrappers.sticky_observation import StickyObservation

__all__ = [
    "EnvToMTEnv",
    "EpisodeSuccess",
    "FlattenTaskObservation",
    "FrameStack",
    "MultiEnvWrapper",
    "MultiTask",
    "NTasks",
    "NTasksId",
    "NormalizeReward",
    "NormalizedEnv",
    "SampleRandomTask",
    "StickyObservation",
]
