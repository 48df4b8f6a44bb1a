"""experiment=tiny on every dataset: only keys each loader takes, and a finished run on real-format data."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import get_method
from omegaconf import OmegaConf
from PIL import Image

from ekya.composition import run_config
from ekya.hydra_compose import CONF_DIR, compose_config
from ekya.streams.samplelist import write_frame_samplelist

DATASETS = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
#: dataset keys the run reads itself; the loader is called without them (ekya.composition)
RUNTIME_KEYS = {"_target_", "windows"}


@pytest.mark.parametrize("name", DATASETS)
def test_tiny_gives_each_loader_only_keys_it_takes(name: str) -> None:
    cfg = compose_config(["experiment=tiny", f"dataset={name}"])
    params = inspect.signature(get_method(cfg.dataset._target_)).parameters
    foreign = sorted(set(cfg.dataset) - RUNTIME_KEYS - set(params))
    assert not foreign, f"experiment=tiny dataset={name} passes {foreign}, which {cfg.dataset._target_} does not take"
    assert cfg.dataset.windows == 3 and cfg.learner.base_epochs == 5  # tiny on every dataset


def test_tiny_keeps_the_synthetic_size() -> None:
    # the same config (hence the same numbers) as when tiny.yaml set the generator's keys itself
    for name in ("synthetic", "synthetic_recurring"):
        d = compose_config(["experiment=tiny", f"dataset={name}"]).dataset
        assert (d.cameras, d.samples_per_chunk, d.windows, d.chunks) == (2, 80, 3, 3), name
    default = compose_config([]).dataset
    assert (default.cameras, default.samples_per_chunk) == (6, 200)  # only experiment=tiny shrinks it


def _urban_traffic(root: Path, cameras: tuple[str, ...], frames: int, every: float) -> Path:
    """Urban Traffic's frame samplelist layout: per camera a CSV and one JPEG per frame, one object each.

    The object's colour follows its class, so a model has something to learn.
    """
    rng = np.random.default_rng(0)
    for camera in cameras:
        labels = rng.integers(0, 6, frames)
        (root / camera / "frame_images").mkdir(parents=True)
        for f, label in enumerate(labels, start=1):
            img = np.full((48, 64, 3), 20, np.uint8)
            img[8:40, 8:56] = (40 * label, 255 - 40 * label, 120)
            Image.fromarray(img).save(root / camera / "frame_images" / f"{f:06d}.jpg")
        rows = pd.DataFrame({"camera": camera, "frame": np.arange(1, frames + 1),
                             "timestamp": np.arange(frames) * every, "label": labels,
                             "x0": 8, "y0": 8, "x1": 56, "y1": 40, "score": 1.0})
        write_frame_samplelist(rows, root / "sample_lists" / "citywise" / f"{camera}.csv")
    return root


def test_tiny_runs_to_the_end_on_real_format_data(make_cfg, tmp_path: Path) -> None:
    # 30 frames 2 s apart per camera: 60 s of video, three 20 s windows
    root = _urban_traffic(tmp_path / "bellevue", ("cam_a", "cam_b"), frames=30, every=2.0)
    cfg = make_cfg("experiment=tiny", "dataset=urban_traffic", f"dataset.root={root}", "dataset.class_numbering=ekya",
                   "window.seconds=20", "threads=1", "~tracking")
    run = run_config(cfg, tmp_path / "run", quiet=True)
    frame = pd.read_csv(tmp_path / "run" / "windows.csv")
    assert sorted(frame["stream"].unique()) == ["cam_a", "cam_b"]  # every camera: tiny names none
    assert sorted(frame["window"].unique()) == [1, 2]  # windows 1 and 2 played after the bootstrap one
    assert frame["accuracy"].between(0, 1).all() and 0 <= run.summary["mean_accuracy"] <= 1
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert saved.dataset.name == "urban_traffic" and "samples_per_chunk" not in saved.dataset
