"""The synthetic dataset: deterministic bytes, schema via the real loader, caching, atomicity, drift, its own clock."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from ekya.errors import EkyaError
from ekya.hydra_compose import compose_config
from ekya.streams import synthetic_dataset
from ekya.streams.classes import SIX_CLASSES
from ekya.streams.samplelist import read_frame_samplelist, samplelist_path
from ekya.streams.samples import StreamSet, validate_samples
from ekya.streams.synthetic import load_synthetic
from ekya.streams.synthetic_dataset import SyntheticSpec, write_dataset

TINY = dict(cameras=2, chunks=2, chunk_seconds=50.0, samples_per_chunk=12, image_size=32)


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = write_dataset(tmp_path / "a", SyntheticSpec(seed=3, **TINY), workers=1)
    b = write_dataset(tmp_path / "b", SyntheticSpec(seed=3, **TINY), workers=2)
    c = write_dataset(tmp_path / "c", SyntheticSpec(seed=4, **TINY))
    assert a.name == b.name != c.name  # the cache key covers the seed
    assert digest(a) == digest(b)  # however many threads wrote it
    assert digest(a) != digest(c)
    ta = load_synthetic(tmp_path / "a", seed=3, **TINY).samples
    tc = load_synthetic(tmp_path / "c", seed=4, **TINY).samples
    assert ta.equals(load_synthetic(tmp_path / "b", seed=3, **TINY).samples)
    cols = ["label", "x0", "y0", "x1", "y1", "timestamp"]
    assert not ta[cols].equals(tc[cols])


def test_schema_through_the_frame_samplelist_loader(small_synthetic: StreamSet) -> None:
    ss = small_synthetic
    spec = ss.meta["synthetic"]["spec"]
    assert ss.name == "synthetic" and ss.classes == SIX_CLASSES
    assert ss.cameras == [f"cam{i:02d}" for i in range(spec["cameras"])]
    validate_samples(ss.samples, "synthetic")
    for cam in ss.cameras:
        # the on-disk list is the original's frame samplelist layout, read by the shared loader
        df = read_frame_samplelist(samplelist_path(ss.root, cam))
        assert df[["label", "x0", "y0", "x1", "y1", "timestamp"]].equals(
            ss.camera(cam)[["label", "x0", "y0", "x1", "y1", "timestamp"]])
        per = np.bincount((df.timestamp // spec["chunk_seconds"]).astype(int))
        assert per.tolist() == [spec["samples_per_chunk"]] * spec["chunks"]
        assert set(df.label) == set(range(len(SIX_CLASSES)))
        assert (df.x1 <= spec["image_size"]).all() and (df.y1 <= spec["image_size"]).all()
        assert ((df.x1 - df.x0) >= 8).all() and ((df.y1 - df.y0) >= 8).all()
        first = ss.image_path(df.path.iloc[0])
        assert first.suffix == ".jpg" and first.parent.name == "frame_images"
        with Image.open(first) as im:
            assert im.size == (spec["image_size"], spec["image_size"]) and im.mode == "RGB"


def test_cached_dataset_is_reused_not_rewritten(tmp_path: Path) -> None:
    where = write_dataset(tmp_path, SyntheticSpec(**TINY))
    stamp = (where / "meta.json").stat().st_mtime_ns
    assert write_dataset(tmp_path, SyntheticSpec(**TINY)) == where
    assert (where / "meta.json").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [where.name]


def test_interrupted_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synthetic_dataset._write_camera

    def fail_on_second(out: Path, d, spec, index: int) -> None:
        if index == 1:
            raise KeyboardInterrupt
        real(out, d, spec, index)

    monkeypatch.setattr(synthetic_dataset, "_write_camera", fail_on_second)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path, SyntheticSpec(**TINY))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(synthetic_dataset, "_write_camera", real)
    assert (write_dataset(tmp_path, SyntheticSpec(**TINY)) / "meta.json").is_file()


def test_cameras_drift_by_different_amounts(tmp_path: Path) -> None:
    """The hardest camera's frames change far more between its first and last window than the mildest's."""
    ss = load_synthetic(tmp_path, seed=0, cameras=4, chunks=4, chunk_seconds=100.0, samples_per_chunk=60,
                        image_size=40, drift_min=0.03)
    drift = ss.meta["drift"]
    hard, mild = max(drift, key=drift.get), min(drift, key=drift.get)
    assert drift[hard] == 1.0 and drift[mild] == 0.03
    spec = ss.meta["synthetic"]["spec"]

    def stats(cam: str, window: int) -> np.ndarray:
        df = ss.camera(cam)
        df = df[(df.timestamp // spec["chunk_seconds"]) == window]
        px = np.stack([np.asarray(Image.open(ss.image_path(p)), dtype=float) for p in df.path])
        return np.array([px.mean(), px.std(axis=(1, 2)).mean()])  # brightness, contrast

    last = spec["chunks"] - 1
    change = {cam: np.abs(stats(cam, last) - stats(cam, 0)).sum() for cam in (hard, mild)}
    assert change[hard] > 20 and change[hard] > 4 * change[mild], change


@pytest.mark.parametrize("key,value", [("cameras", 0), ("samples_per_chunk", 1), ("image_size", 8), ("chunks", 0),
                                       ("chunk_seconds", 0.0), ("drift_min", 0.0), ("drift_max", 1.5)])
def test_bad_parameters_name_their_key(tmp_path: Path, key: str, value: int) -> None:
    with pytest.raises(EkyaError, match=f"dataset.{key}"):
        load_synthetic(tmp_path, **(TINY | {key: value}))
    assert list(tmp_path.iterdir()) == []


def _configured_dataset(root: Path, *overrides: str) -> Path:
    """Load dataset=synthetic as a run composes it (the runtime reads dataset.windows; the loader never sees it)."""
    cfg = compose_config([f"dataset.root={root}", "dataset.cameras=2", "dataset.windows=2",
                          "dataset.samples_per_chunk=8", "dataset.image_size=16", *overrides])
    kwargs = OmegaConf.to_container(cfg.dataset, resolve=True)
    assert kwargs.pop("windows") == kwargs["chunks"] == 2  # by default one chunk per window
    ss = instantiate(kwargs)
    assert (ss.samples["teacher_label"] == -1).all()  # loaders return unlabelled data
    return ss.root


def test_window_length_does_not_change_the_dataset(tmp_path: Path) -> None:
    default = _configured_dataset(tmp_path)
    shorter = _configured_dataset(tmp_path, "window.seconds=100")
    assert shorter == default and [p.name for p in tmp_path.iterdir()] == [default.name]  # one cache entry
    other = _configured_dataset(tmp_path / "b", "window.seconds=100", "dataset.chunk_seconds=100")
    assert digest(other) != digest(default)  # the generator's own clock does shape the data
