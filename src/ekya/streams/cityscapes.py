"""Cityscapes: per-city samplelists (prepared from gtFine polygons), loaded as one camera per city.

Raw layout (as downloaded): ``<root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png``
and ``<root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_polygons.json``.

Prepared (the original's layout, written by ``ekya.prepare.cityscapes``, which ``dataset=cityscapes``
runs on first use): ``<root>/sample_lists/citywise/<city>_fine.csv``, no header, columns idx, imgpath
(relative to leftImg8bit/), class, x0, y0, x1, y1, plus ``.ekya_cityscapes.json`` there, which lists
the cities and the options the lists were made with. Which polygons become samples is said there.

Time: Cityscapes publishes no clock, only 30-frame snippets at 17 Hz (sequence and frame numbers in
the file name; train cities annotate frame 19 of each snippet, the val cities number frames along
long drives). Frames are ordered by (sequence, frame) numerically; within a sequence
t = (frame - first frame) / 17, and each sequence starts ``sequence_gap_frames`` frame periods
(default 30: one snippet, 1.76 s) after the previous one's last frame, so a city is one continuous
stream of about 2.5-11 minutes (use ``window.seconds`` of 15-20 s for 10 windows per city).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.streams.build import load_cameras
from ekya.streams.classes import SIX_CLASSES
from ekya.streams.samplelist import samplelist_dir
from ekya.streams.samples import StreamSet

FPS = 17.0
LIST_COLUMNS = ("idx", "imgpath", "class", "x0", "y0", "x1", "y1")
#: Written next to the prepared lists: {"params": the options they were made with, "cities": [...]}.
PREPARED_MARKER = ".ekya_cityscapes.json"
_IMG = re.compile(r"_(?P<seq>\d+)_(?P<frame>\d+)_leftImg8bit\.[a-z]+$")


def prepared_cities(root: Path) -> list[str]:
    """The cities whose samplelists were prepared under ``root`` (as the marker lists them)."""
    marker = samplelist_dir(root) / PREPARED_MARKER
    try:
        return list(json.loads(marker.read_text())["cities"])
    except FileNotFoundError:
        raise EkyaError(f"{marker}: not found, so the Cityscapes samplelists are not prepared; use "
                        "dataset=cityscapes (it prepares them on first use) or "
                        "ekya.prepare.cityscapes.prepare_cityscapes(root)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EkyaError(f"{marker}: not a samplelist marker ({type(e).__name__}: {e}); delete it to regenerate "
                        "the samplelists") from None


def read_city_samplelist(csv_path: Path, city: str, sequence_gap_frames: int = 30) -> pd.DataFrame:
    """Read one ``<city>_fine.csv`` into time-ordered rows (idx not yet set); errors name file and line."""
    if not csv_path.is_file():
        raise EkyaError(f"{csv_path}: samplelist not found; delete {csv_path.parent / PREPARED_MARKER} to regenerate")
    try:
        raw = pd.read_csv(csv_path, header=None, names=list(LIST_COLUMNS), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise EkyaError(f"{csv_path}: not a readable samplelist ({e}); delete it and regenerate") from None
    nums = {}
    for col in ("class", "x0", "y0", "x1", "y1"):
        v = pd.to_numeric(raw[col], errors="coerce")
        bad = v.isna().to_numpy().nonzero()[0]
        if len(bad):
            raise EkyaError(f"{csv_path}: line {int(bad[0]) + 1}: column {col!r} holds {raw[col].iloc[bad[0]]!r}, "
                            "not a number; fix or delete that line")
        nums[col] = v.round().astype(np.int64).to_numpy()
    bad = ((nums["class"] < 0) | (nums["class"] >= len(SIX_CLASSES))).nonzero()[0]
    if len(bad):
        raise EkyaError(f"{csv_path}: line {int(bad[0]) + 1}: class {int(nums['class'][bad[0]])} is outside "
                        f"0..{len(SIX_CLASSES) - 1} ({', '.join(SIX_CLASSES)}); fix or delete that line")
    seq, frame = [], []
    for i, p in enumerate(raw["imgpath"]):
        m = _IMG.search(p)
        if not m:
            raise EkyaError(f"{csv_path}: line {i + 1}: image path {p!r} is not <split>/<city>/"
                            "<city>_<seq>_<frame>_leftImg8bit.png; fix or delete that line")
        seq.append(int(m["seq"]))
        frame.append(int(m["frame"]))
    df = pd.DataFrame({
        "camera": city, "path": "leftImg8bit/" + raw["imgpath"], "x0": nums["x0"], "y0": nums["y0"],
        "x1": nums["x1"], "y1": nums["y1"], "label": nums["class"], "sequence": seq, "frame": frame,
        "source": str(csv_path), "source_row": np.arange(len(raw)) + 1,
    })
    df = df.sort_values(["sequence", "frame", "source_row"], kind="stable").reset_index(drop=True)
    df["timestamp"] = _timestamps(df["sequence"].to_numpy(), df["frame"].to_numpy(), sequence_gap_frames)
    return df


def _timestamps(seq: np.ndarray, frame: np.ndarray, gap_frames: int = 30) -> np.ndarray:
    """Seconds since the city's first frame: sequences laid end to end at 17 Hz (see module doc)."""
    t = np.zeros(len(seq))
    offset, start = 0.0, 0
    while start < len(seq):
        end = start + int(np.searchsorted(seq[start:], seq[start], side="right"))
        f0 = frame[start]
        t[start:end] = offset + (frame[start:end] - f0) / FPS
        offset = t[end - 1] + gap_frames / FPS
        start = end
    return t


def load_cityscapes(
    root: str | Path,
    cameras: Sequence[str] | None = None,
    pretrain_cameras: Sequence[str] = ("frankfurt", "munster"),
    sequence_gap_frames: int = 30,
    check_images: bool = True,
    name: str = "cityscapes",
) -> StreamSet:
    """Load prepared Cityscapes samplelists, one camera per city, unlabelled.

    ``samples`` holds the stream cities (``cameras``, default every city not used for pretraining);
    the pretraining cities form their own StreamSet in ``meta['pretrain']`` so that they never count
    as streams.
    """
    root = Path(root).expanduser()
    out = samplelist_dir(root)
    meta: dict[str, Any] = {"fps": FPS, "samplelists": str(out)}
    return load_cameras(name, root, lambda c: read_city_samplelist(out / f"{c}_fine.csv", c, sequence_gap_frames),
                        prepared_cities(root), cameras, pretrain_cameras, f"{out}", SIX_CLASSES, meta, check_images)
