"""Per-(window, stream) seeds derived from the run's one seed, so any window replays identically."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(seed: int, *parts: int | str) -> int:
    """A 31-bit seed for one (window, stream, purpose) derived from the run seed."""
    keys = [int(seed)] + [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in parts]
    return int(np.random.SeedSequence(keys).generate_state(1)[0] & 0x7FFFFFFF)
