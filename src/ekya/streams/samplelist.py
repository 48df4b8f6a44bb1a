"""Frame samplelists: the original's MP4/Urban CSV layout, read into (and written from) sample tables.

On disk (one CSV per camera, with a header)::

    <root>/sample_lists/citywise/<camera>.csv     idx,frame id,class,xmin,ymin,xmax,ymax,score,timestamp,camera
    <root>/<camera>/frame_images/<frame id:06d>.jpg
    <root>/<camera>/.ekya_ingest.json             (videos only) marker of a completed ``python -m ekya.prepare``

``class`` holds a class id of the dataset's own numbering; readers of lists that hold COCO ids pass
``class_map`` (COCO id -> class id; ids not in the map are dropped *before* renumbering, so idx never
drifts, unlike the original). Every malformed row fails with the file, the row and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.streams.classes import SIX_CLASSES
from ekya.streams.samples import SAMPLE_COLUMNS, validate_samples

FRAME_COLUMNS: tuple[str, ...] = ("idx", "frame id", "class", "xmin", "ymin", "xmax", "ymax", "score", "timestamp",
                                  "camera")
_NUMERIC = ("idx", "frame id", "class", "xmin", "ymin", "xmax", "ymax", "score", "timestamp")
#: Written into ``<root>/<camera>/`` when a video's ingestion completed; a camera without it is no stream.
INGEST_MARKER = ".ekya_ingest.json"


def samplelist_dir(root: Path) -> Path:
    """The folder of a dataset root's per-camera samplelists."""
    return Path(root) / "sample_lists" / "citywise"


def samplelist_path(root: Path, camera: str) -> Path:
    """Where a camera's samplelist lives under a dataset root."""
    return samplelist_dir(root) / f"{camera}.csv"


def frame_path(camera: str, frame: int) -> str:
    """A frame image's path relative to the dataset root."""
    return f"{camera}/frame_images/{int(frame):06d}.jpg"


def read_frame_samplelist(
    csv_path: Path,
    camera: str | None = None,
    class_map: Mapping[int, int] | None = None,
    num_classes: int = len(SIX_CLASSES),
    allow_unknown: bool = False,
) -> pd.DataFrame:
    """Read one frame samplelist into an unlabelled sample table (teacher_label -1 until a teacher runs).

    ``allow_unknown`` accepts class -1 (an object found by a detector that names no class, labelled later).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise EkyaError(f"{csv_path}: samplelist not found; prepare the dataset first (see docs/datasets.md)")
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise EkyaError(f"{csv_path}: not a readable CSV ({e}); regenerate the samplelist") from None
    missing = [c for c in FRAME_COLUMNS if c not in raw.columns]
    if missing:
        raise EkyaError(f"{csv_path}: header lacks {missing}; expected the columns {list(FRAME_COLUMNS)}")
    num = {}
    for col in _NUMERIC:
        values = pd.to_numeric(raw[col], errors="coerce")
        bad = values.isna().to_numpy().nonzero()[0]
        if len(bad):
            row = int(bad[0])
            raise EkyaError(f"{csv_path}: row {row + 2} (line {row + 2} of the file): column {col!r} holds "
                            f"{raw[col].iloc[row]!r}, not a number; fix or delete that row")
        num[col] = values.to_numpy()
    cls = num["class"].astype(np.int64)
    if class_map is not None:
        keep = np.array([int(c) in class_map for c in cls], dtype=bool)
        mapped = np.array([class_map.get(int(c), -1) for c in cls], dtype=np.int64)
    else:
        keep = np.ones(len(cls), dtype=bool)
        mapped = cls
        bad = ((cls < (-1 if allow_unknown else 0)) | (cls >= num_classes)).nonzero()[0]
        if len(bad):
            row = int(bad[0])
            raise EkyaError(f"{csv_path}: line {row + 2}: class {int(cls[row])} is outside 0..{num_classes - 1}; "
                            "fix the row or pass the dataset's class map")
    cam = camera if camera is not None else None
    df = pd.DataFrame({
        "camera": (raw["camera"] if cam is None else pd.Series([cam] * len(raw))).to_numpy(),
        "frame": num["frame id"].astype(np.int64),
        "timestamp": num["timestamp"].astype(float),
        "x0": num["xmin"].round().astype(np.int64), "y0": num["ymin"].round().astype(np.int64),
        "x1": num["xmax"].round().astype(np.int64), "y1": num["ymax"].round().astype(np.int64),
        "score": num["score"].astype(float),
        "label": mapped,
        "source_row": np.arange(len(raw)) + 2,
    })[keep].reset_index(drop=True)
    df["path"] = [frame_path(c, f) for c, f in zip(df["camera"], df["frame"])]
    df["teacher_label"] = np.int64(-1)
    df = df.sort_values(["timestamp", "source_row"], kind="stable").reset_index(drop=True)
    df["idx"] = np.arange(len(df))
    empty = (df["x0"] >= df["x1"]) | (df["y0"] >= df["y1"]) | (df["x0"] < 0) | (df["y0"] < 0)
    bad_box = empty.to_numpy().nonzero()[0]
    if len(bad_box):
        r = df.iloc[int(bad_box[0])]
        raise EkyaError(f"{csv_path}: line {int(r['source_row'])}: box ({r['x0']},{r['y0']},{r['x1']},{r['y1']}) "
                        "is empty or starts outside the image; fix or delete that row")
    ordered = list(SAMPLE_COLUMNS) + [c for c in df.columns if c not in SAMPLE_COLUMNS]
    return validate_samples(df[ordered], str(csv_path), num_classes)


def write_frame_samplelist(df: pd.DataFrame, csv_path: Path) -> None:
    """Write a sample table as a frame samplelist, atomically (a crash never leaves half a file)."""
    frames = df["frame"] if "frame" in df.columns else df["idx"]
    out = pd.DataFrame({
        "idx": np.arange(len(df)), "frame id": frames.to_numpy(), "class": df["label"].to_numpy(),
        "xmin": df["x0"].to_numpy(), "ymin": df["y0"].to_numpy(),
        "xmax": df["x1"].to_numpy(), "ymax": df["y1"].to_numpy(),
        "score": (df["score"] if "score" in df.columns else pd.Series(np.ones(len(df)))).to_numpy(),
        "timestamp": df["timestamp"].to_numpy(), "camera": df["camera"].to_numpy(),
    })
    atomic_write(csv_path, out.to_csv(index=False))
