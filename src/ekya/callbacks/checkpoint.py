"""Checkpoint/resume: the run's state, written atomically after every window and read back on resume.

The state is plain data (records, the runtime's snapshot of state dicts and model descriptions, each
callback's own state), so renaming a class never breaks the resume of an older run.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.execution.hooks import Callback, RunContext
from ekya.execution.runtime import WindowResult
from ekya.results.records import WindowRecord

STATE_FILE = "state.pkl"


@dataclass
class RunState:
    """Where a run stands: the next window to play, the records so far, the runtime's and callbacks' state."""

    next_window: int
    records: list[WindowRecord] = field(default_factory=list)
    runtime: Any = None
    callbacks: dict[str, Any] = field(default_factory=dict)


def load_state(run_dir: Path) -> RunState | None:
    """The state saved in ``run_dir``, or None for a run that has not completed a window yet."""
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        with path.open("rb") as f:
            state = pickle.load(f)
    except Exception as e:  # noqa: BLE001 - any unreadable file: one clear line
        raise EkyaError(f"{path}: cannot read the run state ({type(e).__name__}); "
                        "delete the run directory and start the run again") from None
    if not isinstance(state, RunState):
        raise EkyaError(f"{path}: not an ekya run state; delete it and start the run again")
    return state


class Checkpoint(Callback):
    """Saves the run after every window; a rerun in the same directory continues after the last saved window."""

    order = 10

    def on_run_start(self, run: RunContext) -> None:
        """Restore the records, the runtime's snapshot and every callback's state of a saved run."""
        state = load_state(run.run_dir)
        if state is None:
            return
        run.records, run.next_window, run.runtime_state = list(state.records), state.next_window, state.runtime
        for name, cb in run.callbacks.items():
            if name in state.callbacks:
                cb.restore(state.callbacks[name])

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """Replace the state file in one atomic step (a kill never leaves half a file)."""
        state = RunState(next_window=result.window + 1, records=list(run.records), runtime=run.runtime.snapshot(),
                         callbacks={name: cb.state() for name, cb in run.callbacks.items()})
        atomic_write(Path(run.run_dir) / STATE_FILE, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
