"""Classic control tasks whose physics vary with a continuous task vector (spec §A6)."""

from mtgym.envs.control.acrobot import MTAcrobot
from mtgym.envs.control.cartpole import MTCartPole

__all__ = ["MTAcrobot", "MTCartPole"]
