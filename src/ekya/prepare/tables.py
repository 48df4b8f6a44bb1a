"""Turn a loader's rows into a validated StreamSet: per-camera idx, schema checks, image checks, teacher."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ekya.prepare.checks import check_boxes_in_images
from ekya.streams.samples import CLASSES, SAMPLE_COLUMNS, StreamSet, validate_samples

if TYPE_CHECKING:
    from ekya.labels.teachers import Teacher


def number_by_camera(df: pd.DataFrame) -> pd.DataFrame:
    """Give each camera's rows idx 0..n-1 in their current (time) order; cameras sorted by name."""
    df = df.copy()
    df["_cam_order"] = df["camera"].astype(str)
    df["_pos"] = np.arange(len(df))
    df = df.sort_values(["_cam_order", "_pos"], kind="stable").drop(columns=["_cam_order", "_pos"])
    df["idx"] = df.groupby("camera", sort=False).cumcount().astype(np.int64)
    return df.reset_index(drop=True)


def build_stream_set(
    name: str,
    root: Path,
    df: pd.DataFrame,
    classes: tuple[str, ...] = CLASSES,
    meta: dict | None = None,
    labeler: "Teacher | None" = None,
    check_images: bool = True,
) -> StreamSet:
    """Validate time-ordered rows, drop repeated objects, number each camera 0..n-1, return the StreamSet.

    The same object (camera, image, box, time) listed twice would land in two splits (leakage), so
    repeats are dropped, keeping the first; their count is kept in ``meta['dropped_duplicates']``.
    """
    root = Path(root)
    meta = dict(meta or {})
    dup = df.duplicated(["camera", "path", "x0", "y0", "x1", "y1", "timestamp"], keep="first")
    meta["dropped_duplicates"] = int(dup.sum())
    df = number_by_camera(df[~dup.to_numpy()])
    ordered = list(SAMPLE_COLUMNS) + [c for c in df.columns if c not in SAMPLE_COLUMNS]
    df = validate_samples(df[ordered], f"dataset {name!r} at {root}", len(classes))
    if check_images:
        check_boxes_in_images(df, root, f"dataset {name!r}")
    stream_set = StreamSet(name=name, root=root, samples=df, classes=tuple(classes), meta=meta)
    if labeler is not None:
        from ekya.labels.teachers import apply_teacher

        stream_set = apply_teacher(stream_set, labeler)
    return stream_set
