"""Score a model on the live samples of the time it serves: per equal time segment of the window."""

from __future__ import annotations

import numpy as np


def segment_accuracies(correct: np.ndarray, timestamps: np.ndarray, start: float, window: float,
                       segments: int) -> tuple[float, tuple[float, ...]]:
    """Accuracy over a window's live samples and on each of its ``segments`` equal time segments.

    A segment without samples takes the whole window's accuracy (nothing better is known there).
    """
    correct = np.asarray(correct, dtype=float)
    overall = float(correct.mean()) if correct.size else float("nan")
    if segments <= 1:
        return overall, ()
    which = np.clip(np.floor((np.asarray(timestamps, dtype=float) - start) / (window / segments)), 0, segments - 1)
    which = which.astype(np.int64)
    hits = np.bincount(which, weights=correct, minlength=segments)
    counts = np.bincount(which, minlength=segments)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(counts > 0, hits / np.maximum(counts, 1), overall)
    return overall, tuple(float(v) for v in per)
