"""Classic control tasks whose physics vary with a continuous task vector (mtenv/envs/control/)."""

from mtgym.envs.control.acrobot import MTAcrobot
from mtgym.envs.control.cartpole import MTCartPole

__all__ = ["MTAcrobot", "MTCartPole"]
