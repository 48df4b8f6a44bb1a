"""Batches of normalised crop tensors of a StreamSet's samples, for teachers to classify or train on."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ekya.errors import EkyaError
from ekya.streams.samples import StreamSet

# ImageNet statistics: torchvision classifiers are trained with them.
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def crop_array(ss: StreamSet, row: int, size: int, _cache: dict | None = None) -> np.ndarray:
    """One sample's crop as a (3, size, size) float32 array, normalised."""
    s = ss.samples.iloc[row]
    path = ss.image_path(s["path"])
    cache = _cache if _cache is not None else {}
    if path not in cache:
        cache.clear()  # keep one decoded image: rows of one frame are adjacent in time order
        try:
            with Image.open(path) as im:
                cache[path] = im.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise EkyaError(f"{path}: cannot read the image of {s['camera']} sample {s['idx']} ({e})") from None
    crop = cache[path].crop((int(s["x0"]), int(s["y0"]), int(s["x1"]), int(s["y1"]))).resize(
        (size, size), Image.BILINEAR)
    a = (np.asarray(crop, np.float32) / 255.0 - MEAN) / STD
    return a.transpose(2, 0, 1)


def iter_crop_batches(ss: StreamSet, rows: np.ndarray, size: int, batch_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield (row positions, batch tensor) over ``rows`` in order."""
    cache: dict = {}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        yield chunk, torch.from_numpy(np.stack([crop_array(ss, int(r), size, cache) for r in chunk]))
