"""``StickyObservation``: with some probability, return a stale observation instead of the newest
(mtenv/envs/hipbmdp/env.py)."""

from __future__ import annotations

import copy
from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.core import ActType, ObsType
from gymnasium.utils import seeding

from mtgym.wrappers.multi_env import derive_seed

__all__ = ["StickyObservation"]

#: Mixed into the reset seed so that the sticky draws never replay the inner env's own ``np_random`` stream.
_STICKY_SEED_SALT = 0x571C


class StickyObservation(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    """
    Keep the last ``last_k + 1`` observations; after each step, with probability ``sticky_probability``, return one of
    the ``last_k`` older ones (chosen uniformly) instead of the newest.

    This models observation delay in mtenv's HiP-BMDP envs (mtenv/envs/hipbmdp/env.py), where it is applied after frame
    stacking. On ``reset`` the buffer is filled with the reset observation, and the reset observation itself is returned.

    The draws come from this wrapper's own generator. ``reset(seed=s)`` seeds it with a seed derived from ``s``
    (so equal seeds give equal observation sequences, and the inner env's RNG stream is left untouched); used
    before any seeded reset, it is seeded from OS entropy like Gymnasium's ``np_random``. The reference used Python's
    global ``random`` (not reproducible) and its constructor passed ``self`` twice to ``gym.Wrapper.__init__``, so it
    could not be built at all (README, "Differences from mtrl and mtenv").

    Example::

        >>> import gymnasium as gym
        >>> env = StickyObservation(gym.make("CartPole-v1"), sticky_probability=1.0, last_k=1)
        >>> obs0, _ = env.reset(seed=0)
        >>> obs1, *_ = env.step(0)  # always stale with p = 1: the previous (here the reset) observation
        >>> bool((obs1 == obs0).all())
        True

    Change logs:
     * v0 - Port of mtenv's ``StickyObservation``: working constructor, seeded generator instead of ``random``.

    :param env: the env to wrap (any observation space)
    :param sticky_probability: the probability of returning a stale observation, in ``[0, 1]``
    :param last_k: how many older observations can be returned, ``>= 1``
    """

    def __init__(self, env: gym.Env[ObsType, ActType], sticky_probability: float, last_k: int):
        if not 0.0 <= sticky_probability <= 1.0:
            raise ValueError(f"sticky_probability must be in [0, 1], got {sticky_probability}")
        if not isinstance(last_k, (int, np.integer)) or isinstance(last_k, bool) or last_k < 1:
            raise ValueError(f"last_k must be an integer >= 1, got {last_k!r}")
        gym.utils.RecordConstructorArgs.__init__(self, sticky_probability=sticky_probability, last_k=last_k)
        gym.Wrapper.__init__(self, env)
        self.sticky_probability = float(sticky_probability)
        self.last_k = int(last_k)
        self.observations: deque[ObsType] = deque(maxlen=self.last_k + 1)
        self._sticky_rng: np.random.Generator | None = None

    @property
    def sticky_rng(self) -> np.random.Generator:
        """The generator that decides when and how far back an observation sticks."""
        if self._sticky_rng is None:
            self._sticky_rng, _ = seeding.np_random()
        return self._sticky_rng

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsType, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._sticky_rng, _ = seeding.np_random(derive_seed(seed, _STICKY_SEED_SALT))
        for _ in range(self.last_k + 1):
            self.observations.append(copy.deepcopy(obs))
        return obs, info

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.observations.append(copy.deepcopy(obs))
        if self.sticky_probability > 0 and self.sticky_rng.random() < self.sticky_probability:
            # observations[0 .. last_k - 1] are the older entries, observations[-1] the newest
            obs = copy.deepcopy(self.observations[int(self.sticky_rng.integers(self.last_k))])
        return obs, reward, terminated, truncated, info
