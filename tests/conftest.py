"""Shared fixtures: the one Hydra config fixture, and one small synthetic dataset per test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ekya.hydra_compose import compose_config
from ekya.process import set_env_policies

set_env_policies()  # as the entry points do, before any test loads torch

from ekya.labels.teachers import GroundTruthTeacher, apply_teacher  # noqa: E402
from ekya.streams.samples import StreamSet  # noqa: E402
from ekya.streams.synthetic import load_synthetic  # noqa: E402

from helpers.stores import seed_store  # noqa: E402

#: Small enough to generate in about a second, big enough to train a model that beats chance.
SMALL = dict(seed=0, cameras=4, chunks=4, chunk_seconds=100.0, samples_per_chunk=60, image_size=40)


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory: pytest.TempPathFactory) -> StreamSet:
    """A 4-camera, 4-window synthetic StreamSet with 60 samples per camera and window, labelled by its ground truth."""
    return apply_teacher(load_synthetic(tmp_path_factory.mktemp("synthetic"), **SMALL), GroundTruthTeacher())


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dataset cache for the session's runs (a generated dataset is keyed by its spec, so sharing is safe)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One base-model cache for the session's runs (keyed by everything that shapes a base model, so sharing
    changes no number: tests/execution/test_emulate_cli.py checks that)."""
    return tmp_path_factory.mktemp("base_models")


@pytest.fixture
def make_cfg(tmp_path: Path, data_cache: Path, base_cache: Path,
             monkeypatch: pytest.MonkeyPatch) -> Callable[..., DictConfig]:
    """Compose the real config as ``python -m ekya OVERRIDES`` started in ``tmp_path`` would.

    ``${hydra:...}`` resolves (the MLflow store and artifacts land in tmp_path, the store copied from an
    empty one), datasets are cached in the session's data cache, base models in the session's base-model
    cache unless the overrides name one, and Hydra's global state is cleared afterwards.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EKYA_DATA", str(data_cache))
    seed_store(tmp_path)

    def make(*overrides: str) -> DictConfig:
        cfg = compose_config([*overrides, f"hydra.run.dir={tmp_path / 'outputs'}"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
            if "base_cache" in cfg.runtime and cfg.runtime.base_cache is None:
                cfg.runtime.base_cache = str(base_cache)
        return cfg

    yield make
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
