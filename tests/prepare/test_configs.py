"""Every dataset, labeler and prepare config composes, and every key is read by its target."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_method, instantiate

from ekya.labels.teachers import GroundTruthTeacher, NoisyTeacher
from ekya.labels.trained import TrainedTeacher

CONF = Path(__file__).resolve().parents[2] / "conf"
DATASETS = ["cityscapes", "waymo", "urban_traffic", "urban_building", "mp4"]


def _compose(config_name, overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_configs_match_their_loader(name):
    cfg = _compose(None, [f"+dataset={name}", "+seed=0"]).dataset
    params = inspect.signature(get_method(cfg._target_)).parameters
    keys = [k for k in cfg if k != "_target_"]
    assert not [k for k in keys if k not in params], f"{name}.yaml has keys its loader does not take"
    assert cfg.name == name and cfg.windows >= 1 and cfg.labeler._target_.endswith("GroundTruthTeacher")


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
