"""Shared fixtures: one small synthetic dataset per test session (generated in a temp dir, ~1 s)."""

from __future__ import annotations

# ekya's package import sets OMP_WAIT_POLICY=PASSIVE before torch loads (see src/ekya/__init__.py).
import pytest

from ekya.streams.samples import StreamSet
from ekya.streams.synthetic import load_synthetic

#: Small enough to generate in about a second, big enough to train a model that beats chance.
SMALL = dict(seed=0, cameras=4, windows=4, window_seconds=100.0, samples_per_window=60, image_size=40)


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory: pytest.TempPathFactory) -> StreamSet:
    """A 4-camera, 4-window synthetic StreamSet with 60 samples per camera and window."""
    return load_synthetic(tmp_path_factory.mktemp("synthetic"), **SMALL)
