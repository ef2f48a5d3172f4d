"""
Whole-loop training throughput: timesteps per second of ``model.learn`` on MT10, plain SB3 against mtsb3.

Sides (each preset builds its own models; the vector envs are built once and shared by the presets):

* ``sb3``: plain SB3 ``SAC("MlpPolicy")`` on the official ``gym.make_vec("Meta-World/MT10", use_one_hot=True)``
  (``vector_strategy="sync"``), through the few lines of :class:`GymnasiumVecEnv` SB3 needs, plus ``VecMonitor``;
* ``sb3_async``: the same on ``vector_strategy="async"`` (one process per sub-env);
* ``ours``: :class:`mtsb3.MTSAC` (``mt_sac`` one-hot recipe, disentangled alpha, as ``hyperparams/small/mtsac.yml``) on
  ``make_mt_vec_env("MT-MetaWorld-MT10-v0")`` (``DummyVecEnv``);
* ``ours_subproc``: the same on a ``SubprocVecEnv``;
* ``ours_overlap``: the ``ours_subproc`` model and env with ``overlap_collection=True`` (:mod:`mtsb3.common.overlap`).

Presets: ``small`` (64 x 64 networks, batch 256) and ``mtrl`` (3 x 400, batch 1280, mtrl's MT10 recipe); both do one
gradient step per vector step (10 timesteps). After a warm-up (random actions, then a few updates), every round runs
``model.learn(--timesteps)`` once per side, in alternating order (A B C ..., then ... C B A), and the script prints the
median timesteps/s per side, the median over rounds of each side's ratio to ``sb3`` and ``sb3_async`` (paired by
round, so a load change on this shared machine hits both sides of a ratio alike), and the time split per 1000
timesteps: ``env`` (the main process blocked in ``step_async``/``step_wait``), ``act`` (choosing actions), ``update``
(gradient steps, minibatch sampling excluded), ``buffer`` (``add`` and ``sample``), ``callbacks`` and ``other``.

    python scripts/bench_train.py                                   # both presets, a few minutes on 2 cores
    python scripts/bench_train.py --presets small --timesteps 3000 --rounds 5
    python scripts/bench_train.py --sides sb3 ours_overlap --device cuda

The metaworld versions differ in their step cost; compare ratios measured in one invocation, not across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.recipes import mt_sac

ENV_ID = "MT-MetaWorld-MT10-v0"
PRESETS: dict[str, dict[str, Any]] = {
    "small": dict(net_arch=[64, 64], batch_size=256, timesteps=1000),
    "mtrl": dict(net_arch=[400, 400, 400], batch_size=1280, timesteps=200),
}
SIDES = ("sb3", "sb3_async", "ours", "ours_subproc", "ours_overlap")
PARTS = ("env", "act", "update", "buffer", "callbacks", "other")


class GymnasiumVecEnv(VecEnv):
    """
    An SB3 ``VecEnv`` over a Gymnasium ``VectorEnv`` with same-step autoreset (Meta-World's default): the terminal
    observation moves from ``info["final_obs"]`` to SB3's ``terminal_observation``. Kept minimal, so that the plain
    SB3 side pays no more than a user of the official env must.

    :param envs: the Gymnasium vector env
    """

    def __init__(self, envs: gym.vector.VectorEnv):
        self.envs = envs
        self._async = hasattr(envs, "step_async")
        self._actions: np.ndarray | None = None
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)

    def reset(self) -> np.ndarray:
        obs, _ = self.envs.reset(seed=self._seeds[0])
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        if self._async:
            self.envs.step_async(actions)
        else:
            self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.envs.step_wait() if self._async else self.envs.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i] = {"terminal_observation": info["final_obs"][i], "TimeLimit.truncated": bool(not terminated[i])}
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.envs.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        values = self.envs.get_attr(attr_name)
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self.envs.set_attr(attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list:
        return list(self.envs.call(method_name, *method_args, **method_kwargs))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


@dataclass
class Split:
    """Seconds spent per part of the loop, accumulated by the wrappers :meth:`instrument` installs."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def timed(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start

        return run

    def instrument(self, model: BaseAlgorithm) -> None:
        """Time the env, action choice, update, buffer and callbacks of ``model`` (instance attributes shadow methods)."""
        assert model.env is not None and model.replay_buffer is not None  # type: ignore[attr-defined]
        model.env.step_async = self.timed("env", model.env.step_async)  # type: ignore[method-assign]
        model.env.step_wait = self.timed("env", model.env.step_wait)  # type: ignore[method-assign]
        model._sample_action = self.timed("act", model._sample_action)  # type: ignore[attr-defined]
        model.train = self.timed("train", model.train)  # type: ignore[method-assign]
        buffer = model.replay_buffer  # type: ignore[attr-defined]
        buffer.add = self.timed("add", buffer.add)
        buffer.sample = self.timed("sample", buffer.sample)
        init_callback = model._init_callback

        def init_timed_callback(*args: Any, **kwargs: Any) -> Any:
            callback = init_callback(*args, **kwargs)
            callback.on_step = self.timed("callbacks", callback.on_step)
            return callback

        model._init_callback = init_timed_callback  # type: ignore[method-assign]

    def per_1000(self, wall: float, timesteps: int) -> dict[str, float]:
        """:return: milliseconds per 1000 timesteps of each part of :data:`PARTS` (and ``total``)"""
        s = self.seconds
        parts = {
            "env": s["env"],
            "act": s["act"],
            "update": s["train"] - s["sample"],
            "buffer": s["add"] + s["sample"],
            "callbacks": s["callbacks"],
        }
        parts["other"] = wall - sum(parts.values())
        parts["total"] = wall
        return {key: 1e6 * value / timesteps for key, value in parts.items()}


@dataclass
class Side:
    """One side of the comparison: a model (possibly shared with another side) and its overlap setting."""

    name: str
    model: BaseAlgorithm
    split: Split
    overlap: bool = False
    rates: list[float] = field(default_factory=list)
    splits: list[dict[str, float]] = field(default_factory=list)

    def run(self, timesteps: int) -> None:
        """One timed ``learn`` call, continuing the same run."""
        if isinstance(self.model, MTSAC):
            self.model.overlap_collection = self.overlap
        self.split.seconds.clear()
        start = time.perf_counter()
        self.model.learn(timesteps, reset_num_timesteps=False)
        wall = time.perf_counter() - start
        self.rates.append(timesteps / wall)
        self.splits.append(self.split.per_1000(wall, timesteps))


def make_envs(sides: Sequence[str], seed: int = 0) -> dict[str, VecEnv]:
    """:return: one vector env per env kind the sides need (``sb3``, ``sb3_async``, ``ours``, ``ours_subproc``)"""
    import metaworld  # noqa: F401  (registers Meta-World/MT10)

    kinds = {"ours_subproc" if side == "ours_overlap" else side for side in sides}
    envs: dict[str, VecEnv] = {}
    for kind in sorted(kinds):
        if kind.startswith("sb3"):
            strategy = "async" if kind == "sb3_async" else "sync"
            official = gym.make_vec("Meta-World/MT10", vector_strategy=strategy, use_one_hot=True, seed=seed)
            envs[kind] = VecMonitor(GymnasiumVecEnv(official))
        else:
            envs[kind] = make_mt_vec_env(ENV_ID, seed=seed, vec_env_cls=SubprocVecEnv if kind == "ours_subproc" else None)
    return envs


def make_sides(sides: Sequence[str], envs: dict[str, VecEnv], preset: dict[str, Any], args: argparse.Namespace) -> list[Side]:
    """Build each side's model on its env and warm it up (random actions, then a few updates; not timed)."""
    common = dict(
        batch_size=preset["batch_size"],
        learning_rate=3e-4,
        buffer_size=args.buffer,
        learning_starts=args.learning_starts,
        train_freq=1,
        gradient_steps=1,
        ent_coef="auto_1.0",
        device=args.device,
        seed=0,
    )
    built: dict[str, tuple[BaseAlgorithm, Split]] = {}
    result = []
    for side in sides:
        kind = "ours_subproc" if side == "ours_overlap" else side
        if kind not in built:
            if kind.startswith("sb3"):
                model: BaseAlgorithm = SAC("MlpPolicy", envs[kind], policy_kwargs=dict(net_arch=preset["net_arch"]), **common)
            else:
                policy_kwargs = mt_sac("one_hot", preset["net_arch"])
                model = MTSAC("MultiTaskPolicy", envs[kind], policy_kwargs=policy_kwargs, disentangled_alpha=True, **common)
            split = Split()
            split.instrument(model)
            model.learn(args.learning_starts + args.warmup_updates * envs[kind].num_envs)
            built[kind] = (model, split)
        result.append(Side(side, *built[kind], overlap=side == "ours_overlap"))
    return result


def run_rounds(sides: list[Side], rounds: int, timesteps: int) -> None:
    """``rounds`` rounds of one ``learn(timesteps)`` per side, in alternating order."""
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            side.run(timesteps)
            print(f"  round {r + 1}: {side.name:<13} {side.rates[-1]:8.1f} timesteps/s", flush=True)


def report(preset_name: str, sides: list[Side]) -> dict[str, float]:
    """Print the medians, the paired ratios and the time split; :return: ``{side: median timesteps/s}`` and ratios."""
    preset = PRESETS[preset_name]
    print(f"\n== {preset_name}: net_arch {preset['net_arch']}, batch {preset['batch_size']} ==")
    results: dict[str, float] = {}
    by_name = {side.name: side for side in sides}
    header = f"{'side':<13} {'timesteps/s':>11}" + "".join(
        f" {'/ ' + base:>13}" for base in ("sb3", "sb3_async") if base in by_name
    )
    print(header)
    for side in sides:
        rate = statistics.median(side.rates)
        results[side.name] = rate
        row = f"{side.name:<13} {rate:11.1f}"
        for base in ("sb3", "sb3_async"):
            if base in by_name:
                ratio = statistics.median(a / b for a, b in zip(side.rates, by_name[base].rates, strict=True))
                results[f"{side.name}/{base}"] = ratio
                row += f" {ratio:12.2f}x"
        print(row)
    if "ours_overlap" in by_name and "ours_subproc" in by_name:
        overlap, subproc = by_name["ours_overlap"].rates, by_name["ours_subproc"].rates
        results["overlap_gain"] = statistics.median(a / b for a, b in zip(overlap, subproc, strict=True))
        print(f"overlap on / off (same model and SubprocVecEnv): {results['overlap_gain']:.2f}x")
    print(f"\ntime split, ms per 1000 timesteps (medians over rounds): {', '.join(PARTS)}, total")
    for side in sides:
        cells = [statistics.median(split[key] for split in side.splits) for key in (*PARTS, "total")]
        print(f"{side.name:<13} " + " ".join(f"{cell:9.0f}" for cell in cells))
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--timesteps", type=int, help="timesteps per timed learn call (default: small 1000, mtrl 200)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--learning-starts", type=int, default=1500, help="random-action warm-up (timesteps)")
    parser.add_argument("--warmup-updates", type=int, default=20, help="untimed updates after the random warm-up")
    parser.add_argument("--buffer", type=int, default=100_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: the other core steps envs)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    th.set_num_threads(args.threads)
    envs = make_envs(args.sides)
    results = {}
    try:
        for name in args.presets:
            print(f"[{name}] building and warming up {', '.join(args.sides)}", flush=True)
            sides = make_sides(args.sides, envs, PRESETS[name], args)
            run_rounds(sides, args.rounds, args.timesteps or PRESETS[name]["timesteps"])
            results[name] = report(name, sides)
    finally:
        for env in envs.values():
            env.close()
    return results


if __name__ == "__main__":
    main()
