"""Crop cache over the synthetic dataset: shapes, determinism, decode-once, unreadable files named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ekya.errors import EkyaError
from ekya.learners.data import CropCache
from ekya.streams.samples import StreamSet
from ekya.streams.synthetic import load_synthetic


def test_crops_are_the_resized_boxes_decoded_once(small_synthetic: StreamSet) -> None:
    df = small_synthetic.camera("cam01").iloc[:30]
    cache = CropCache(small_synthetic, 32)
    x = cache.images(df)
    assert x.shape == (30, 3, 32, 32) and x.dtype == torch.uint8
    assert len(cache) == 30
    again = cache.images(df.iloc[::-1])  # cached: nothing new decoded, rows follow the table's order
    assert len(cache) == 30 and torch.equal(again, x.flip(0))
    assert torch.equal(CropCache(small_synthetic, 32).images(df), x)  # deterministic
    r = df.iloc[0]
    with Image.open(small_synthetic.image_path(r.path)) as im:
        want = np.asarray(im.convert("RGB").crop((r.x0, r.y0, r.x1, r.y1)).resize((32, 32), Image.BILINEAR))
    assert np.array_equal(x[0].permute(1, 2, 0).numpy(), want)


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    ss = load_synthetic(tmp_path, cameras=1, chunks=1, chunk_seconds=10.0, samples_per_chunk=4, image_size=32)
    bad = ss.image_path(ss.samples.path.iloc[2])
    bad.write_bytes(b"truncated")
    with pytest.raises(EkyaError, match=str(bad).replace(".", r"\.")):
        CropCache(ss, 32).images(ss.samples)
    bad.unlink()
    with pytest.raises(EkyaError, match=bad.name):
        CropCache(ss, 32).images(ss.samples)
