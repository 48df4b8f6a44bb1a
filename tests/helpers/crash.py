"""A deterministic crash hook for kill-and-resume tests: the process dies right after a window is saved."""

from __future__ import annotations

import os

from ekya.callbacks.base import Callback, RunContext
from ekya.execution.runtime import WindowResult


class CrashAfter(Callback):
    """Kill the process (no cleanup, like SIGKILL) once window ``window`` is checkpointed, before it is logged."""

    order = 15  # after the checkpoint (10), before MLflow tracking (20)

    def __init__(self, window: int) -> None:
        self.window = int(window)

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """Exit hard after the chosen window."""
        if result.window == self.window:
            os._exit(137)


class InterruptAfter(Callback):
    """Raise KeyboardInterrupt (what Ctrl-C raises) once window ``window`` is checkpointed."""

    order = 15

    def __init__(self, window: int) -> None:
        self.window = int(window)

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """Interrupt after the chosen window."""
        if result.window == self.window:
            raise KeyboardInterrupt
