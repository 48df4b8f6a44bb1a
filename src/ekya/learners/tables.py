"""Sample tables as a learner reads them: whose camera, which rows carry a training target, which crops they name.

Pandas only (no torch), so the learner protocol and the job template can use them.
"""

from __future__ import annotations

import pandas as pd

#: Columns that identify a crop (the CropCache key): equal keys are the same sample.
CROP_KEY = ("path", "x0", "y0", "x1", "y1")


def camera_of(df: pd.DataFrame) -> str:
    """The camera of a table's rows; several cameras are joined by ``+`` (sorted), none is ``""``."""
    cams = df["camera"].unique() if "camera" in df.columns and len(df) else []
    return str(cams[0]) if len(cams) == 1 else "+".join(sorted(map(str, cams)))


def labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Rows the teacher labelled (teacher_label -1 means no label, so no training target)."""
    return df[df["teacher_label"].to_numpy() >= 0]


def crop_keys(df: pd.DataFrame) -> list[tuple]:
    """Each row's crop key (equal keys are the same sample)."""
    return list(zip(*(df[c].tolist() for c in CROP_KEY)))


def crop_rows(*tables: pd.DataFrame) -> pd.DataFrame:
    """The crop-key columns of every table, stacked in order: the crops a job reads."""
    return pd.concat([t[list(CROP_KEY)] for t in tables], ignore_index=True)
