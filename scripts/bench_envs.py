"""
Environment speed benchmarks: mtgym envs against the raw libraries they wrap.

Each comparison is one function returning a dict of numbers and printing its ratios; :func:`main` runs them in
one go. Throughputs alternate A B A B ... and report medians, so a noisy (shared) machine hits both sides alike.

    python scripts/bench_envs.py                 # everything
    python scripts/bench_envs.py --only metaworld_mt10 --episodes 1

Comparisons:

* ``metaworld_mt10``: env-steps/s of the mtgym MT10 vector env (sync, random actions) over raw
  ``gym.make_vec("Meta-World/MT10", vector_strategy="sync")``, target >= 0.95; also construction times.
* ``metaworld_mt50_lazy``: time from ``gym.make("MT-MetaWorld-MT50-v0")`` to the first step of one task, in a fresh
  process, against eager Meta-World MT50 construction; target <= 3 s.
* ``hipbmdp``: steps/s of the four HiP-BMDP families (state; Finger also with pixels) over raw dm_control
  ``suite.load`` doing the same control steps (and render); target >= 0.9 for state.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np

import mtgym  # noqa: F401  (registers the ids)
from mtgym.core import ENV_KEY
from mtgym.vector import task_env_fns


# ---------------------------------------------------------------------------------------------------------------------
# helpers shared by the comparisons
# ---------------------------------------------------------------------------------------------------------------------
def paired_vector_throughput(
    envs_a: gym.vector.VectorEnv, envs_b: gym.vector.VectorEnv, n_steps: int, chunk: int = 50, seed: int = 0
) -> dict[str, float]:
    """
    Step two vector envs with the same random actions in alternating chunks (A B, B A, A B, ...), so that load on a
    shared machine and the episode phase (resets) hit both alike.

    Throughput is measured both in wall time and in this process's CPU time; the CPU figure is the robust one on a
    shared machine (the envs are single-threaded). The actions are drawn beforehand and not timed.

    :return: per side (``a``/``b``) and clock (``cpu``/``wall``): the median env-steps/s over chunks
        (``{side}_{clock}_median``) and the overall env-steps/s (``{side}_{clock}_total``); per clock, the median over
        chunk pairs of the throughput ratio a / b (``ratio_{clock}_paired_median``)
    """
    envs_a.action_space.seed(seed)
    actions = [envs_a.action_space.sample() for _ in range(n_steps)]
    samples: dict[str, list[float]] = {f"{side}_{clock}": [] for side in "ab" for clock in ("cpu", "wall")}
    for k, start in enumerate(range(0, n_steps, chunk)):
        order = (("a", envs_a), ("b", envs_b)) if k % 2 == 0 else (("b", envs_b), ("a", envs_a))
        for side, envs in order:
            cpu, wall = time.process_time(), time.perf_counter()
            for action in actions[start : start + chunk]:
                envs.step(action)
            samples[f"{side}_cpu"].append(time.process_time() - cpu)
            samples[f"{side}_wall"].append(time.perf_counter() - wall)
    results = {}
    for key, seconds in samples.items():
        n_envs = envs_a.num_envs if key.startswith("a") else envs_b.num_envs
        results[f"{key}_median"] = statistics.median(
            len(actions[i * chunk : (i + 1) * chunk]) * n_envs / dt for i, dt in enumerate(seconds)
        )
        results[f"{key}_total"] = n_steps * n_envs / sum(seconds)
    for clock in ("cpu", "wall"):
        # chunks next to each other in time see the same load: the median of their ratios is the robust estimate
        pair_ratios = [
            (b_dt / envs_b.num_envs) / (a_dt / envs_a.num_envs)
            for a_dt, b_dt in zip(samples[f"a_{clock}"], samples[f"b_{clock}"], strict=True)
        ]
        results[f"ratio_{clock}_paired_median"] = statistics.median(pair_ratios)
    return results


def alternate(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Run the measures in turn (A B A B ...) for ``rounds`` rounds. :return: the median of each."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            samples[name].append(measure())
    return {name: statistics.median(values) for name, values in samples.items()}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """:return: ``(fn(), seconds it took)``"""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run_fresh_python(code: str, timeout: float = 600.0) -> list[float]:
    """Run ``code`` in a fresh interpreter; its last line of output must be numbers. :return: those numbers."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=True)
    return [float(x) for x in out.stdout.strip().splitlines()[-1].split()]


def report(title: str, rows: list[tuple[str, str]]) -> None:
    """Print a titled block of ``name: value`` rows."""
    print(f"\n== {title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


# ---------------------------------------------------------------------------------------------------------------------
# Meta-World
# ---------------------------------------------------------------------------------------------------------------------
def _give_raw_our_fixed_goals(ours: gym.vector.SyncVectorEnv, raw: gym.vector.SyncVectorEnv) -> None:
    """Make raw Meta-World sub-env ``i`` use our fixed goal of task ``i`` (its only task, so every reset keeps it)."""
    import pickle

    from metaworld.env_dict import ALL_V3_ENVIRONMENTS
    from metaworld.types import Task

    for ours_env, raw_env in zip(ours.envs, raw.envs, strict=True):
        mt_env = ours_env.unwrapped
        env_cls = type(raw_env.unwrapped)
        assert env_cls is ALL_V3_ENVIRONMENTS[mt_env.task_name]  # the same task order on both sides
        data = {"rand_vec": mt_env.goal, "env_cls": env_cls, "partially_observable": False}
        raw_env.set_wrapper_attr("tasks", [Task(mt_env.task_name, pickle.dumps(data))])


def _layer_cost_per_env_step(envs: gym.vector.SyncVectorEnv, sawyer_envs: list[Any], n_steps: int) -> float:
    """
    :return: CPU seconds per env-step of everything above Meta-World's ``SawyerXYZEnv.step`` (wrappers, vector env),
        measured with that ``step`` replaced by a stub that returns a recorded result. Call right after a reset:
        ``n_steps`` must stay below the horizon.
    """
    zero = np.zeros(4, dtype=np.float32)
    for sawyer in sawyer_envs:
        obs, reward, terminated, truncated, info = sawyer.step(zero)
        sawyer.step = lambda action, r=(obs, reward, terminated, truncated, info): (r[0].copy(), r[1], r[2], r[3], dict(r[4]))
    try:
        actions = [envs.action_space.sample() for _ in range(n_steps)]
        start = time.process_time()
        for action in actions:
            envs.step(action)
        return (time.process_time() - start) / (n_steps * envs.num_envs)
    finally:
        for sawyer in sawyer_envs:
            del sawyer.step


def _layer_ratio(
    ours: gym.vector.SyncVectorEnv, raw: gym.vector.SyncVectorEnv, steps: int, rounds: int, raw_steps_per_cpu_s: float
) -> dict[str, float]:
    """
    The cost of the layers above the physics alone, physics stubbed out (:func:`_layer_cost_per_env_step`, ``rounds``
    alternating rounds of ``steps`` steps): noise-free evidence for the paired ``v0`` ratio, and the ratio it implies
    at the raw env's measured cost per env-step.
    """
    sawyers = {
        "mtgym": [env.unwrapped.active_env.unwrapped for env in ours.envs],
        "raw": [env.unwrapped for env in raw.envs],
    }
    costs: dict[str, list[float]] = {"mtgym": [], "raw": []}
    for _ in range(rounds):
        for side, envs in (("mtgym", ours), ("raw", raw)):
            envs.reset(seed=0)
            costs[side].append(_layer_cost_per_env_step(envs, sawyers[side], steps))
    layers = {side: statistics.median(values) for side, values in costs.items()}
    step_s = 1 / raw_steps_per_cpu_s  # raw CPU seconds per env-step: physics + raw layers
    return {
        "v0_layers_mtgym_us": layers["mtgym"] * 1e6,
        "v0_layers_raw_us": layers["raw"] * 1e6,
        "v0_ratio_from_layers": step_s / (step_s - layers["raw"] + layers["mtgym"]),
    }


def _paired_rows(tag: str, paired: dict[str, float], results: dict[str, float]) -> list[tuple[str, str]]:
    """Record the paired throughputs of one pairing in ``results`` (keys prefixed by ``tag``); :return: its report rows."""
    for clock in ("cpu", "wall"):
        results[f"{tag}_ratio_{clock}_paired"] = paired[f"ratio_{clock}_paired_median"]
        for stat in ("median", "total"):
            results[f"{tag}_mtgym_{clock}_{stat}"] = a = paired[f"a_{clock}_{stat}"]
            results[f"{tag}_raw_{clock}_{stat}"] = b = paired[f"b_{clock}_{stat}"]
            results[f"{tag}_ratio_{clock}_{stat}"] = a / b
    r = {key.removeprefix(f"{tag}_"): value for key, value in results.items() if key.startswith(f"{tag}_")}
    title = "MetaWorldPlus (defaults, seed 0)" if tag == "plus" else "v0 (raw: 150 steps, v1 reward, our goals)"
    return [
        (f"{title}: mtgym / raw", f"{r['ratio_cpu_paired']:.3f} CPU, {r['ratio_wall_paired']:.3f} wall  (target >= 0.95)"),
        ("  ratio of the medians", f"{r['ratio_cpu_median']:.3f} CPU, {r['ratio_wall_median']:.3f} wall"),
        ("  whole run, resets included", f"{r['ratio_cpu_total']:.3f} CPU, {r['ratio_wall_total']:.3f} wall"),
        ("  env-steps/s mtgym, raw (CPU)", f"{r['mtgym_cpu_median']:.0f}, {r['raw_cpu_median']:.0f}"),
        ("  env-steps/s mtgym, raw (wall)", f"{r['mtgym_wall_median']:.0f}, {r['raw_wall_median']:.0f}"),
    ]


def bench_metaworld_mt10(episodes: int = 2, chunk: int = 25, rounds: int = 5) -> dict[str, float]:
    """
    MT10 env-steps/s, mtgym over raw Meta-World, both ``SyncVectorEnv`` with same-step autoreset (Meta-World's
    default), so every ``step`` call is one transition per sub-env on both sides. Two pairings:

    * ``plus``: ``MT-MetaWorldPlus-MT10-v0`` against raw ``Meta-World/MT10`` at its defaults, both with seed 0: the same
      protocol, goal set and goal draws, hence the same simulation (checked). This is the headline ratio.
    * ``v0``: ``MT-MetaWorld-MT10-v0`` (fixed goals, 150 steps, v1 reward, reward normalisation) against raw with
      ``max_episode_steps=150, reward_function_version="v1"``, whose sub-env ``i`` is given our fixed goal of task
      ``i`` as its only task. Both sides then simulate exactly the same states (checked), so this ratio isolates the
      cost of our layers.

    Both sides run ``episodes`` whole episodes in alternating ``chunk``-step chunks (:func:`paired_vector_throughput`);
    the headline is the median over chunk pairs of the throughput ratio. On a loaded machine that ratio still moves
    by a few percent from run to run, so the ``v0`` pairing also times the layers above the physics alone
    (:func:`_layer_cost_per_env_step`, ``rounds`` alternating rounds) and derives the ratio they imply.
    """
    same_step = gym.vector.AutoresetMode.SAME_STEP

    def make_ours(env_id: str) -> gym.vector.VectorEnv:
        return gym.vector.SyncVectorEnv(task_env_fns(env_id), autoreset_mode=same_step)

    def make_raw(**kwargs: Any) -> gym.vector.VectorEnv:
        return gym.make_vec("Meta-World/MT10", vector_strategy="sync", seed=0, **kwargs)

    import metaworld  # noqa: F401  (registers Meta-World/MT10; imported outside the construction timings)

    results: dict[str, float] = {}
    # construction: one mtgym env builds one task; the vector env builds all 10 (+ the one-task probe that counts tasks)
    single, results["build_mt10_v0_single_s"] = timed(lambda: gym.make("MT-MetaWorld-MT10-v0"))
    single.close()
    pairs = {
        "plus": (lambda: make_ours("MT-MetaWorldPlus-MT10-v0"), make_raw, 500),
        "v0": (
            lambda: make_ours("MT-MetaWorld-MT10-v0"),
            lambda: make_raw(max_episode_steps=150, reward_function_version="v1"),
            150,
        ),
    }
    rows = []
    for tag, (ours_fn, raw_fn, horizon) in pairs.items():
        ours, results[f"build_vec_{tag}_mtgym_s"] = timed(ours_fn)
        raw, results[f"build_vec_{tag}_raw_s"] = timed(raw_fn)
        if tag == "v0":
            _give_raw_our_fixed_goals(ours, raw)
        ours_obs, _ = ours.reset(seed=0)
        raw_obs, _ = raw.reset(seed=0)
        np.testing.assert_allclose(ours_obs[ENV_KEY], raw_obs, rtol=1e-6, atol=1e-6)  # the same simulation
        paired = paired_vector_throughput(ours, raw, horizon * episodes, chunk)
        if tag == "v0":
            results.update(_layer_ratio(ours, raw, horizon - 10, rounds, paired["b_cpu_total"]))
        ours.close()
        raw.close()
        rows += _paired_rows(tag, paired, results)
    rows += [
        (
            "layers above the physics, per env-step (CPU)",
            f"mtgym {results['v0_layers_mtgym_us']:.1f} us, raw {results['v0_layers_raw_us']:.1f} us"
            f" -> ratio {results['v0_ratio_from_layers']:.3f} at the raw step cost",
        ),
        ("build gym.make(MT10-v0), 1 task", f"{results['build_mt10_v0_single_s']:.2f} s"),
        (
            "build vec MetaWorldPlus-MT10 / raw",
            f"{results['build_vec_plus_mtgym_s']:.2f} s / {results['build_vec_plus_raw_s']:.2f} s",
        ),
        (
            "build vec MT10-v0 / raw (150, v1)",
            f"{results['build_vec_v0_mtgym_s']:.2f} s / {results['build_vec_v0_raw_s']:.2f} s",
        ),
    ]
    report(f"Meta-World MT10, sync vector env, random actions ({episodes} episodes, alternating {chunk}-step chunks)", rows)
    return results


_LAZY_MT50 = """
import os, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import gymnasium as gym, mtgym
cpu, wall = time.process_time(), time.perf_counter()
env = gym.make("MT-MetaWorld-MT50-v0")
env.reset(seed=0, options={"task_state": %d})
env.step(env.action_space.sample())
print(time.process_time() - cpu, time.perf_counter() - wall)
"""

_PLUS_MT50 = """
import os, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import gymnasium as gym, mtgym
cpu, wall = time.process_time(), time.perf_counter()
envs = gym.make_vec("MT-MetaWorldPlus-MT50-v0", seed=0)
envs.reset(seed=0)
envs.step(envs.action_space.sample())
print(time.process_time() - cpu, time.perf_counter() - wall)
"""

_EAGER_MT50 = """
import os, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import gymnasium as gym
cpu, wall = time.process_time(), time.perf_counter()
import metaworld
envs = gym.make_vec("Meta-World/MT50", vector_strategy="sync", seed=0)
envs.reset(seed=0)
envs.step(envs.action_space.sample())
print(time.process_time() - cpu, time.perf_counter() - wall)
"""


def bench_metaworld_mt50_lazy(rounds: int = 3, eager: bool = True) -> dict[str, float]:
    """
    Time from ``gym.make("MT-MetaWorld-MT50-v0")`` to the first step of one task, in a fresh interpreter (so Meta-World's
    import is counted), against eager construction: raw ``gym.make_vec("Meta-World/MT50")`` (``metaworld.MT50()``
    generates every task's goals, then 50 envs are built), also to its first step. Both in process CPU time (robust
    on a shared machine) and wall time. The lazy side is the median over ``rounds`` runs, each on a different task;
    the eager side runs once (it takes about half a minute on an idle core), alternating with our whole
    ``gym.make_vec("MT-MetaWorldPlus-MT50-v0", seed=0)`` (all 50 tasks, the official goals replayed as they are built).
    """
    tasks = [0, 17, 42, 30, 8][:rounds]
    runs = [run_fresh_python(_LAZY_MT50 % task) for task in tasks]
    results = {"lazy_cpu_s": statistics.median(r[0] for r in runs), "lazy_wall_s": statistics.median(r[1] for r in runs)}
    rows = [
        (
            "lazy: gym.make(MT50-v0) -> first step",
            f"{results['lazy_cpu_s']:.2f} s CPU, {results['lazy_wall_s']:.2f} s wall  (median of {len(tasks)}; target <= 3 s)",
        )
    ]
    if eager:
        results["plus_vec_cpu_s"], results["plus_vec_wall_s"] = run_fresh_python(_PLUS_MT50)
        results["eager_cpu_s"], results["eager_wall_s"] = run_fresh_python(_EAGER_MT50)
        results["lazy_over_eager_cpu"] = results["lazy_cpu_s"] / results["eager_cpu_s"]
        results["lazy_over_eager_wall"] = results["lazy_wall_s"] / results["eager_wall_s"]
        rows += [
            (
                "eager: make_vec(Meta-World/MT50) -> first step",
                f"{results['eager_cpu_s']:.2f} s CPU, {results['eager_wall_s']:.2f} s wall",
            ),
            ("lazy / eager", f"{results['lazy_over_eager_cpu']:.3f} CPU, {results['lazy_over_eager_wall']:.3f} wall"),
            (
                "make_vec(MetaWorldPlus-MT50, seed=0) -> first step",
                f"{results['plus_vec_cpu_s']:.2f} s CPU, {results['plus_vec_wall_s']:.2f} s wall"
                f"  ({results['plus_vec_cpu_s'] / results['eager_cpu_s']:.3f} of eager CPU)",
            ),
        ]
    report("Meta-World MT50 construction (fresh process, imports included)", rows)
    return results


# ---------------------------------------------------------------------------------------------------------------------
# HiP-BMDP (dm_control)
# ---------------------------------------------------------------------------------------------------------------------
#: (id, dm_control domain, task, the task index whose XML variant is the stock suite model)
HIPBMDP_FAMILIES = [
    ("MT-HiPBMDP-Finger-Spin-vary-size-v0", "finger", "spin", 0),
    ("MT-HiPBMDP-Cheetah-Run-vary-torso-length-v0", "cheetah", "run", 0),
    ("MT-HiPBMDP-Walker-Walk-vary-friction-v0", "walker", "walk", 0),
    ("MT-HiPBMDP-Walker-Walk-vary-len-v0", "walker", "walk", 2),
]


def _hipbmdp_ours_rate(env: gym.Env, actions: np.ndarray, clock: Callable[[], float]) -> float:
    """:return: env-steps/s of an mtgym HiP-BMDP env over ``actions``, resetting on truncation (timed)."""
    start = clock()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return len(actions) / (clock() - start)


def _hipbmdp_raw_rate(env: Any, actions: np.ndarray, clock: Callable[[], float], frame_skip: int, pixels: bool) -> float:
    """
    :return: env-step equivalents/s of a raw ``suite.load`` env doing the same work as one mtgym step: ``frame_skip``
        control steps, plus one ``physics.render(84, 84, camera_id=0)`` for pixels (dm_control auto-resets).
    """
    start = clock()
    for action in actions:
        for _ in range(frame_skip):
            env.step(action)
        if pixels:
            env.physics.render(84, 84, camera_id=0)
    return len(actions) / (clock() - start)


def bench_hipbmdp(
    rounds: int = 5, state_steps: int = 500, pixel_steps: int = 50, pixel_ids: list[str] | None = None
) -> dict[str, float]:
    """
    Steps/s of the HiP-BMDP envs against raw ``dm_control.suite.load`` on the same machine, alternating A B A B.

    Both sides run the stock model (the task whose XML variant equals the suite's) with the same random actions.
    One mtgym step is ``frame_skip=2`` control steps, so the raw side's unit is 2 ``env.step`` calls (plus one
    84x84 render for pixels); ratios are mtgym / raw, target >= 0.9 for state. A state window is one whole
    episode (500 steps), so both sides reset once per window. Pixel windows are short: with software EGL (no GPU)
    one render takes ~20 ms, which dominates both sides. State is timed in process CPU time, pixels in wall time.

    :param rounds: alternating rounds per comparison
    :param state_steps: env steps per state timing window
    :param pixel_steps: env steps per pixel timing window
    :param pixel_ids: ids to benchmark with pixels (default: Finger only)
    """
    from dm_control import suite

    pixel_ids = [HIPBMDP_FAMILIES[0][0]] if pixel_ids is None else pixel_ids
    results: dict[str, float] = {}
    rows: list[tuple[str, str]] = []
    for env_id, domain, task, stock_task in HIPBMDP_FAMILIES:
        for pixels in (False, True):
            if pixels and env_id not in pixel_ids:
                continue
            n_steps = pixel_steps if pixels else state_steps
            ours = gym.make(env_id, from_pixels=pixels, initial_task_state=stock_task)
            raw = suite.load(domain, task, task_kwargs={"random": 0})
            ours.reset(seed=0)
            raw.reset()
            actions = np.random.default_rng(0).uniform(-1, 1, size=(n_steps, *ours.action_space.shape))
            ours_actions = actions.astype(np.float32)
            # State stepping is single-threaded CPU work, so it is timed in process CPU time, which other jobs on a
            # shared machine barely disturb; pixels use wall time, since rendering may run on other threads or a GPU.
            clock = time.perf_counter if pixels else time.process_time
            measures = {
                "mtgym": functools.partial(_hipbmdp_ours_rate, ours, ours_actions, clock),
                "raw": functools.partial(_hipbmdp_raw_rate, raw, actions, clock, 2, pixels),
            }
            for measure in measures.values():  # warm-up (GL context, caches)
                measure()
            medians = alternate(measures, rounds)
            kind = "pixels" if pixels else "state"
            name = f"{env_id}/{kind}"
            results[f"{name}_mtgym_steps_per_s"] = medians["mtgym"]
            results[f"{name}_raw_steps_per_s"] = medians["raw"]
            results[f"{name}_ratio"] = ratio = medians["mtgym"] / medians["raw"]
            target = "  (target >= 0.9)" if not pixels else ""
            rows.append(
                (
                    f"{env_id.removeprefix('MT-HiPBMDP-')} {kind}",
                    f"{ratio:.3f}{target}   mtgym {medians['mtgym']:.0f} / raw {medians['raw']:.0f} env-steps/s",
                )
            )
            ours.close()
            raw.close()
    report(f"HiP-BMDP vs raw dm_control suite.load, frame_skip=2 ({rounds} alternating rounds, medians)", rows)
    return results


# ---------------------------------------------------------------------------------------------------------------------
BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict[str, float]]] = {
    "metaworld_mt10": lambda args: bench_metaworld_mt10(episodes=args.episodes, rounds=args.rounds),
    "metaworld_mt50_lazy": lambda args: bench_metaworld_mt50_lazy(eager=not args.skip_eager),
    "hipbmdp": lambda args: bench_hipbmdp(rounds=args.rounds),
}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the selected comparisons and print their ratios. :return: every comparison's numbers, by name."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these comparisons")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per throughput comparison")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per side in the Meta-World MT10 comparison")
    parser.add_argument("--skip-eager", action="store_true", help="skip the (slow) eager Meta-World MT50 construction")
    args = parser.parse_args(argv)
    np.set_printoptions(precision=3)
    return {name: BENCHMARKS[name](args) for name in (args.only or BENCHMARKS)}


if __name__ == "__main__":
    main()
