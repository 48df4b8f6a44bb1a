"""Streams: every dataset becomes per-camera, time-ordered sample tables (see samples.py)."""

from ekya.streams.samples import CLASSES, SAMPLE_COLUMNS, StreamSet, validate_samples

__all__ = ["CLASSES", "SAMPLE_COLUMNS", "StreamSet", "validate_samples"]
