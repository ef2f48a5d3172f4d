"""Make, reset and step every registered mtgym id, printing its spaces: a smoke demo of the env suite."""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import mtgym  # noqa: F401  (registers the ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10, help="random steps per id")
    parser.add_argument("--ids", nargs="*", help="only these ids (default: every MT- id)")
    args = parser.parse_args()
    for env_id in args.ids or sorted(k for k in gym.registry if k.startswith("MT-")):
        start = time.perf_counter()
        env = gym.make(env_id)
        env.reset(seed=0)
        total = 0.0
        for _ in range(args.steps):
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            if terminated or truncated:
                env.reset()
        n_tasks = getattr(env.unwrapped, "n_tasks", "continuous")
        print(f"{env_id:48s} tasks={n_tasks!s:10s} return={total:9.3f} {time.perf_counter() - start:5.1f}s")
        print(f"    obs={env.observation_space}  action={env.action_space}")
        env.close()


if __name__ == "__main__":
    main()
