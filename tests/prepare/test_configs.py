"""Every dataset, labeler and prepare config composes, and every key is read by its target."""

from __future__ import annotations

import inspect

import pytest
from hydra.utils import get_method, instantiate

from ekya.hydra_compose import compose_config
from ekya.labels.teachers import GroundTruthTeacher, NoisyTeacher
from ekya.labels.trained import TrainedTeacher

DATASETS = ["cityscapes", "waymo", "urban_traffic", "urban_building", "mp4", "synthetic"]
#: Keys of a dataset config that the runtime reads, not the loader (the loader is instantiated without them).
RUNTIME_KEYS = ("windows",)


def _compose(config_name, overrides):
    return compose_config(overrides, config_name=config_name)


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_configs_match_their_loader(name):
    cfg = _compose(None, [f"+dataset={name}", "+seed=0"]).dataset
    params = inspect.signature(get_method(cfg._target_)).parameters
    keys = [k for k in cfg if k != "_target_" and k not in RUNTIME_KEYS]
    assert not [k for k in keys if k not in params], f"{name}.yaml has keys its loader does not take"
    assert not [k for k in RUNTIME_KEYS if k in params], f"{name}'s loader takes a runtime key"
    assert cfg.name == name and cfg.windows >= 1
    assert "labeler" not in cfg  # loaders return unlabelled data; the run applies the top-level labeler


def test_synthetic_generator_clock_is_its_own():
    cfg = _compose(None, ["+dataset=synthetic", "+window.seconds=100"]).dataset
    assert cfg.chunks == cfg.windows == 6 and cfg.chunk_seconds == 200 and cfg.samples_per_chunk == 200
    tiny = _compose("config", ["experiment=tiny", "window.seconds=50"]).dataset
    assert (tiny.cameras, tiny.windows, tiny.chunks, tiny.chunk_seconds, tiny.samples_per_chunk) == (2, 3, 3, 200, 80)


def test_labeler_configs_instantiate():
    for name, cls in [("ground_truth", GroundTruthTeacher), ("noisy", NoisyTeacher), ("trained", TrainedTeacher)]:
        cfg = _compose(None, [f"+labeler={name}", "+seed=7"])
        t = instantiate(cfg.labeler)
        assert isinstance(t, cls)
    assert instantiate(_compose(None, ["+labeler=noisy", "+seed=7"]).labeler).seed == 7
    cls = get_method(_compose(None, ["+labeler=classifier", "+seed=0"]).labeler._target_)
    cfg = _compose(None, ["+labeler=classifier", "+seed=0"]).labeler
    assert not [k for k in cfg if k != "_target_" and k not in inspect.signature(cls).parameters]


def test_prepare_config():
    cfg = _compose("prepare", ["video=/v/*.mp4", "out=/o"])
    assert cfg.video == "/v/*.mp4" and cfg.fps == 1.0 and cfg.detector.kind == "bgsub" and cfg.get("labeler") is None
    from ekya.prepare.detectors import BackgroundSubtractor, TorchvisionDetector

    for kind, cls in [("bgsub", BackgroundSubtractor), ("torchvision", TorchvisionDetector)]:
        params = inspect.signature(cls).parameters
        assert not [k for k in cfg.detector[kind] if k not in params], kind
    cfg = _compose("prepare", ["video=a.mp4", "out=o", "labeler=noisy"])
    assert cfg.labeler._target_.endswith("NoisyTeacher")
