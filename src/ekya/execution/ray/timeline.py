"""What a ray window reports besides its records: each camera's timeline of shares held, and the window's events.

Both are plain values built while the window plays and written out as dicts (the MLflow artifacts
``windows/<k>/timeline.json`` and ``events.json``), whose form these classes keep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Segment:
    """From ``t`` (window seconds) on, a camera really held ``infer`` and ``train`` shares and served ``version``."""

    t: float
    infer: float
    train: float
    version: int


def timeline_rows(window: int, stream: str, segments: list[Segment], end: float) -> list[dict[str, Any]]:
    """A camera's segments as rows (start, end, shares, model version), up to ``end``; empty segments dropped."""
    marks = [*segments, Segment(end, math.nan, math.nan, -1)]
    return [{"window": window, "stream": stream, "start": a.t, "end": b.t, "infer_share": a.infer,
             "train_share": a.train, "model_version": a.version}
            for a, b in zip(marks, marks[1:]) if b.t > a.t]


@dataclass(frozen=True)
class Event:
    """Something that happened to a window's actors (a fault, a move, a change too late), at ``time`` window seconds.

    ``stream`` is None for what concerns the whole window; ``detail`` holds the kind's own fields.
    """

    window: int
    stream: str | None
    time: float
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The event as written out: window, stream, time, ``event`` (the kind), then its own fields."""
        return {"window": self.window, "stream": self.stream, "time": self.time, "event": self.kind, **self.detail}
