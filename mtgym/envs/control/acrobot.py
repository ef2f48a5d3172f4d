"""Acrobot whose link lengths, masses and torque direction vary with the task (mtenv/envs/control/)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces

from mtgym.core import MTObs
from mtgym.envs.control.physics_task import PhysicsTaskEnv


def _wrap(x: float) -> float:
    """Wrap an angle to [-π, π]."""
    return (x + np.pi) % (2 * np.pi) - np.pi


class MTAcrobot(PhysicsTaskEnv):
    """
    RLPy acrobot ("book" dynamics, dt = 0.2, RK4) with task-dependent physics.

    ## Description
    The task is ``μ ∈ [-1, 1]^7``: link length 1 ``1 + 0.5μ0``, link length 2 ``1 + 0.5μ1``, link masses
    ``1 + 0.5μ2`` and ``1 + 0.5μ3``; ``μ4, μ5`` are unused; ``μ6 > 0`` maps actions to torques ``[-1, 0, +1]``, else
    ``[+1, 0, -1]``. Centres of mass are at 0.5 and moments of inertia 1.0. As in the reference, link length 2 does
    not enter the dynamics or the goal test.

    ## Action Space
    ``Discrete(3)``.

    ## Observation Space
    ``env_obs``: ``[cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2]``. ``task_obs``: ``Box(-1, 1, (7,))``, equal to μ. The
    reference declared a 5-D task space for its 7-D task vector (README, "Differences from mtrl and mtenv"); here the space
    matches the vector.

    ## Rewards
    -1 per step, 0 at the terminal step.

    ## Episode End
    Terminated when ``-cos θ1 - cos(θ1 + θ2) > 1``. The registered id truncates at 500 steps.

    :param task_state: an initial μ (``None``: sampled with the task RNG at the first reset)
    """

    dt = 0.2
    max_vel_1 = 4 * np.pi
    max_vel_2 = 9 * np.pi
    link_com_pos = 0.5
    link_moi = 1.0

    def __init__(self, task_state: Any = None):
        # The reference clips velocities to ±5π and ±11π (mtenv/envs/control/) but declared ±4π/±9π bounds; we clip to the
        # declared bounds so that observations always lie inside the observation space.
        high = np.array([1.0, 1.0, 1.0, 1.0, self.max_vel_1, self.max_vel_2], dtype=np.float32)
        super().__init__(spaces.Discrete(3), spaces.Box(-high, high, dtype=np.float32), 7, task_state)
        self.state = np.zeros(4)

    def _set_physics(self, mu: np.ndarray) -> None:
        self.link_length_1 = 1.0 + 0.5 * float(mu[0])
        self.link_length_2 = 1.0 + 0.5 * float(mu[1])
        self.link_mass_1 = 1.0 + 0.5 * float(mu[2])
        self.link_mass_2 = 1.0 + 0.5 * float(mu[3])
        self.torques = np.array([-1.0, 0.0, 1.0]) if mu[6] > 0 else np.array([1.0, 0.0, -1.0])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[MTObs, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        self.state = self.np_random.uniform(-0.1, 0.1, 4)
        return self.make_obs(self._env_obs()), {}

    def step(self, action: int) -> tuple[MTObs, SupportsFloat, bool, bool, dict[str, Any]]:
        self._check_step(action)
        torque = self.torques[int(action)]
        s = self._rk4(np.append(self.state, torque))
        s[0], s[1] = _wrap(s[0]), _wrap(s[1])
        s[2] = np.clip(s[2], -self.max_vel_1, self.max_vel_1)
        s[3] = np.clip(s[3], -self.max_vel_2, self.max_vel_2)
        self.state = s
        terminated = bool(-np.cos(s[0]) - np.cos(s[1] + s[0]) > 1.0)
        return self.make_obs(self._env_obs()), 0.0 if terminated else -1.0, terminated, False, {}

    def _env_obs(self) -> np.ndarray:
        t1, t2, v1, v2 = self.state
        return np.array([np.cos(t1), np.sin(t1), np.cos(t2), np.sin(t2), v1, v2], dtype=np.float32)

    def _dsdt(self, s_augmented: np.ndarray) -> np.ndarray:
        m1, m2, l1 = self.link_mass_1, self.link_mass_2, self.link_length_1
        lc1 = lc2 = self.link_com_pos
        i1 = i2 = self.link_moi
        g = 9.8
        theta1, theta2, dtheta1, dtheta2, a = s_augmented
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * np.cos(theta2)) + i1 + i2
        d2 = m2 * (lc2**2 + l1 * lc2 * np.cos(theta2)) + i2
        phi2 = m2 * lc2 * g * np.cos(theta1 + theta2 - np.pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2**2 * np.sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * np.sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * np.cos(theta1 - np.pi / 2)
            + phi2
        )
        # "book" dynamics (Sutton & Barto), as RLPy and the reference
        ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * np.sin(theta2) - phi2) / (m2 * lc2**2 + i2 - d2**2 / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return np.array([dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0])

    def _rk4(self, y0: np.ndarray) -> np.ndarray:
        dt = self.dt
        k1 = self._dsdt(y0)
        k2 = self._dsdt(y0 + dt / 2 * k1)
        k3 = self._dsdt(y0 + dt / 2 * k2)
        k4 = self._dsdt(y0 + dt * k3)
        return (y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))[:4]
