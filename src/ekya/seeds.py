"""Seeds derived from the run's one seed, per (purpose, camera, window, ...), so any part replays alone.

Strings are hashed with CRC-32 (stable across processes, unlike Python's salted ``hash``).
"""

from __future__ import annotations

import zlib

import numpy as np


def _keys(seed: int, parts: tuple[int | str, ...]) -> list[int]:
    return [int(seed) & 0xFFFFFFFF] + [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in parts]


def derive_seed(seed: int, *parts: int | str) -> int:
    """A 31-bit seed for one (purpose, camera, window, ...) derived from ``seed``."""
    return int(np.random.SeedSequence(_keys(seed, parts)).generate_state(1)[0] & 0x7FFFFFFF)


def derive_rng(seed: int, *parts: int | str) -> np.random.Generator:
    """An independent random generator for one (purpose, camera, window, ...) derived from ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(_keys(seed, parts)))
