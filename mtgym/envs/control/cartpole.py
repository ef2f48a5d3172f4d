"""Cart-pole whose gravity, masses, pole length and force vary with the task (mtenv/envs/control/)."""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces

from mtgym.core import MTObs
from mtgym.envs.control.physics_task import PhysicsTaskEnv


class MTCartPole(PhysicsTaskEnv):
    """
    Classic cart-pole (Euler integration, τ = 0.02) with task-dependent physics.

    ## Description
    The task is ``μ ∈ [-1, 1]^5``, mapped to gravity ``9.8 + 5μ0``, cart mass ``1 + 0.5μ1``, pole mass
    ``0.1 + 0.09μ2``, pole half-length ``0.5 + 0.3μ3`` and force magnitude ``10μ4`` (10 when ``μ4 == 0``; a negative
    force flips the meaning of the actions). ``μ = 0`` is the standard cart-pole.

    ## Action Space
    ``Discrete(2)``: push left or right.

    ## Observation Space
    ``env_obs``: ``[x, ẋ, θ, θ̇]`` (float32). ``task_obs``: ``Box(-1, 1, (5,))``, equal to μ.

    ## Rewards
    1 per step, including the failing step.

    ## Episode End
    Terminated when ``|x| > 2.4`` or ``|θ| > 12°``. The registered id truncates at 500 steps (the reference has no
    time limit).

    ## Version History
    * v0: port of mtenv's ``MTCartPole``; the env_obs is always an ndarray (the reference returned a list after step).

    :param task_state: an initial μ (``None``: sampled with the task RNG at the first reset)
    """

    tau = 0.02
    x_threshold = 2.4
    theta_threshold = 12 * 2 * math.pi / 360

    def __init__(self, task_state: Any = None):
        high = np.array(
            [self.x_threshold * 2, np.finfo(np.float32).max, self.theta_threshold * 2, np.finfo(np.float32).max],
            dtype=np.float32,
        )
        super().__init__(spaces.Discrete(2), spaces.Box(-high, high, dtype=np.float32), 5, task_state)
        self.state = np.zeros(4)

    def _set_physics(self, mu: np.ndarray) -> None:
        self.gravity = 9.8 + 5.0 * float(mu[0])
        self.masscart = 1.0 + 0.5 * float(mu[1])
        self.masspole = 0.1 + 0.09 * float(mu[2])
        self.length = 0.5 + 0.3 * float(mu[3])  # half the pole's length
        self.force_mag = 10.0 * float(mu[4]) if mu[4] != 0 else 10.0
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        self.state = self.np_random.uniform(-0.05, 0.05, 4)
        return self.make_obs(self.state.astype(np.float32)), {}

    def step(self, action: int) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        self._check_step(action)
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * xacc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc
        self.state = np.array([x, x_dot, theta, theta_dot])
        terminated = bool(abs(x) > self.x_threshold or abs(theta) > self.theta_threshold)
        return self.make_obs(self.state.astype(np.float32)), 1.0, terminated, False, {}
