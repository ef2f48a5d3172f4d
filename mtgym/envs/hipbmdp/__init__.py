"""
HiP-BMDP multi-task envs on the DeepMind Control suite (mtenv/envs/hipbmdp/env.py): four families, each with ten XML variants
of one physical parameter, generated at run time from the model XML of the installed dm_control.

Importing this package sets ``MUJOCO_GL=egl`` when it is unset and no display is present, so pixel observations
render headless. This must happen before dm_control or mujoco pick their GL backend, i.e. before they are first
imported; an explicit ``MUJOCO_GL`` is always respected.
"""

import os
import sys

if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

from mtgym.envs.hipbmdp.dmc_env import DMCEnv
from mtgym.envs.hipbmdp.hipbmdp import (
    CheetahRunVaryTorsoLengthEnv,
    FingerSpinVarySizeEnv,
    HiPBMDPEnv,
    WalkerWalkVaryFrictionEnv,
    WalkerWalkVaryLenEnv,
)
from mtgym.envs.hipbmdp.variants import (
    CHEETAH_TORSO_LENGTH,
    FINGER_SIZE,
    TASK_SPLITS,
    WALKER_FRICTION,
    WALKER_LEN,
    XMLVariant,
)

__all__ = [
    "CHEETAH_TORSO_LENGTH",
    "FINGER_SIZE",
    "TASK_SPLITS",
    "WALKER_FRICTION",
    "WALKER_LEN",
    "CheetahRunVaryTorsoLengthEnv",
    "DMCEnv",
    "FingerSpinVarySizeEnv",
    "HiPBMDPEnv",
    "WalkerWalkVaryFrictionEnv",
    "WalkerWalkVaryLenEnv",
    "XMLVariant",
]
