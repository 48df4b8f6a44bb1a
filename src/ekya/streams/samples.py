"""The sample table every dataset loader produces, and its validation.

One row per object crop. Columns (all required):

- ``camera`` (str): the stream the sample belongs to.
- ``idx`` (int): position in the camera's time order, 0..n-1 without gaps.
- ``timestamp`` (float): seconds since the camera's stream started; non-decreasing in ``idx``.
- ``path`` (str): image file, relative to ``StreamSet.root`` (or absolute).
- ``x0, y0, x1, y1`` (int): the object's box inside that image, in pixels, x0 < x1, y0 < y1.
  For datasets whose images are already crops the box covers the whole image.
- ``label`` (int): ground-truth class id in ``StreamSet.classes``, or -1 when unknown.
- ``teacher_label`` (int): the label the teacher ("golden model") gave; training uses this column.
  Loaders return it -1 everywhere (unlabelled); ``ekya.labels.teachers.apply_teacher`` fills it.

Optional metadata columns (``time_of_day``, ``weather``, ``segment``...) are carried along untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ekya.errors import EkyaError
from ekya.streams.classes import SIX_CLASSES

SAMPLE_COLUMNS: tuple[str, ...] = (
    "camera", "idx", "timestamp", "path", "x0", "y0", "x1", "y1", "label", "teacher_label",
)


@dataclass
class StreamSet:
    """All cameras of one dataset: the sample table plus where its images live."""

    name: str
    root: Path
    samples: pd.DataFrame
    classes: tuple[str, ...] = SIX_CLASSES
    meta: dict = field(default_factory=dict)

    @property
    def cameras(self) -> list[str]:
        """Camera names in a deterministic (sorted) order."""
        return sorted(self.samples["camera"].unique().tolist())

    def camera(self, name: str) -> pd.DataFrame:
        """One camera's samples in time order, indexed 0..n-1."""
        df = self.samples[self.samples["camera"] == name]
        if df.empty:
            raise EkyaError(f"camera {name!r} is not in dataset {self.name!r}; it has {self.cameras}")
        return df.sort_values("idx", kind="stable").reset_index(drop=True)

    def image_path(self, path: str) -> Path:
        """Absolute path of a sample's image."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p


def validate_samples(df: pd.DataFrame, source: str, num_classes: int = len(SIX_CLASSES)) -> pd.DataFrame:
    """Check a sample table against the schema; raise EkyaError naming the source and first bad row."""
    missing = [c for c in SAMPLE_COLUMNS if c not in df.columns]
    if missing:
        raise EkyaError(f"{source}: missing column(s) {missing}; a sample table needs {list(SAMPLE_COLUMNS)}")
    if df.empty:
        raise EkyaError(f"{source}: no samples; check that the dataset directory holds the data")
    checks = [
        ((df["x0"] >= df["x1"]) | (df["y0"] >= df["y1"]), "box has x0 >= x1 or y0 >= y1"),
        ((df[["x0", "y0"]] < 0).any(axis=1), "box starts at a negative coordinate"),
        (~df["label"].between(-1, num_classes - 1), f"label outside -1..{num_classes - 1}"),
        (~df["teacher_label"].between(-1, num_classes - 1), f"teacher_label outside -1..{num_classes - 1}"),
    ]
    for bad, why in checks:
        if bool(bad.any()):
            row = int(bad.to_numpy().nonzero()[0][0])
            raise EkyaError(f"{source}: row {row}: {why}: {df.iloc[row][list(SAMPLE_COLUMNS)].to_dict()}; "
                            "fix or delete that row")
    for cam, g in df.groupby("camera", sort=True):
        if bool((g.sort_values("idx")["timestamp"].diff().dropna() < 0).any()):
            raise EkyaError(f"{source}: camera {cam!r}: timestamps decrease along idx; samples must be in time order")
    return df

