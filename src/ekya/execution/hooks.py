"""The hooks the window loop calls, and the run context they see."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from ekya.execution.runtime import Runtime, WindowResult
from ekya.results.records import WindowRecord


@dataclass
class RunContext:
    """One run as the callbacks see it: where it writes, what it has played so far, what it ends with."""

    run_dir: Path
    name: str
    runtime: Runtime
    #: the resolved config of the parts this run uses (logged as MLflow params)
    params: Mapping[str, Any]
    tags: Mapping[str, str]
    #: every callback of the run by its config name (a checkpoint saves and restores their state)
    callbacks: dict[str, Callback] = field(default_factory=dict)
    records: list[WindowRecord] = field(default_factory=list)
    next_window: int | None = None
    #: the runtime's state to restore before playing (set by a checkpoint when resuming)
    runtime_state: Any = None
    #: files produced by the run; tracking attaches them at the end
    artifacts: list[Path] = field(default_factory=list)
    #: the per-window records as a table, and the headline metrics (set when every window is played)
    frame: pd.DataFrame | None = None
    summary: dict[str, float] = field(default_factory=dict)
    #: set instead of playing when a FINISHED run of the same config stands for this one (ekya.sweeps)
    skipped: Any = None


class Callback:
    """Before/after hooks around a run and each of its windows; override the ones you need.

    Callbacks run in ``order`` (ascending, then as configured): producers of per-window state (0),
    the checkpoint that saves it (10), tracking that logs what was saved (20), the terminal summary (30).
    """

    order: ClassVar[int] = 0

    def on_run_start(self, run: RunContext) -> None:
        """Before the runtime builds its models (a resumed run's state is restored here)."""

    def on_window_start(self, run: RunContext, window: int) -> None:
        """Before a window is planned and played."""

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """After a window is played; ``run.records`` already holds its records."""

    def on_run_end(self, run: RunContext) -> None:
        """After the last window; ``run.frame`` and ``run.summary`` are set; add files to ``run.artifacts``."""

    def on_teardown(self, run: RunContext, status: str, error: BaseException | None) -> None:
        """Always, last: status is FINISHED, FAILED (``error`` set) or KILLED (Ctrl-C)."""

    def state(self) -> Any:
        """Plain data this callback needs after a restart (saved with the run's checkpoint)."""
        return None

    def restore(self, state: Any) -> None:
        """Take back what ``state`` returned before the restart."""
