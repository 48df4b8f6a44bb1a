"""ekya: continuous learning of video analytics models on edge servers."""

__version__ = "0.1.0"
