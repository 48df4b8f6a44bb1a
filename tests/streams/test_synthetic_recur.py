"""Recurring scenes (dataset.recur): the stream drifts away and comes back; off, the dataset is as it always was."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from ekya.hydra_compose import compose_config
from ekya.streams.samples import StreamSet
from ekya.streams.synthetic import load_synthetic
from ekya.streams.synthetic_dataset import SyntheticSpec

SPEC = dict(seed=0, cameras=3, chunks=6, chunk_seconds=100.0, samples_per_chunk=150, image_size=24)


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, StreamSet]:
    root = tmp_path_factory.mktemp("recur")
    return {recur: load_synthetic(root, recur=recur, **SPEC) for recur in (False, True)}


def chunk_stats(ss: StreamSet, cam: str) -> tuple[np.ndarray, np.ndarray]:
    """Per chunk: the class histogram (fractions) and the mean frame brightness."""
    df = ss.camera(cam)
    chunk = (df["timestamp"] // SPEC["chunk_seconds"]).astype(int).to_numpy()
    hist = np.stack([np.bincount(df["label"].to_numpy()[chunk == k], minlength=6) for k in range(SPEC["chunks"])])
    light = np.array([np.mean([np.asarray(Image.open(ss.image_path(p)), dtype=float).mean()
                               for p in df["path"].to_numpy()[chunk == k]]) for k in range(SPEC["chunks"])])
    return hist / hist.sum(axis=1, keepdims=True), light


def test_recurring_scenes_drift_away_and_return(streams) -> None:
    ss = streams[True]
    drift = ss.meta["drift"]
    cam = max(drift, key=drift.get)
    mix, light = chunk_stats(ss, cam)
    tv = lambda a, b: 0.5 * float(np.abs(mix[a] - mix[b]).sum())  # noqa: E731
    last = SPEC["chunks"] - 1
    print(f"class-mix distance first-last {tv(0, last):.3f}, first-middle {tv(0, 2):.3f}, {tv(0, 3):.3f}; "
          f"brightness per chunk {np.round(light, 1)}")
    assert tv(0, last) < 0.5 * min(tv(0, 2), tv(0, 3))
    assert abs(light[0] - light[last]) < 0.3 * min(light[0] - light[2], light[0] - light[3])
    one_way, one_way_light = chunk_stats(streams[False], cam)
    # Without recur the end of the stream is as far from its start as drift takes it.
    assert 0.5 * float(np.abs(one_way[0] - one_way[last]).sum()) > 2 * tv(0, last)
    assert one_way_light[0] - one_way_light[last] > 3 * abs(light[0] - light[last])


def test_recur_off_keeps_the_cache_key_and_recur_on_gets_its_own(streams) -> None:
    # The default dataset's cache directory name from before recurring scenes existed: cached
    # datasets (and their bytes, which it keys) stay valid.
    assert SyntheticSpec().key() == "477f23831503e44e"
    assert SyntheticSpec(recur=True).key() != SyntheticSpec().key()
    assert streams[True].root != streams[False].root
    assert "recur" not in streams[False].meta["synthetic"]["spec"]
    assert streams[True].meta["synthetic"]["spec"]["recur"] is True


def test_dataset_synthetic_recurring_composes_with_recur_on() -> None:
    cfg = compose_config(["dataset=synthetic_recurring"])
    assert cfg.dataset.recur is True and cfg.dataset._target_ == compose_config([]).dataset._target_
    assert compose_config([]).dataset.recur is False


def test_the_default_dataset_is_the_spec_the_cache_key_above_pins() -> None:
    # conf/dataset/synthetic.yaml is what a run generates; the spec's own defaults may not drift from it
    keys = {f for f in SyntheticSpec.__dataclass_fields__}
    group = {k: v for k, v in OmegaConf.to_container(compose_config([]).dataset, resolve=True).items() if k in keys}
    assert set(group) == keys and SyntheticSpec(**group) == SyntheticSpec()
