"""The accuracy matrices of forgetting measured, written as ``continual.csv`` when the run ends."""

from __future__ import annotations

from ekya.atomic import atomic_write
from ekya.execution.hooks import Callback, RunContext
from ekya.results.continual import matrix_frame


class ContinualCsv(Callback):
    """Writes every camera's matrix (camera, row, col, accuracy) to the run directory; MLflow attaches it."""

    order = 5  # before tracking (20) attaches run.artifacts

    def __init__(self, filename: str = "continual.csv") -> None:
        self.filename = str(filename)

    def on_run_end(self, run: RunContext) -> None:
        """Write the file (nothing where the runtime has no models, or ``window.forgetting`` is off)."""
        matrices = run.runtime.accuracy_matrices()
        if not matrices:
            return
        path = run.run_dir / self.filename
        frame = matrix_frame(matrices)
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
        run.artifacts = [*run.artifacts, path]
