"""Waymo Open, as the original's preprocessed classification crops: one camera per ``{name}_labels.csv``.

Layout (the original's ``waymo_classification_images.tar``)::

    <root>/<name>_labels.csv                                  one stream, e.g. phx_020_029, sf_000_009
    <root>/<segment>/<camera name>/<image name>               224x224 crops

CSV header: idx, image name, class, timestamp, weather, location, time of day, segment, frame index,
camera name, label id, xmin, ymin, xmax, ymax, detection difficulty level, tracking difficulty level.
``class`` is vehicle 0, pedestrian 1, sign 2, cyclist 3; lists labelled with COCO ids instead are read
with ``class_numbering=coco91|coco80`` through ``ekya.streams.classes`` (unmapped ids dropped before
numbering). ``timestamp`` is Waymo's frame time in microseconds.

Time: a stream is ~10 consecutive 20 s segments of one location recorded on different days. Segments
are ordered by their first timestamp and laid end to end: within a segment t = (ts - segment start),
and the next segment starts one frame period (0.1 s, Waymo's 10 Hz) after the previous one's last
frame. The raw microseconds stay in ``timestamp_us``; the box in the full camera frame stays in
``frame_x0..frame_y1``; the sample's own box covers the whole crop (``crop_size`` px square).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.streams.build import load_cameras
from ekya.streams.classes import WAYMO_CLASSES, class_map
from ekya.streams.samples import StreamSet

FRAME_PERIOD = 0.1
LABEL_COLUMNS: tuple[str, ...] = (
    "idx", "image name", "class", "timestamp", "weather", "location", "time of day", "segment", "frame index",
    "camera name", "label id", "xmin", "ymin", "xmax", "ymax", "detection difficulty level",
    "tracking difficulty level",
)
_META = {"weather": "weather", "location": "location", "time of day": "time_of_day", "segment": "segment",
         "frame index": "frame_index", "camera name": "camera_name", "label id": "label_id",
         "detection difficulty level": "detection_difficulty", "tracking difficulty level": "tracking_difficulty"}


def available_streams(root: Path) -> list[str]:
    """Names of the ``{name}_labels.csv`` lists under root, sorted."""
    return sorted(p.name[: -len("_labels.csv")] for p in Path(root).glob("*_labels.csv"))


def read_waymo_labels(csv_path: Path, camera: str, class_numbering: str = "waymo") -> pd.DataFrame:
    """Read one label CSV into time-ordered rows (idx not yet set); errors name the file and line."""
    if not csv_path.is_file():
        raise EkyaError(f"{csv_path}: label list not found; extract waymo_classification_images.tar into "
                        "dataset.root (or fix dataset.cameras)")
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise EkyaError(f"{csv_path}: not a readable CSV ({e}); re-extract it") from None
    missing = [c for c in LABEL_COLUMNS if c not in raw.columns]
    if missing:
        raise EkyaError(f"{csv_path}: header lacks {missing}; expected the columns {list(LABEL_COLUMNS)}")
    raw["_line"] = np.arange(len(raw)) + 2
    num = {}
    for col in ("class", "timestamp", "xmin", "ymin", "xmax", "ymax"):
        v = pd.to_numeric(raw[col], errors="coerce")
        bad = v.isna().to_numpy().nonzero()[0]
        if len(bad):
            raise EkyaError(f"{csv_path}: line {int(bad[0]) + 2}: column {col!r} holds {raw[col].iloc[bad[0]]!r}, "
                            "not a number; fix or delete that row")
        num[col] = v.to_numpy()
    cls = num["class"].astype(np.int64)
    if class_numbering == "waymo":
        bad = ((cls < 0) | (cls >= len(WAYMO_CLASSES))).nonzero()[0]
        if len(bad):
            raise EkyaError(f"{csv_path}: line {int(bad[0]) + 2}: class {int(cls[bad[0]])} is outside 0..3 "
                            f"({', '.join(WAYMO_CLASSES)}); fix the row, or set dataset.class_numbering=coco91|coco80 "
                            "for COCO-labelled lists")
        keep = np.ones(len(cls), bool)
    else:
        cmap = class_map(class_numbering, "waymo")  # type: ignore[arg-type]
        keep = np.array([int(c) in cmap for c in cls], bool)
        cls = np.array([cmap.get(int(c), -1) for c in cls], np.int64)
    cam_dir = raw["camera name"].str.strip()
    path = [f"{s}/{c}/{i}" if c else f"{s}/{i}" for s, c, i in zip(raw["segment"], cam_dir, raw["image name"])]
    df = pd.DataFrame({
        "camera": camera, "path": path, "label": cls, "timestamp_us": num["timestamp"].astype(np.int64),
        "frame_x0": num["xmin"], "frame_y0": num["ymin"], "frame_x1": num["xmax"], "frame_y1": num["ymax"],
        **{new: raw[old].to_numpy() for old, new in _META.items()},
        "source": str(csv_path), "source_row": raw["_line"].to_numpy(),
    })[keep]
    if df.empty:
        raise EkyaError(f"{csv_path}: no rows with a class of {list(WAYMO_CLASSES)}; is dataset.class_numbering right?")
    first = df.groupby("segment")["timestamp_us"].transform("min")
    df = df.assign(_first=first).sort_values(["_first", "segment", "timestamp_us", "camera_name", "label_id",
                                              "source_row"], kind="stable")
    df["timestamp"] = _timestamps(df["segment"].to_numpy(), df["timestamp_us"].to_numpy())
    return df.drop(columns="_first").reset_index(drop=True)


def _timestamps(segment: np.ndarray, ts_us: np.ndarray) -> np.ndarray:
    """Seconds since the stream's start with segments laid end to end (see module doc)."""
    t = np.zeros(len(ts_us))
    offset, start = 0.0, 0
    while start < len(ts_us):
        end = start
        while end < len(ts_us) and segment[end] == segment[start]:
            end += 1
        t[start:end] = offset + (ts_us[start:end] - ts_us[start]) / 1e6
        offset = t[end - 1] + FRAME_PERIOD
        start = end
    return t


def load_waymo(
    root: str | Path,
    cameras: Sequence[str] | None = None,
    pretrain_cameras: Sequence[str] = (),
    class_numbering: str = "waymo",
    crop_size: int = 224,
    check_images: bool = True,
    name: str = "waymo",
) -> StreamSet:
    """Load the preprocessed Waymo crops unlabelled, one camera per label list.

    Pretraining lists go to ``meta['pretrain']``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EkyaError(f"{root}: directory not found; extract waymo_classification_images.tar there "
                        "(or set dataset.root)")
    available = available_streams(root)
    if not available:
        raise EkyaError(f"{root}: no *_labels.csv lists; extract waymo_classification_images.tar there")
    if class_numbering not in ("waymo", "coco91", "coco80"):
        raise EkyaError(f"dataset.class_numbering={class_numbering!r}; use waymo, coco91 or coco80")

    def read(camera: str) -> pd.DataFrame:
        df = read_waymo_labels(root / f"{camera}_labels.csv", camera, class_numbering)
        df["x0"], df["y0"], df["x1"], df["y1"] = 0, 0, int(crop_size), int(crop_size)  # the crop is the object
        return df

    meta: dict[str, Any] = {"frame_period": FRAME_PERIOD}
    return load_cameras(name, root, read, available, cameras, pretrain_cameras, f"{root} (<name>_labels.csv lists)",
                        WAYMO_CLASSES, meta, check_images)
