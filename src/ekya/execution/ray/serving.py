"""What inference did with each frame of a window, and the rule for frames it could not keep up with.

Frames (the window's live samples) arrive in time order at wall times mapped from their dataset
timestamps (``window.seconds`` of video play in ``runtime.window_wall_seconds``). The inference
actor classifies arrived frames in batches, oldest first. The rule:

- a frame whose batch starts within ``max_lag`` (dataset seconds) of its arrival is **classified**
  by the model serving at that batch;
- a frame that waited longer is **skipped**: it is served by the camera's last result (the class
  of the latest frame classified before it; wrong if there is none yet), as a deployed system
  keeps showing its last answer;
- a frame whose result died with a crashed inference actor, or that arrived while no actor was
  serving and was not caught up, is **lost**: it is served by the last result too, and counted.

Accuracy is measured on what really happened: the share of frames with a target whose served
class is right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLASSIFIED, SKIPPED, LOST = 1, 2, 3


def arrival_walls(timestamps: np.ndarray, window_start: float, window_seconds: float, wall_seconds: float,
                  wall_start: float) -> np.ndarray:
    """Wall-clock arrival time of each frame: dataset time since the window start, scaled to wall time."""
    rel = np.clip(np.asarray(timestamps, dtype=float) - window_start, 0.0, window_seconds)
    return wall_start + rel * (wall_seconds / window_seconds)


@dataclass
class FrameLog:
    """Per frame of one camera's window: what served it (kind), the class served and the model version."""

    kind: np.ndarray
    served: np.ndarray
    version: np.ndarray
    done_wall: np.ndarray

    @classmethod
    def empty(cls, n: int) -> FrameLog:
        """A log of ``n`` frames, none served yet."""
        return cls(np.zeros(n, dtype=np.int8), np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64),
                   np.full(n, math.nan))

    def record(self, rows: list[tuple[int, int, int, int, float]]) -> None:
        """Take (index, kind, class, version, wall time) rows reported by an inference actor."""
        for i, kind, cls, version, wall in rows:
            self.kind[i], self.served[i], self.version[i], self.done_wall[i] = kind, cls, version, wall

    def first_unserved(self) -> int:
        """The index of the first frame nothing has served yet (the length when all are served)."""
        todo = np.flatnonzero(self.kind == 0)
        return int(todo[0]) if todo.size else len(self.kind)

    def last_result(self, before: int) -> int:
        """The class of the latest frame classified before index ``before`` (-1 if none)."""
        done = np.flatnonzero(self.kind[:before] == CLASSIFIED)
        return int(self.served[done[-1]]) if done.size else -1

    def mark_lost(self, start: int, stop: int) -> int:
        """Frames [start, stop) are lost: served by the last result before them; return how many."""
        last = self.last_result(start)
        idx = np.arange(start, stop)
        idx = idx[self.kind[idx] == 0]
        self.kind[idx], self.served[idx] = LOST, last
        return int(idx.size)

    def counts(self) -> dict[str, int]:
        """How many frames were classified, skipped and lost (and left unserved, which must be 0)."""
        return {"classified": int((self.kind == CLASSIFIED).sum()), "skipped": int((self.kind == SKIPPED).sum()),
                "lost": int((self.kind == LOST).sum()), "unserved": int((self.kind == 0).sum())}

    def accuracy(self, targets: np.ndarray) -> float:
        """Share of frames with a target (>= 0) whose served class is right; NaN without targets."""
        keep = np.asarray(targets) >= 0
        if not keep.any():
            return math.nan
        return float((self.served[keep] == np.asarray(targets)[keep]).mean())
