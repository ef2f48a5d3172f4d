"""
Benchmark one gradient step (``model.train(1, batch_size)``) of the mtsb3 algorithms against plain SB3 SAC.

The replay buffers hold synthetic transitions with benchmark shapes (MT10: ``env_obs`` 39-d, ``Discrete(10)`` task,
4-d action), so no Meta-World is needed. Each comparison runs A and B alternately (A B A B ...) in one process and
prints the ratio of the medians. Add a comparison by writing one ``bench_<name>(args) -> list[Result]`` function and
listing it in ``SECTIONS``.

Usage::

    python scripts/bench_update.py                       # every section
    python scripts/bench_update.py --sections mtsac multi_head --rounds 30 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure

from mtsb3 import MTSAC
from mtsb3.common.buffers import TaskBalancedReplayBuffer
from mtsb3.common.task import ENV_KEY, TASK_KEY

NET_ARCH = [400, 400, 400]


class ShapeEnv(gym.Env):
    """An env that only carries the spaces of a multi-task benchmark (the benchmark never steps it)."""

    def __init__(self, obs_dim: int = 39, n_tasks: int = 10, action_dim: int = 4):
        self.observation_space = spaces.Dict(
            {ENV_KEY: spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32), TASK_KEY: spaces.Discrete(n_tasks)}
        )
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


@dataclass
class Result:
    """A measured comparison: ``ratio`` = median time of A / median time of B (or its inverse, see ``how``)."""

    name: str
    time_a: float
    time_b: float
    ratio: float
    how: str
    target: str
    note: str = ""


# -- shared timing helpers ---------------------------------------------------------------------------------------------
def fill_buffer(model: BaseAlgorithm, n_transitions: int, seed: int = 0) -> None:
    """Add ``n_transitions`` random transitions (one sub-env per task, tasks in order) to ``model.replay_buffer``."""
    rng = np.random.default_rng(seed)
    buffer = model.replay_buffer
    assert buffer is not None
    n_envs = buffer.n_envs
    obs_space = model.observation_space
    assert isinstance(obs_space, spaces.Dict)
    obs_dim = obs_space[ENV_KEY].shape[0]
    action_dim = model.action_space.shape[0]
    tasks = np.arange(n_envs) % obs_space[TASK_KEY].n
    for _ in range(n_transitions // n_envs):
        obs = {ENV_KEY: rng.standard_normal((n_envs, obs_dim), dtype=np.float32), TASK_KEY: tasks}
        next_obs = {ENV_KEY: rng.standard_normal((n_envs, obs_dim), dtype=np.float32), TASK_KEY: tasks}
        action = rng.uniform(-1, 1, (n_envs, action_dim)).astype(np.float32)
        reward = rng.standard_normal(n_envs).astype(np.float32)
        buffer.add(obs, next_obs, action, reward, np.zeros(n_envs), [{} for _ in range(n_envs)])


def make_model(
    algo: type[BaseAlgorithm], n_tasks: int, batch_size: int, buffer_transitions: int, device: str, **kwargs: Any
) -> BaseAlgorithm:
    """Build ``algo`` on a :class:`ShapeEnv` with one sub-env per task, fill its buffer and silence its logger."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda: ShapeEnv(n_tasks=n_tasks) for _ in range(n_tasks)])
    policy_kwargs = {"net_arch": NET_ARCH, **kwargs.pop("policy_kwargs", {})}
    model = algo(
        "MultiInputPolicy",
        env,
        batch_size=batch_size,
        buffer_size=max(buffer_transitions, 1000),
        policy_kwargs=policy_kwargs,
        device=device,
        seed=0,
        **kwargs,
    )
    fill_buffer(model, buffer_transitions)
    model.set_logger(configure(None, []))
    return model


def step_timer(model: BaseAlgorithm, steps: int) -> Callable[[], float]:
    """:return: a function that runs ``steps`` gradient steps and returns the seconds per step."""
    batch_size = model.batch_size

    def run() -> float:
        if th.cuda.is_available():
            th.cuda.synchronize()
        start = time.perf_counter()
        model.train(gradient_steps=steps, batch_size=batch_size)  # type: ignore[attr-defined]
        if th.cuda.is_available():
            th.cuda.synchronize()
        return (time.perf_counter() - start) / steps

    return run


def step_flops(model: BaseAlgorithm) -> int:
    """:return: the floating-point operations of one gradient step, as torch's ``FlopCounterMode`` counts them (matmuls)"""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.train(gradient_steps=1, batch_size=model.batch_size)  # type: ignore[attr-defined]
    return counter.get_total_flops()


def alternate(run_a: Callable[[], float], run_b: Callable[[], float], rounds: int, warmup: int = 2) -> tuple[float, float]:
    """Run A B A B ... ``rounds`` times after ``warmup`` rounds; :return: the median times of A and B."""
    for _ in range(warmup):
        run_a(), run_b()
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(run_a())
        times_b.append(run_b())
    return statistics.median(times_a), statistics.median(times_b)


# -- comparisons -------------------------------------------------------------------------------------------------------
def bench_mtsac(args: argparse.Namespace) -> list[Result]:
    """MTSAC step (disentangled alpha, 3x400, batch 1280, MT10 shapes) vs plain SB3 SAC at the same sizes."""
    common = dict(n_tasks=10, batch_size=1280, buffer_transitions=args.buffer, device=args.device)
    mtsac = make_model(MTSAC, disentangled_alpha=True, **common)
    sac = make_model(SAC, **common)
    t_mtsac, t_sac = alternate(step_timer(mtsac, args.steps), step_timer(sac, args.steps), args.rounds)
    return [Result("MTSAC (disentangled alpha) vs SAC, MT10", t_mtsac, t_sac, t_sac / t_mtsac, "throughput", ">= 1.0")]


def bench_multi_head(args: argparse.Namespace) -> list[Result]:
    """
    Multi-head MTSAC step vs single-head, MT50 shapes (3x400, batch 1280, disentangled alpha), with the task-balanced
    replay buffer (the heads then run on exactly batch/n_tasks rows per task) and with SB3's uniform one (the per-task
    head blocks are padded to the largest task count of the batch).
    """
    results = []
    for label, buffer_class in (("task-balanced", TaskBalancedReplayBuffer), ("uniform", None)):
        common = dict(
            n_tasks=50,
            batch_size=1280,
            buffer_transitions=args.buffer,
            device=args.device,
            disentangled_alpha=True,
            replay_buffer_class=buffer_class,
        )
        multi = make_model(MTSAC, policy_kwargs=dict(multi_head=True), **common)
        single = make_model(MTSAC, **common)
        t_multi, t_single = alternate(step_timer(multi, args.steps), step_timer(single, args.steps), args.rounds)
        name = f"multi-head vs single-head MTSAC, MT50, {label} replay"
        results.append(Result(name, t_multi, t_single, t_multi / t_single, "time", "<= 1.15"))
    return results


def bench_care(args: argparse.Namespace) -> list[Result]:
    """CARE (4 experts) and Soft Modularization MTSAC steps vs plain MTSAC, MT10 shapes (3x400, batch 1280)."""
    from mtsb3.recipes import care, soft_modularization

    common = dict(n_tasks=10, batch_size=1280, buffer_transitions=args.buffer, device=args.device, disentangled_alpha=True)
    plain = make_model(MTSAC, **common)
    results = []
    for name, policy_kwargs, target in (
        ("CARE (4 experts)", care(n_experts=4), "<= 1.5"),
        ("Soft Modularization (4 modules x 2 layers x 400)", soft_modularization(), "report"),
    ):
        model = make_model(MTSAC, policy_kwargs=policy_kwargs, **common)
        t_model, t_plain = alternate(step_timer(model, args.steps), step_timer(plain, args.steps), args.rounds)
        results.append(Result(f"{name} vs plain MTSAC, MT10", t_model, t_plain, t_model / t_plain, "time", target))
    return results


def bench_batched_experts(args: argparse.Namespace) -> list[Result]:
    """Forward + backward of E experts as one BatchedMLP vs a Python loop over E nn.Sequential (batch 1280)."""
    from torch import nn

    from mtsb3.common.experts import BatchedMLP

    results = []
    # CARE's encoders (39 -> 50 -> 50) and Soft Modularization-sized modules (400 -> 400 -> 400)
    for n_experts, in_dim, hidden, out_dim in ((4, 39, 50, 50), (10, 39, 50, 50), (4, 400, 400, 400)):
        th.manual_seed(0)
        batched = BatchedMLP(n_experts, in_dim, [hidden], out_dim).to(args.device)
        looped = nn.ModuleList(
            nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)) for _ in range(n_experts)
        ).to(args.device)
        x = th.randn(1280, in_dim, device=args.device)

        def timer(forward: Callable[[], th.Tensor], module: nn.Module) -> Callable[[], float]:
            def run() -> float:
                if th.cuda.is_available():
                    th.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(10):
                    module.zero_grad(set_to_none=True)
                    forward().sum().backward()
                if th.cuda.is_available():
                    th.cuda.synchronize()
                return (time.perf_counter() - start) / 10

            return run

        def run_batched(batched: nn.Module = batched, x: th.Tensor = x) -> th.Tensor:
            return batched(x)

        def run_loop(looped: nn.ModuleList = looped, x: th.Tensor = x) -> th.Tensor:
            return th.stack([expert(x) for expert in looped])

        t_batched, t_loop = alternate(timer(run_batched, batched), timer(run_loop, looped), args.rounds)
        name = f"BatchedMLP vs loop over experts, E={n_experts}, {in_dim}->{hidden}->{out_dim}"
        results.append(Result(name, t_batched, t_loop, t_loop / t_batched, "speed-up", "report"))
    return results


class PixelShapeEnv(gym.Env):
    """HiP-BMDP Finger's spaces (``uint8`` 9x84x84 frames, ``Discrete(10)`` task, 2-d action); never stepped."""

    def __init__(self, task: int = 0):
        self.observation_space = spaces.Dict(
            {ENV_KEY: spaces.Box(0, 255, (9, 84, 84), np.uint8), TASK_KEY: spaces.Discrete(10)}
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.task = task

    def get_task_state(self) -> int:
        return self.task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return {ENV_KEY: self.observation_space[ENV_KEY].sample(), TASK_KEY: self.task}, {}

    def step(self, action):
        return self.reset()[0], 0.0, False, False, {}


def bench_pixel(args: argparse.Namespace) -> list[Result]:
    """
    SAC-AE, DeepMDP and HiP-BMDP steps vs the MTSAC pixel step, batch 128 on 9x84x84 frames (synthetic replay data
    from the 4 training tasks). All use mtrl's HiP-BMDP sizes (4 convs x 32 filters, 50 features, 2x1024 MLPs); the
    baseline is MTSAC with the same tied pixel encoder and no representation loss (mtrl's pixel ``sac`` agent).
    A step takes seconds on one CPU thread: ``--sections pixel --rounds 5 --steps 1`` is enough there.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from mtsb3 import SACAE, DeepMDP, HiPBMDP
    from mtsb3.sac_ae import SACAEPolicy

    def build(algo: type[BaseAlgorithm], policy: Any, **policy_kwargs: Any) -> BaseAlgorithm:
        env = DummyVecEnv([lambda task=task: PixelShapeEnv(task) for task in (3, 4, 7, 8)])
        model = algo(
            policy,
            env,
            batch_size=128,
            buffer_size=args.pixel_buffer,
            policy_kwargs=dict(net_arch=[1024, 1024], **policy_kwargs),
            device=args.device,
            seed=0,
        )
        rng = np.random.default_rng(0)
        tasks = np.array([3, 4, 7, 8])
        for _ in range(args.pixel_buffer // 4):
            obs, next_obs = ({ENV_KEY: rng.integers(0, 256, (4, 9, 84, 84), np.uint8), TASK_KEY: tasks} for _ in "ab")
            action = rng.uniform(-1, 1, (4, 2)).astype(np.float32)
            model.replay_buffer.add(obs, next_obs, action, rng.random(4, dtype=np.float32), np.zeros(4), [{}] * 4)  # type: ignore[union-attr]
        model.set_logger(configure(None, []))
        return model

    base = build(MTSAC, SACAEPolicy, use_decoder=False)
    results = []
    for name, algo in (("SAC-AE", SACAE), ("DeepMDP", DeepMDP), ("HiP-BMDP", HiPBMDP)):
        model = build(algo, "MultiInputPolicy")
        t_model, t_base = alternate(step_timer(model, args.steps), step_timer(base, args.steps), args.rounds)
        name = f"{name} vs MTSAC pixel step, 9x84x84, batch 128"
        results.append(Result(name, t_model, t_base, t_base / t_model, "throughput", "report"))
        del model
    return results


def bench_grad_methods(args: argparse.Namespace) -> list[Result]:
    """
    MTSAC step with gradient surgery (PCGrad, GradNorm, CAGrad on both the critic and the actor) or a loss weighting
    (FAMO, uncertainty weighting, on the critic) vs plain MTSAC, MT10 shapes (3x400, batch 1280, disentangled alpha);
    then the per-task gradients of the MTSAC critic loss three ways: the per-sample path (one ordinary backward) and the
    batched backward (``is_grads_batched``) vs a loop of T backward passes (the reference's way).
    """
    from mtsb3.common.gradients import per_sample_task_gradients, per_task_gradients
    from mtsb3.common.task import per_task_mean, task_indices

    common = dict(n_tasks=10, batch_size=1280, buffer_transitions=args.buffer, device=args.device, disentangled_alpha=True)
    plain = make_model(MTSAC, **common)
    results = []
    for name, target in (
        ("pcgrad", "<= 2.0"),
        ("gradnorm", "report"),
        ("cagrad", "report"),
        ("famo", "report"),
        ("uw", "report"),
    ):
        model = make_model(MTSAC, grad_method=name, **common)
        t_model, t_plain = alternate(step_timer(model, args.steps), step_timer(plain, args.steps), args.rounds)
        results.append(Result(f"{name} MTSAC vs plain MTSAC, MT10", t_model, t_plain, t_model / t_plain, "time", target))
    # FAMO without its extra critic forward pass: the change of loss across two consecutive updates
    model = make_model(MTSAC, grad_method="famo", grad_method_kwargs=dict(losses_after="next"), **common)
    t_model, t_plain = alternate(step_timer(model, args.steps), step_timer(plain, args.steps), args.rounds)
    results.append(
        Result("famo (losses_after='next') vs plain MTSAC, MT10", t_model, t_plain, t_model / t_plain, "time", "report")
    )

    assert plain.replay_buffer is not None
    data = plain.replay_buffer.sample(1280)
    task_idx = task_indices(data.observations[TASK_KEY], 10)
    params = [p for group in plain.critic.optimizer.param_groups for p in group["params"]]

    def task_losses() -> th.Tensor:
        q = th.cat(plain.critic(data.observations, data.actions), dim=1)
        return per_task_mean(0.5 * (q - data.rewards).pow(2).sum(dim=1), task_idx, 10)[0]

    def timer(per_task: Callable[[th.Tensor], Any]) -> Callable[[], float]:
        def run() -> float:
            if th.cuda.is_available():
                th.cuda.synchronize()
            start = time.perf_counter()
            per_task(task_losses())
            if th.cuda.is_available():
                th.cuda.synchronize()
            return time.perf_counter() - start

        return run

    assert per_sample_task_gradients(task_losses(), params, task_idx) is not None, "the per-sample path does not apply"

    def loop(losses: th.Tensor) -> list[tuple[th.Tensor, ...]]:
        return [th.autograd.grad(loss, params, retain_graph=True) for loss in losses]

    for name, per_task in (
        ("per-sample path (one backward)", lambda losses: per_sample_task_gradients(losses, params, task_idx)),
        ("batched backward (is_grads_batched)", lambda losses: per_task_gradients(losses, params)),
    ):
        t_fast, t_loop = alternate(timer(per_task), timer(loop), max(3, args.rounds // 3), warmup=1)
        name = f"per-task critic gradients, {name} vs loop of 10 backward passes, MT10"
        results.append(Result(name, t_fast, t_loop, t_loop / t_fast, "speed-up", "report"))
    return results


def bench_distral(args: argparse.Namespace) -> list[Result]:
    """
    Distral step (10 task SAC policies + critics as one batched network, plus the distilled policy) vs plain MTSAC,
    MT10 shapes (3x400, batch 1280).
    """
    from mtsb3 import Distral

    common = dict(n_tasks=10, batch_size=1280, buffer_transitions=args.buffer, device=args.device)
    distral = make_model(Distral, **common)
    plain = make_model(MTSAC, disentangled_alpha=True, **common)
    t_distral, t_plain = alternate(step_timer(distral, args.steps), step_timer(plain, args.steps), args.rounds)
    return [Result("Distral vs plain MTSAC, MT10", t_distral, t_plain, t_distral / t_plain, "time", "report")]


def bench_moore(args: argparse.Namespace) -> list[Result]:
    """
    MOORE step (4 orthogonal experts of 3 x 400 for the actor and for the critic, per-task heads; the authors' MT10
    networks, run/metaworld/run_metaworld_mt10_mhsac_mt_moore.sh) vs plain MTSAC (3x400), MT10 shapes, batch 1280.
    """
    from mtsb3.recipes import moore

    common = dict(n_tasks=10, batch_size=1280, buffer_transitions=args.buffer, device=args.device, disentangled_alpha=True)
    model = make_model(MTSAC, policy_kwargs=moore(n_experts=4), **common)
    plain = make_model(MTSAC, **common)
    t_model, t_plain = alternate(step_timer(model, args.steps), step_timer(plain, args.steps), args.rounds)
    return [Result("MOORE (4 experts x 3x400) vs plain MTSAC, MT10", t_model, t_plain, t_model / t_plain, "time", "report")]


def _mix_paco_outputs(heads: Any, x: th.Tensor, task: th.Tensor) -> th.Tensor:
    """PaCo's network as ALF's ``CompositionalFC`` runs it: every sample through all K layers, outputs mixed by its w."""
    w = heads.task_vectors[0, task]  # (B, K)
    h = x
    for i, layer in enumerate(heads.layers):
        outputs = th.baddbmm(layer.bias[0].unsqueeze(1), h.expand(heads.n_param_sets, -1, -1), layer.weight[0])
        h = th.einsum("kbo,bk->bo", outputs, w)
        if i < len(heads.layers) - 1:
            h = heads.activation(h)
    return h


def bench_paco(args: argparse.Namespace) -> list[Result]:
    """
    PaCo step (K = 5 parameter sets; the 3x400 actor and twin critic composed per task; loss mask-out and w-reset)
    vs plain MTSAC, MT10 shapes (batch 1280, uniform replay), and PaCo's layers computed as here (the T task weights
    composed once, one matmul per task block) vs mixing the K layer outputs of every sample (ALF's CompositionalFC),
    forward + backward of the actor network.
    """
    from mtsb3.common.compositional import CompositionalTaskHeads
    from mtsb3.paco import PaCo
    from mtsb3.recipes import paco

    common = dict(n_tasks=10, batch_size=1280, buffer_transitions=args.buffer, device=args.device, disentangled_alpha=True)
    model = make_model(PaCo, policy_kwargs=paco(n_param_sets=5), **common)
    plain = make_model(MTSAC, **common)
    t_paco, t_plain = alternate(step_timer(model, args.steps), step_timer(plain, args.steps), args.rounds)
    results = [
        Result("PaCo (K=5, mask-out + w-reset) vs plain MTSAC, MT10", t_paco, t_plain, t_paco / t_plain, "time", "report")
    ]

    th.manual_seed(0)
    heads = CompositionalTaskHeads(10, 39, NET_ARCH, 8, n_param_sets=5).to(args.device)
    x = th.randn(1280, 39, device=args.device)
    task = th.randint(0, 10, (1280,), device=args.device)
    th.testing.assert_close(heads(x, task), _mix_paco_outputs(heads, x, task), rtol=1e-4, atol=1e-4)

    def timer(forward: Callable[[], th.Tensor]) -> Callable[[], float]:
        def run() -> float:
            if th.cuda.is_available():
                th.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(5):
                heads.zero_grad(set_to_none=True)
                forward().sum().backward()
            if th.cuda.is_available():
                th.cuda.synchronize()
            return (time.perf_counter() - start) / 5

        return run

    t_compose, t_mix = alternate(timer(lambda: heads(x, task)), timer(lambda: _mix_paco_outputs(heads, x, task)), args.rounds)
    name = "PaCo layers: compose T task weights vs mix K outputs per sample, 39->3x400->8, batch 1280"
    results.append(Result(name, t_compose, t_mix, t_mix / t_compose, "speed-up", "report"))
    return results


def bench_brc(args: argparse.Namespace) -> list[Result]:
    """
    BRC step (Nauman et al. 2025: BroNet actor and critic, categorical critic with 101 atoms, learned task embedding,
    per-task reward normalisation, gradient clipping) vs plain MTSAC (3x400, batch 1280, disentangled alpha), MT10
    shapes: at the sizes of plain MTSAC (a 400-wide BroNet with one residual block has the 3 layers of 3x400: the cost of
    BRC's extra operations), then at hyperparams/brc.yml's MT10 sizes (critic 1024 wide with 2 blocks, actor 256 with 1,
    batch 1024, 2 gradient steps per vector step: the ratio is per gradient step).
    """
    from mtsb3.recipes import brc

    common = dict(n_tasks=10, buffer_transitions=args.buffer, device=args.device)
    plain = make_model(MTSAC, batch_size=1280, disentangled_alpha=True, **common)
    brc_kwargs = dict(ent_coef="auto_0.1", target_entropy=-2.0, normalize_task_returns=10.0, max_grad_norm=1.0, **common)
    results = []
    for name, batch_size, recipe_kwargs in (
        ("BRC at MTSAC's sizes (400x1 BroNets, batch 1280)", 1280, dict(critic_width=400, critic_blocks=1, actor_width=400)),
        ("BRC at brc.yml's MT10 sizes (critic 1024x2, actor 256x1, batch 1024)", 1024, dict(critic_width=1024)),
    ):
        model = make_model(MTSAC, batch_size=batch_size, policy_kwargs=brc(**recipe_kwargs), **brc_kwargs)
        t_model, t_plain = alternate(step_timer(model, args.steps), step_timer(plain, args.steps), args.rounds)
        results.append(Result(f"{name} vs plain MTSAC, MT10", t_model, t_plain, t_model / t_plain, "time", "report"))
        del model
    return results


def bench_softmod(args: argparse.Namespace) -> list[Result]:
    """
    Soft Modularization MTSAC steps vs plain SB3 SAC (3x400) at the MT10 shapes (batch 1280, disentangled alpha): the
    throughput ratio, and the FLOP ratio (SAC's matmul FLOPs per step / the other's: the throughput ratio if both ran their
    matmuls at the same speed).

    - The ``soft_modularization`` recipe: mtrl's networks (4 modules, 2 modular layers: 400 hidden units, then the output
      layer; the critic routes on the action too).
    - :class:`~mtsb3.common.soft_modularization.SoftModularizationExtractor` (the routed body as a features extractor, for
      any SB3 algorithm) with 2 modular layers of 400 and SB3's heads (a 400-unit Q head): 4x400x400 more per network.
    """
    from mtsb3.common.soft_modularization import SoftModularizationExtractor
    from mtsb3.recipes import soft_modularization

    common = dict(n_tasks=10, batch_size=1280, buffer_transitions=args.buffer, device=args.device)
    extractor = dict(
        features_extractor_class=SoftModularizationExtractor,
        features_extractor_kwargs=dict(
            n_modules=4, n_layers=2, module_hidden=400, embedding_dim=50, embedding_net_arch=[50, 50]
        ),
        net_arch=dict(pi=[], qf=[400]),
    )
    sac = make_model(SAC, **common)
    sac_flops = step_flops(sac)
    results = []
    for name, policy_kwargs, target in (
        (
            "Soft Modularization MTSAC (mtrl's networks: 4 modules, 400 hidden units) vs SAC, MT10",
            soft_modularization(),
            ">= 0.6",
        ),
        ("SoftModularizationExtractor MTSAC (2 modular layers of 400, 400-unit Q head) vs SAC, MT10", extractor, "report"),
    ):
        model = make_model(MTSAC, policy_kwargs=policy_kwargs, disentangled_alpha=True, **common)
        t_model, t_sac = alternate(step_timer(model, args.steps), step_timer(sac, args.steps), args.rounds)
        note = f"FLOP ratio {sac_flops / step_flops(model):.3f}"
        results.append(Result(name, t_model, t_sac, t_sac / t_model, "throughput", target, note))
        del model
    return results


SECTIONS: dict[str, Callable[[argparse.Namespace], list[Result]]] = {
    "mtsac": bench_mtsac,
    "multi_head": bench_multi_head,
    "care": bench_care,
    "batched_experts": bench_batched_experts,
    "pixel": bench_pixel,
    "grad_methods": bench_grad_methods,
    "distral": bench_distral,
    "moore": bench_moore,
    "paco": bench_paco,
    "brc": bench_brc,
    "softmod": bench_softmod,
}


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="comparisons to run")
    parser.add_argument("--rounds", type=int, default=11, help="A/B rounds (medians over these)")
    parser.add_argument("--steps", type=int, default=2, help="gradient steps per timed call")
    parser.add_argument("--buffer", type=int, default=20_000, help="synthetic transitions in each replay buffer")
    parser.add_argument("--pixel-buffer", type=int, default=512, help="synthetic pixel transitions per replay buffer")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    print(f"torch {th.__version__}, device {args.device}, {args.threads} thread(s), {args.rounds} rounds x {args.steps} steps")
    results = []
    for name in args.sections:
        for result in SECTIONS[name](args):
            results.append(result)
            print(
                f"{result.name}: {result.time_a * 1e3:.1f} ms vs {result.time_b * 1e3:.1f} ms per step, "
                f"{result.how} ratio {result.ratio:.3f} (target {result.target})" + (f"; {result.note}" * bool(result.note)),
                flush=True,
            )
    return results


if __name__ == "__main__":
    main()
