"""Profiles: what a retraining configuration costs and what accuracy it reaches, per stream and window."""

from ekya.profiles.types import ConfigProfile, StreamProfile

__all__ = ["ConfigProfile", "StreamProfile"]
