"""Streams: every dataset becomes per-camera, time-ordered sample tables (see samples.py)."""

from ekya.streams.classes import SIX_CLASSES, WAYMO_CLASSES
from ekya.streams.samples import SAMPLE_COLUMNS, StreamSet, validate_samples

__all__ = ["SAMPLE_COLUMNS", "SIX_CLASSES", "StreamSet", "WAYMO_CLASSES", "validate_samples"]
