"""Urban Traffic (Bellevue) and Urban Building (Las Vegas): the original's released samplelists.

One camera per CSV in ``<root>/<samplelist_dir>/<camera>.csv``, in either of two layouts, told apart
by the header:

- **frame samplelist** (the original's ``{video}_{fps}fps.csv`` and what ``python -m ekya.prepare``
  writes): ``idx,frame id,class,xmin,ymin,xmax,ymax,score,timestamp,camera``, frames at
  ``<root>/<camera>/frame_images/<frame id:06d>.jpg`` (read by ``ekya.streams.samplelist``).
- **6-column list** of the README: ``idx,class,x0,y0,x1,y1``. The README gives no frame number for a
  row, so either the list also has a ``frame id`` column (and then frames as above, time from a
  ``timestamp`` column or (frame id - 1) / ``fps``, frame ids being 1-based as ffmpeg numbers them),
  or each row has its own crop image, named by ``row_image`` (a pattern with {camera} and {idx},
  e.g. ``{camera}/classification_images/{idx:06d}.jpg``); such a row's box is the whole crop and,
  the list carrying no time, row i gets t = i / ``rows_per_second`` (order kept, time spacing assumed).

``class`` holds COCO ids (``class_numbering``: ``coco80``, the contiguous ids of the original's
coco_classes.txt, the default for the released lists; ``coco91`` for detector output; ``ekya`` for
lists already in the 6 classes). Ids outside the 6 classes are dropped *before* rows are numbered.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.streams.build import load_cameras
from ekya.streams.classes import SIX_CLASSES, class_map
from ekya.streams.image_checks import image_size
from ekya.streams.samplelist import FRAME_COLUMNS, frame_path, read_frame_samplelist
from ekya.streams.samples import StreamSet

SIX_COLUMNS: tuple[str, ...] = ("idx", "class", "x0", "y0", "x1", "y1")
NUMBERINGS = ("coco80", "coco91", "ekya")


def _class_map(numbering: str) -> dict[int, int] | None:
    if numbering not in NUMBERINGS:
        raise EkyaError(f"dataset.class_numbering={numbering!r}; use one of {list(NUMBERINGS)}")
    return None if numbering == "ekya" else class_map(numbering, "six")  # type: ignore[arg-type]


def read_six_column_list(
    csv_path: Path, camera: str, numbering: str = "coco80", fps: float | None = None,
    row_image: str | None = None, rows_per_second: float = 1.0, root: Path | None = None,
) -> pd.DataFrame:
    """Read a 6-column list (see module doc) into time-ordered rows; errors name the file and line."""
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise EkyaError(f"{csv_path}: not a readable CSV ({e}); re-extract the samplelist") from None
    missing = [c for c in SIX_COLUMNS if c not in raw.columns]
    if missing:
        raise EkyaError(f"{csv_path}: header lacks {missing}; expected {list(SIX_COLUMNS)} (6-column list) or "
                        f"{list(FRAME_COLUMNS)} (frame samplelist)")
    has_frame = "frame id" in raw.columns
    cols = (list(SIX_COLUMNS) + (["frame id"] if has_frame else [])
            + (["timestamp"] if "timestamp" in raw.columns else []))
    num = {}
    for col in cols:
        v = pd.to_numeric(raw[col], errors="coerce")
        bad = v.isna().to_numpy().nonzero()[0]
        if len(bad):
            raise EkyaError(f"{csv_path}: line {int(bad[0]) + 2}: column {col!r} holds {raw[col].iloc[bad[0]]!r}, "
                            "not a number; fix or delete that row")
        num[col] = v.to_numpy()
    cls = num["class"].astype(np.int64)
    cmap = _class_map(numbering)
    if cmap is None:
        bad = ((cls < 0) | (cls >= len(SIX_CLASSES))).nonzero()[0]
        if len(bad):
            raise EkyaError(f"{csv_path}: line {int(bad[0]) + 2}: class {int(cls[bad[0]])} is outside "
                            f"0..{len(SIX_CLASSES) - 1}; fix the row or set dataset.class_numbering=coco80|coco91")
        keep, label = np.ones(len(cls), bool), cls
    else:
        keep = np.array([int(c) in cmap for c in cls], bool)
        label = np.array([cmap.get(int(c), -1) for c in cls], np.int64)
    df = pd.DataFrame({
        "camera": camera, "list_idx": num["idx"].astype(np.int64), "label": label,
        "x0": np.round(num["x0"]).astype(np.int64), "y0": np.round(num["y0"]).astype(np.int64),
        "x1": np.round(num["x1"]).astype(np.int64), "y1": np.round(num["y1"]).astype(np.int64),
        "source": str(csv_path), "source_row": np.arange(len(raw)) + 2,
    })
    if has_frame:
        df["frame"] = num["frame id"].astype(np.int64)
        if "timestamp" in num:
            df["timestamp"] = num["timestamp"].astype(float)
        elif fps:
            df["timestamp"] = (df["frame"] - 1) / float(fps)
        else:
            raise EkyaError(f"{csv_path}: has 'frame id' but no 'timestamp' column; set dataset.fps to the "
                            "frame rate the frame ids count at")
        df["path"] = [frame_path(camera, f) for f in df["frame"]]
        df = df[keep].sort_values(["timestamp", "source_row"], kind="stable")
    else:
        if not row_image:
            raise EkyaError(f"{csv_path}: a 6-column list names no frame; set dataset.row_image to the pattern of "
                            "its per-row crop images (e.g. '{camera}/classification_images/{idx:06d}.jpg'), or "
                            "use lists with a 'frame id' column")
        try:
            df["path"] = [row_image.format(camera=camera, idx=int(i)) for i in df["list_idx"]]
        except (KeyError, IndexError, ValueError) as e:
            raise EkyaError(f"dataset.row_image={row_image!r} is not a pattern of {{camera}} and {{idx}} "
                            f"({e})") from None
        df = df[keep].sort_values(["list_idx", "source_row"], kind="stable")
        sizes = [image_size(Path(root or ".") / p) for p in df["path"]]
        df["x0"], df["y0"] = 0, 0
        df["x1"], df["y1"] = [w for w, _ in sizes], [h for _, h in sizes]
        df["timestamp"] = np.arange(len(df)) / float(rows_per_second)
    return df.reset_index(drop=True)


def read_urban_list(csv_path: Path, camera: str, numbering: str = "coco80", fps: float | None = None,
                    row_image: str | None = None, rows_per_second: float = 1.0,
                    root: Path | None = None) -> pd.DataFrame:
    """Read one camera's list in whichever of the two layouts its header shows."""
    if not csv_path.is_file():
        raise EkyaError(f"{csv_path}: samplelist not found; extract the dataset's samplelists there "
                        "(or fix dataset.root / dataset.samplelist_dir / dataset.cameras)")
    with open(csv_path, newline="") as f:
        header = [h.strip() for h in f.readline().strip().split(",")]
    if all(c in header for c in FRAME_COLUMNS):
        df = read_frame_samplelist(csv_path, camera, class_map=_class_map(numbering))
        df["source"] = str(csv_path)
        return df
    return read_six_column_list(csv_path, camera, numbering, fps, row_image, rows_per_second, root)


def load_urban(
    root: str | Path,
    cameras: Sequence[str] | None = None,
    pretrain_cameras: Sequence[str] = (),
    samplelist_dir: str = "sample_lists/citywise",
    class_numbering: str = "coco80",
    fps: float | None = None,
    row_image: str | None = None,
    rows_per_second: float = 1.0,
    check_images: bool = True,
    name: str = "urban",
) -> StreamSet:
    """Load Urban Traffic / Urban Building samplelists, one camera per CSV (see module doc), unlabelled."""
    root = Path(root).expanduser()
    lists = root / samplelist_dir
    if not lists.is_dir():
        raise EkyaError(f"{lists}: directory not found; extract the dataset's samplelists (e.g. "
                        "vegas_sample_lists.tar.gz) there, or run python -m ekya.prepare on the videos")
    available = sorted(p.stem for p in lists.glob("*.csv"))

    def read(camera: str) -> pd.DataFrame:
        return read_urban_list(lists / f"{camera}.csv", camera, class_numbering, fps, row_image, rows_per_second, root)

    meta: dict[str, Any] = {"samplelists": str(lists)}
    return load_cameras(name, root, read, available, cameras, pretrain_cameras, f"{lists} (one CSV per camera)",
                        SIX_CLASSES, meta, check_images)
