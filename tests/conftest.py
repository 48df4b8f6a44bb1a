"""Shared fixtures: one small synthetic dataset per test session (generated in a temp dir, ~1 s)."""

from __future__ import annotations

import os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a shared machine
# spinning threads starve each other (measured: 2-thread training 10-30 img/s spinning vs ~250 passive).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

from ekya.streams.samples import StreamSet  # noqa: E402
from ekya.streams.synthetic import load_synthetic  # noqa: E402

#: Small enough to generate in about a second, big enough to train a model that beats chance.
SMALL = dict(seed=0, cameras=4, windows=4, window_seconds=100.0, samples_per_window=60, image_size=40)


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory: pytest.TempPathFactory) -> StreamSet:
    """A 4-camera, 4-window synthetic StreamSet with 60 samples per camera and window."""
    return load_synthetic(tmp_path_factory.mktemp("synthetic"), **SMALL)
