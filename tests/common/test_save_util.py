"""Checkpoint files: a killed save's temporary file is removed by the next successful save of the same path."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mtsb3 import MTSAC, make_mt_vec_env
from mtsb3.common.save_util import atomic_write


def _leftover(folder: Path, name: str, age_s: float) -> Path:
    """A temporary file as a save killed before its ``os.replace`` leaves it, last written ``age_s`` seconds ago."""
    path = folder / name
    path.write_bytes(b"partial")
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


def test_next_save_removes_the_temporaries_of_killed_saves(tmp_path):
    stale = _leftover(tmp_path, ".model.0123456789ab.tmp.zip", age_s=60)
    other_path = _leftover(tmp_path, ".model2.0123456789ab.tmp.zip", age_s=60)  # another checkpoint's
    other_suffix = _leftover(tmp_path, ".model.0123456789ab.tmp.pkl", age_s=60)  # the buffer's, left for its save
    live = _leftover(tmp_path, ".model.fedcba987654.tmp.zip", age_s=-60)  # written during this save: concurrent
    atomic_write(tmp_path / "model", "zip", lambda target: Path(target).write_bytes(b"model"))
    assert (tmp_path / "model.zip").read_bytes() == b"model"
    assert not stale.exists()
    assert other_path.exists() and other_suffix.exists() and live.exists()


def test_model_and_buffer_saves_clean_up(tmp_path):
    model = MTSAC("MultiInputPolicy", make_mt_vec_env("MT-PointGoal-v0"), buffer_size=100, policy_kwargs=dict(net_arch=[4]))
    _leftover(tmp_path, ".mtsac.0123456789ab.tmp.zip", age_s=60)
    _leftover(tmp_path, ".buffer.0123456789ab.tmp.pkl", age_s=60)
    model.save(tmp_path / "mtsac")
    model.save_replay_buffer(tmp_path / "buffer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["buffer.pkl", "mtsac.zip"]
