"""Sample crops as uint8 tensors for training and inference, decoded once and kept in memory.

Decoding is the slow part of small-image training, so each (image, box) is decoded once per cache
(with ``ekya.streams.images.load_crop``) and later requests are a tensor gather. Every step is
deterministic: the same table gives the same bytes. A ``CropPack`` carries decoded crops to a job
in another process or on another node, so its data moves with it instead of being read there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ekya.streams.images import load_crop
from ekya.streams.samples import StreamSet


@dataclass(frozen=True)
class CropPack:
    """Decoded crops that travel with a job: keys (path, x0, y0, x1, y1) and their uint8 (n, 3, size, size) images."""

    size: int
    keys: list[tuple[str, int, int, int, int]]
    images: np.ndarray


class CropCache:
    """Crops of one StreamSet at one size, decoded on first use and kept as one uint8 tensor store."""

    def __init__(self, stream_set: StreamSet, size: int) -> None:
        self.stream_set = stream_set
        self.size = int(size)
        self._slot: dict[tuple[str, int, int, int, int], int] = {}
        self._store = torch.empty((0, 3, self.size, self.size), dtype=torch.uint8)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _keys(self, df: pd.DataFrame) -> list[tuple[str, int, int, int, int]]:
        cols = [df[c].to_numpy() for c in ("path", "x0", "y0", "x1", "y1")]
        return [(str(p), int(a), int(b), int(c), int(d)) for p, a, b, c, d in zip(*cols)]

    def _grow(self, extra: int) -> None:
        need = self._count + extra
        if need > len(self._store):
            bigger = torch.empty((max(need, 2 * len(self._store)), 3, self.size, self.size), dtype=torch.uint8)
            bigger[: self._count] = self._store[: self._count]
            self._store = bigger

    def pack(self, df: pd.DataFrame) -> CropPack:
        """The table's crops (decoded here if need be) as plain arrays that travel to another process or node."""
        rows = df.drop_duplicates(["path", "x0", "y0", "x1", "y1"])
        return CropPack(self.size, self._keys(rows), self.images(rows).numpy())

    def preload(self, pack: CropPack) -> None:
        """Take a pack's crops as already decoded, so a job reads none of them from the dataset's files."""
        if pack.size != self.size:
            raise ValueError(f"a crop pack of size {pack.size} cannot fill a cache of size {self.size}")
        todo = [(key, i) for i, key in enumerate(pack.keys) if key not in self._slot]
        if todo:
            self._grow(len(todo))
            for key, i in todo:
                self._store[self._count] = torch.from_numpy(pack.images[i].copy())
                self._slot[key] = self._count
                self._count += 1

    def images(self, df: pd.DataFrame) -> torch.Tensor:
        """(n, 3, size, size) uint8 crops of the table's rows, in row order."""
        keys = self._keys(df)
        todo = list(dict.fromkeys(k for k in keys if k not in self._slot))
        if todo:
            self._grow(len(todo))
            for key in todo:
                arr = load_crop(self.stream_set.image_path(key[0]), key[1:], self.size)
                self._store[self._count] = torch.from_numpy(arr).permute(2, 0, 1)
                self._slot[key] = self._count
                self._count += 1
        idx = torch.as_tensor([self._slot[k] for k in keys], dtype=torch.long)
        return self._store.index_select(0, idx)
