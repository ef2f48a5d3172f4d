"""train.py's evaluation videos (the ``eval_video`` preset key): one video per task in the run folder, headless."""

from __future__ import annotations

import importlib.util
import os

import imageio.v3 as iio
import pytest

from tests._zoo_helpers import HYPERPARAMS, run_scripts

# rl_zoo3 patches Gymnasium on import: only look it up here, the scripts import it in a child process
if importlib.util.find_spec("rl_zoo3") is None:
    pytest.skip("rl_zoo3 is not installed", allow_module_level=True)


def test_train_records_one_evaluation_video_per_task(tmp_path):
    if importlib.util.find_spec("metaworld") is None:
        pytest.skip("metaworld is not installed")
    argv = ["--algo", "mtmhsac", "--env", "MT-MetaWorld-MT10-v0", "-conf", str(HYPERPARAMS / "small")]
    argv += ["--seed", "0", "-f", "logs", "--num-threads", "1", "-n", "40", "--eval-freq", "20", "--eval-episodes", "1"]
    argv += ["--env-kwargs", "max_episode_steps:3", "width:32", "height:32", "-params", "eval_video:'gif'"]
    output = run_scripts([("train.py", argv)], tmp_path, timeout=600).stdout
    run = tmp_path / "logs" / "mtmhsac" / "MT-MetaWorld-MT10-v0_1"
    videos = sorted(os.listdir(run / "videos"))
    # eval every 20 // 10 = 2 vector steps: at timesteps 20 and 40, one video of each of the 10 tasks
    assert len(videos) == 20 and "reach-v3_20.gif" in videos and "window-close-v3_40.gif" in videos, output[-3000:]
    assert iio.imread(run / "videos" / "reach-v3_20.gif").shape == (3, 32, 32, 3)
