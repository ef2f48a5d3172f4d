"""Evaluation videos: one episode per task, written as MP4/GIF into the run folder and logged to TensorBoard (headless)."""

from __future__ import annotations

import glob
import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch as th

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.callbacks import MultiTaskEvalCallback, record_task_episodes
from mtsb3.common.videos import video_path, write_video
from mtsb3.recipes import pixel_sac

th.set_num_threads(1)


def _tensorboard_images(folder: str) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run,) = glob.glob(os.path.join(folder, "*"))
    events = EventAccumulator(run, size_guidance={"images": 0})
    events.Reload()
    return {tag: events.Images(tag) for tag in events.Tags()["images"]}


def _run(env_id: str, tasks: list[int], env_kwargs: dict, policy_kwargs: dict, video_format: str, tmp_path) -> MTSAC:
    kwargs = dict(render_mode="rgb_array", max_episode_steps=5, **env_kwargs)
    env = make_mt_vec_env(env_id, tasks=tasks, seed=0, env_kwargs=kwargs)
    eval_env = make_mt_vec_env(env_id, tasks=tasks, seed=1, env_kwargs=kwargs)
    model = MTSAC(
        "MultiInputPolicy",
        env,
        policy_kwargs=policy_kwargs,
        learning_starts=100,
        buffer_size=200,
        seed=0,
        tensorboard_log=str(tmp_path / "tb"),
    )
    videos = str(tmp_path / "videos")
    callback = MultiTaskEvalCallback(eval_env, eval_freq=2, verbose=0, video_folder=videos, video_format=video_format)
    model.learn(2 * len(tasks), callback=callback)  # one evaluation, at the second step
    return model


@pytest.mark.parametrize("video_format", ["mp4", "gif"])
def test_metaworld_videos_one_per_task_named_by_task_and_timestep(video_format, tmp_path):
    pytest.importorskip("metaworld")
    _run("MT-MetaWorld-MT10-v0", [0, 2], dict(width=32, height=24), dict(net_arch=[8]), video_format, tmp_path)
    files = sorted(os.listdir(tmp_path / "videos"))
    assert files == [f"pick-place-v3_4.{video_format}", f"reach-v3_4.{video_format}"]
    frames = iio.imread(tmp_path / "videos" / files[0])
    assert frames.shape == (5, 24, 32, 3)  # the reset frame and the frames of 4 of the 5 steps (the 5th ends it)
    assert frames.std() > 0  # a rendered scene, not a blank frame
    images = _tensorboard_images(str(tmp_path / "tb"))
    assert set(images) == {"eval/reach-v3/video", "eval/pick-place-v3/video"}
    assert images["eval/reach-v3/video"][0].step == 4 and images["eval/reach-v3/video"][0].width == 32


def test_hipbmdp_pixel_videos(tmp_path):
    pytest.importorskip("dm_control")
    pixels = dict(height=32, width=32)
    policy_kwargs = pixel_sac(net_arch=[8], features_dim=4, num_layers=1, num_filters=2)
    _run("MT-HiPBMDP-Finger-Spin-vary-size-v0", [3], pixels, policy_kwargs, "mp4", tmp_path)
    assert os.listdir(tmp_path / "videos") == ["size_4_2.mp4"]
    frames = iio.imread(tmp_path / "videos" / "size_4_2.mp4")
    assert frames.shape == (5, 32, 32, 3) and frames.std() > 0


def test_record_needs_rendering_sub_envs_and_formats_are_checked(tmp_path):
    env = make_mt_vec_env("MT-PointGoal-v0", seed=0)
    model = MTSAC("MultiInputPolicy", env, policy_kwargs=dict(net_arch=[8]), buffer_size=100)
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        record_task_episodes(model, env)
    with pytest.raises(ValueError, match="Unsupported video_format 'avi'"):
        MultiTaskEvalCallback(env, video_folder=str(tmp_path), video_format="avi")
    with pytest.raises(ValueError, match="Unsupported video format 'avi'"):
        write_video(str(tmp_path / "x.avi"), np.zeros((2, 4, 4, 3), np.uint8), 10)
    assert video_path("runs", "button press/v3", 7, "gif") == os.path.join("runs", "button_press_v3_7.gif")
