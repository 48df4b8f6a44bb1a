"""Deterministic crash hooks for kill-and-resume tests: the run stops right after a window is saved."""

from __future__ import annotations

import os

from ekya.execution.hooks import Callback, RunContext
from ekya.execution.runtime import WindowResult


class CrashAfter(Callback):
    """Once window ``window`` is checkpointed, before it is logged: exit hard (like SIGKILL) or raise Ctrl-C's error.

    ``how``: "exit" (no cleanup at all) or "interrupt" (KeyboardInterrupt, what Ctrl-C raises).
    """

    order = 15  # after the checkpoint (10), before MLflow tracking (20)

    def __init__(self, window: int, how: str = "exit") -> None:
        self.window, self.how = int(window), str(how)

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """Stop after the chosen window."""
        if result.window != self.window:
            return
        if self.how == "interrupt":
            raise KeyboardInterrupt
        os._exit(137)
