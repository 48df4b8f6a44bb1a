"""Resumable run state: written atomically after every completed window."""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ekya.errors import EkyaError
from ekya.results.records import WindowRecord


@dataclass
class RunState:
    """Where a run stands: the next window to play, what has been logged, the runtime's own state."""

    next_window: int
    logged_through: int = -1
    records: list[WindowRecord] = field(default_factory=list)
    runtime: Any = None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Checkpoint:
    """The state file of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "state.pkl"

    def load(self) -> RunState | None:
        """The saved state, or None for a run that has not completed a window yet."""
        if not self.path.exists():
            return None
        try:
            with self.path.open("rb") as f:
                state = pickle.load(f)
        except Exception as e:  # noqa: BLE001
            raise EkyaError(f"{self.path}: cannot read the run state ({type(e).__name__}); "
                            "delete the run directory and start the run again") from None
        if not isinstance(state, RunState):
            raise EkyaError(f"{self.path}: not an ekya run state; delete it and start the run again")
        return state

    def save(self, state: RunState) -> None:
        """Replace the state file in one atomic step (a kill never leaves half a file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
