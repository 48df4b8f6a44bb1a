"""The terminal summary a run ends with: mean accuracy per camera, with and without retraining."""

from __future__ import annotations

import math

from ekya.execution.hooks import Callback, RunContext
from ekya.results.continual import running_metrics
from ekya.results.summary import print_summary


class Summary(Callback):
    """Prints the per-camera table, the forgetting line where it was measured, and where the records are."""

    order = 30

    def on_run_end(self, run: RunContext) -> None:
        """Print the table of ``run.frame``."""
        print_summary(run.frame, f"{run.name}: mean window accuracy")
        matrices = run.runtime.accuracy_matrices()
        if matrices and run.records:
            _, macro = running_metrics(matrices, max(r.window for r in run.records))
            undefined = " (NaN: these need 3+ windows after the bootstrap one)" if math.isnan(macro["bwt"]) else ""
            print(f"forgetting on the probes (mean over cameras): forgetting {macro['forgetting']:+.3f}, "
                  f"BWT {macro['bwt']:+.3f}{undefined}")
        print(f"per-window records: {run.run_dir / 'windows.csv'}")
