"""Checks of a dataset's images on disk: every image opens, and every box lies inside its image."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from ekya.errors import EkyaError


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image, reading only its header; EkyaError naming the file if unreadable."""
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except FileNotFoundError:
        raise EkyaError(f"{path}: image not found; the samplelist names it, so restore the file or "
                        "regenerate the samplelist") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise EkyaError(f"{path}: not a readable image ({e}); re-extract or delete it and regenerate "
                        "the samplelist") from None


def check_boxes_in_images(samples: pd.DataFrame, root: Path, source: str) -> dict[str, tuple[int, int]]:
    """Open each distinct image once and fail on the first box that leaves its image; return the sizes."""
    sizes: dict[str, tuple[int, int]] = {}
    for p in pd.unique(samples["path"]):
        path = Path(p)
        sizes[p] = image_size(path if path.is_absolute() else Path(root) / path)
    w = samples["path"].map(lambda p: sizes[p][0])
    h = samples["path"].map(lambda p: sizes[p][1])
    outside = (samples["x1"] > w) | (samples["y1"] > h) | (samples["x0"] < 0) | (samples["y0"] < 0)
    bad = outside.to_numpy().nonzero()[0]
    if len(bad):
        r = samples.iloc[int(bad[0])]
        where = f"{r['source']}" if "source" in samples.columns else source
        line = f": line {int(r['source_row'])}" if "source_row" in samples.columns else f": row {int(bad[0])}"
        W, H = sizes[r["path"]]
        raise EkyaError(f"{where}{line}: box ({r['x0']},{r['y0']},{r['x1']},{r['y1']}) lies outside its image "
                        f"{r['path']} ({W}x{H}); fix or delete that row")
    return sizes
