"""Build a dataset's StreamSets from its per-camera rows: split cameras, number, validate, check images.

Every loader reads one camera's rows with its own reader and hands that reader to
:func:`load_cameras`, which returns the stream cameras' StreamSet with the pretraining cameras'
StreamSet in ``meta['pretrain']``. The result is unlabelled (``teacher_label`` -1): the run applies
its teacher (``ekya.labels.teachers.apply_teacher``), which labels ``meta['pretrain']`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.streams.classes import SIX_CLASSES
from ekya.streams.image_checks import check_boxes_in_images
from ekya.streams.samples import SAMPLE_COLUMNS, StreamSet, validate_samples


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
    classes: tuple[str, ...] = SIX_CLASSES,
    meta: dict | None = None,
    check_images: bool = True,
) -> StreamSet:
    """Validate time-ordered rows, drop repeated objects, number each camera 0..n-1: an unlabelled StreamSet.

    The same object (camera, image, box, time) listed twice would land in two splits (leakage), so
    repeats are dropped, keeping the first; their count is kept in ``meta['dropped_duplicates']``.
    """
    root = Path(root)
    meta = dict(meta or {})
    dup = df.duplicated(["camera", "path", "x0", "y0", "x1", "y1", "timestamp"], keep="first")
    meta["dropped_duplicates"] = int(dup.sum())
    df = number_by_camera(df[~dup.to_numpy()])
    df["teacher_label"] = np.int64(-1)  # no teacher has run yet
    ordered = list(SAMPLE_COLUMNS) + [c for c in df.columns if c not in SAMPLE_COLUMNS]
    df = validate_samples(df[ordered], f"dataset {name!r} at {root}", len(classes))
    if check_images:
        check_boxes_in_images(df, root, f"dataset {name!r}")
    return StreamSet(name=name, root=root, samples=df, classes=tuple(classes), meta=meta)


def split_cameras(available: list[str], cameras: Sequence[str] | None, pretrain_cameras: Sequence[str] | None,
                  where: str) -> tuple[list[str], list[str]]:
    """(stream cameras, pretraining cameras) of a dataset, checked against what ``where`` holds.

    ``cameras`` None means every available camera that is not a pretraining camera. A camera is a
    stream or pretraining data, never both (that would leak test data into training).
    """
    pretrain = sorted(set(pretrain_cameras or []))
    streams = sorted(set(c for c in available if c not in pretrain) if cameras is None else set(cameras))
    unknown = [c for c in streams + pretrain if c not in available]
    if unknown:
        raise EkyaError(f"dataset.cameras / dataset.pretrain_cameras name {unknown}, which {where} does not hold; "
                        f"available: {available}")
    both = sorted(set(streams) & set(pretrain))
    if both:
        raise EkyaError(f"{both} are in both dataset.cameras and dataset.pretrain_cameras; a camera is either a "
                        "stream or pretraining data, never both (that would leak test data into training)")
    if not streams:
        raise EkyaError(f"{where}: no stream cameras left ({available} are all in dataset.pretrain_cameras)")
    return streams, pretrain


def load_cameras(
    name: str,
    root: Path,
    read_camera: Callable[[str], pd.DataFrame],
    available: list[str],
    cameras: Sequence[str] | None,
    pretrain_cameras: Sequence[str] | None,
    where: str,
    classes: tuple[str, ...] = SIX_CLASSES,
    meta: dict | None = None,
    check_images: bool = True,
) -> StreamSet:
    """The stream cameras' unlabelled StreamSet; the pretraining cameras' own StreamSet is its ``meta['pretrain']``.

    ``read_camera(camera)`` gives one camera's time-ordered rows; ``meta`` is shared by both sets, and
    the streams' set also records ``pretrain_cameras``. Pretraining cameras never count as streams.
    """
    streams, pretrain = split_cameras(available, cameras, pretrain_cameras, where)

    def build(cams: list[str], set_meta: dict) -> StreamSet:
        df = pd.concat([read_camera(c) for c in cams], ignore_index=True)
        return build_stream_set(name, root, df, classes, set_meta, check_images)

    stream_meta = {**(meta or {}), "pretrain_cameras": pretrain}
    if pretrain:
        stream_meta["pretrain"] = build(pretrain, dict(meta or {}))
    return build(streams, stream_meta)
