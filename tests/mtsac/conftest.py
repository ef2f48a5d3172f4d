"""Fixtures shared by the MTSAC tests."""

from __future__ import annotations

import pytest
import torch as th


@pytest.fixture(autouse=True)
def _one_thread():
    # the CI machine has 2 cores shared by the whole suite
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)
