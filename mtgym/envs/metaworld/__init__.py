"""
Meta-World v3 multi-task benchmarks (needs ``pip install mtgym[metaworld]``).

Registered ids (see :class:`~mtgym.envs.metaworld.env.MetaWorldMTEnv`):

* mtrl protocol: ``MT-MetaWorld-MT1-v0``, ``MT-MetaWorld-MT10-v0``, ``MT-MetaWorld-MT50-v0``;
* Meta-World+ protocol: ``MT-MetaWorldPlus-MT10-v0``, ``MT-MetaWorldPlus-MT25-v0``, ``MT-MetaWorldPlus-MT50-v0``.

Importing this package sets ``MUJOCO_GL=egl`` when it is unset and no display is present, so ``render_mode="rgb_array"``
works headless (Gymnasium's MuJoCo renderer would try GLFW first). An explicit ``MUJOCO_GL`` is always respected.
"""

import os
import sys

if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

from mtgym.versions import check_simulators

# before metaworld is first imported: an incompatible mujoco fails there with errors that name no version
check_simulators("metaworld")

from mtgym.envs.metaworld.benchmarks import (  # noqa: E402
    BENCHMARK_TASKS,
    N_GOALS,
    benchmark_goals,
    benchmark_task_names,
    generate_goals,
    task_goal_seeds,
)
from mtgym.envs.metaworld.env import MetaWorldMTEnv  # noqa: E402
from mtgym.envs.metaworld.task_env import MetaWorldTaskWrapper, make_task_env  # noqa: E402

__all__ = [
    "BENCHMARK_TASKS",
    "N_GOALS",
    "MetaWorldMTEnv",
    "MetaWorldTaskWrapper",
    "benchmark_goals",
    "benchmark_task_names",
    "generate_goals",
    "make_task_env",
    "task_goal_seeds",
]
