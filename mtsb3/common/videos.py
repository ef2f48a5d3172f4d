"""
Evaluation videos (:class:`~mtsb3.common.callbacks.MultiTaskEvalCallback`'s ``video_folder``): frames written as MP4 or GIF
(imageio) and logged to TensorBoard as an animated image.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecEnv

#: the formats :func:`write_video` writes
VIDEO_FORMATS = ("mp4", "gif")


def video_path(folder: str, task_name: str, timestep: int, video_format: str) -> str:
    """:return: ``<folder>/<task_name>_<timestep>.<format>``, the task name made safe for a file name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", task_name)
    return os.path.join(folder, f"{safe}_{timestep}.{video_format}")


def write_video(path: str, frames: np.ndarray, fps: float) -> None:
    """
    Write ``(T, H, W, 3)`` uint8 frames as an MP4 (ffmpeg, through ``imageio-ffmpeg``) or a looping GIF, by extension.

    :raises ValueError: for another extension
    """
    import imageio.v3 as iio

    extension = os.path.splitext(path)[1].lstrip(".").lower()
    if extension not in VIDEO_FORMATS:
        raise ValueError(f"Unsupported video format {extension!r}: expected one of {VIDEO_FORMATS}")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if extension == "mp4":
        # macro_block_size=1: keep the frame size (ffmpeg would otherwise resize to multiples of 16)
        iio.imwrite(path, frames, fps=fps, macro_block_size=1)
    else:
        iio.imwrite(path, frames, duration=1000.0 / fps, loop=0)


def log_video_to_tensorboard(logger: Logger, tag: str, frames: np.ndarray, fps: float, step: int) -> bool:
    """
    Log frames to the logger's TensorBoard output as an animated GIF image (what TensorBoard's ``add_video`` writes;
    torch's ``add_video`` needs ``moviepy.editor``, which moviepy 2 removed).

    :return: whether a TensorBoard output was there to log to
    """
    import imageio.v3 as iio
    from tensorboard.compat.proto.summary_pb2 import Summary

    writers = [f.writer for f in logger.output_formats if isinstance(f, TensorBoardOutputFormat)]
    if not writers:
        return False
    gif: Any = iio.imwrite("<bytes>", frames, extension=".gif", duration=1000.0 / fps, loop=0)
    height, width, channels = frames.shape[1:]
    image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=gif)
    for writer in writers:
        writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
        writer.flush()
    return True


def render_fps(env: VecEnv) -> float:
    """:return: the sub-envs' ``metadata["render_fps"]`` (30 when they do not say)."""
    try:
        metadata = env.get_attr("metadata", [0])[0]
    except AttributeError:
        metadata = {}
    return float((metadata or {}).get("render_fps") or 30)
