"""The schedule writer: every window's initial plan, in the file format ``scheduler=replay`` reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ekya.execution.hooks import Callback, RunContext
from ekya.execution.runtime import WindowResult
from ekya.plans.schedulers.schedule_replay import write_schedule
from ekya.plans.types import Plan


class ScheduleWriter(Callback):
    """Writes ``<run dir>/<filename>``: replay it with ``scheduler=replay scheduler.path=<that file>``."""

    def __init__(self, filename: str = "schedule.json") -> None:
        self.filename = str(filename)
        self.plans: dict[int, Plan] = {}

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """Keep the window's plan as the scheduler made it at the window start."""
        self.plans[result.window] = result.plan

    def on_run_end(self, run: RunContext) -> None:
        """Write the schedule of every window and attach it to the run."""
        path = Path(run.run_dir) / self.filename
        write_schedule(path, self.plans)
        run.artifacts.append(path)

    def state(self) -> Any:
        """The plans so far (frozen dataclasses of plain values)."""
        return dict(self.plans)

    def restore(self, state: Any) -> None:
        """Take back the plans of the windows played before the restart."""
        self.plans = dict(state or {})
