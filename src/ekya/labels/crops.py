"""Crops of a StreamSet's samples as ImageNet-normalised float tensors, for teachers to classify or train on.

Decoding and cropping is ``ekya.streams.images.load_crop`` (the learners' too); torchvision
classifiers expect ImageNet mean/std normalisation, which is added here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ekya.streams.images import load_crop
from ekya.streams.samples import StreamSet

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def crop_array(ss: StreamSet, row: int, size: int) -> np.ndarray:
    """One sample's crop as a (3, size, size) float32 array, normalised."""
    s = ss.samples.iloc[row]
    box = (int(s["x0"]), int(s["y0"]), int(s["x1"]), int(s["y1"]))
    a = (load_crop(ss.image_path(s["path"]), box, size).astype(np.float32) / 255.0 - MEAN) / STD
    return a.transpose(2, 0, 1)


def iter_crop_batches(ss: StreamSet, rows: np.ndarray, size: int,
                      batch_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield (row positions, batch tensor) over ``rows`` in order."""
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        yield chunk, torch.from_numpy(np.stack([crop_array(ss, int(r), size) for r in chunk]))
