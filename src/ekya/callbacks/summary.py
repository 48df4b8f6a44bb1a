"""The terminal summary a run ends with: mean accuracy per camera, with and without retraining."""

from __future__ import annotations

from ekya.callbacks.base import Callback, RunContext
from ekya.results.summary import print_summary


class Summary(Callback):
    """Prints the per-camera table and where the records are."""

    order = 30

    def on_run_end(self, run: RunContext) -> None:
        """Print the table of ``run.frame``."""
        print_summary(run.frame, f"{run.name}: mean window accuracy")
        print(f"per-window records: {run.run_dir / 'windows.csv'}")
