"""mtgym: multi-task environments (the MTEnv interface) as registered Gymnasium envs."""

from mtgym.core import FiniteTaskEnv, MTEnv, check_task_index
from mtgym.registration import register_envs

register_envs()

__version__ = "0.1.0"
__all__ = ["FiniteTaskEnv", "MTEnv", "__version__", "check_task_index", "register_envs"]
