"""The interface every runtime implements, so one session loop drives simulate and emulate alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from ekya.plans.scheduler import Scheduler
from ekya.results.records import WindowRecord


class Runtime(ABC):
    """Plays windows one after another; its state between windows must survive a restart."""

    #: stream (camera) names, in a fixed order
    streams: list[str]
    #: the window indices this run plays, in order
    windows: list[int]
    #: the scheduler that plans every window
    scheduler: Scheduler

    @abstractmethod
    def setup(self, saved: Any | None) -> None:
        """Build data and models, or restore them from a snapshot taken after an earlier window."""

    @abstractmethod
    def play(self, window: int) -> list[WindowRecord]:
        """Schedule and execute one window; return one record per stream."""

    @abstractmethod
    def snapshot(self) -> Any:
        """The picklable state needed to continue after the last played window."""

    def finish(self, run_dir: Path) -> list[Path]:
        """Write any end-of-run files into run_dir and return them (they become artifacts)."""
        return []

    def describe(self) -> dict[str, str]:
        """Tags that identify this runtime in the tracking store."""
        return {}
