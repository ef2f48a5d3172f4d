"""
MTSAC learning checks.

* CI: MT-PointGoal-v0 (4 goals hidden from ``env_obs``, so the policy must use the task; 30-step episodes). Standing
  still scores -30 per episode, a random policy about -31, the optimum about -5.5. After 4000 steps every config scores
  between -15 and -12 on the seeds tried (0-3), so the asserted -20 has a wide margin.
* ``-m expensive``: README's main job at its full budget on MT-MetaWorld-MT10-v0 (tests/test_main_job.py).
"""

from __future__ import annotations

import pytest
from stable_baselines3.common.vec_env import SubprocVecEnv

from mtsb3 import MTSAC, TaskBalancedReplayBuffer, make_mt_vec_env
from mtsb3.common.callbacks import evaluate_per_task, summarize

POINT_GOAL = "MT-PointGoal-v0"
STEPS = 4000
MEAN_RETURN_THRESHOLD = -20.0  # still -30, optimum -5.5
TASK_RETURN_THRESHOLD = -25.0  # every task must improve on standing still

CONFIGS = {
    "mtsac": dict(),
    "disentangled_alpha": dict(disentangled_alpha=True),
    "multi_head_balanced": dict(
        disentangled_alpha=True, replay_buffer_class=TaskBalancedReplayBuffer, policy_kwargs=dict(multi_head=True)
    ),
    # the updates run while the sub-env processes step (mtsb3.common.overlap)
    "overlap": dict(disentangled_alpha=True, overlap_collection=True),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_mtsac_learns_point_goal(config):
    kwargs = dict(CONFIGS[config])
    policy_kwargs = {"net_arch": [64, 64], **kwargs.pop("policy_kwargs", {})}
    subproc = dict(vec_env_cls=SubprocVecEnv, vec_env_kwargs=dict(start_method="fork"))
    env = make_mt_vec_env(POINT_GOAL, seed=0, **(subproc if kwargs.get("overlap_collection") else {}))
    model = MTSAC(
        "MultiInputPolicy",
        env,
        learning_starts=400,
        batch_size=128,
        learning_rate=1e-3,
        policy_kwargs=policy_kwargs,
        seed=0,
        **kwargs,
    )
    model.learn(STEPS)
    env.close()
    results = evaluate_per_task(model, make_mt_vec_env(POINT_GOAL, seed=1000), n_eval_episodes=2)
    returns = [r["mean_reward"] for r in results.values()]
    assert summarize(results)["mean_reward"] > MEAN_RETURN_THRESHOLD, results
    assert min(returns) > TASK_RETURN_THRESHOLD, results
