"""Forgetting measured: each camera's served model scored on every window's probe, one row per window.

Row 0 is the base model (scored once, at setup); row i the model serving at the end of window i.
Each row covers the probes of all windows 1..N, later ones too (forward transfer and start accuracy
need them). This is a measurement taken outside the deployment: no schedule pays for it, and no
scheduler is told of it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.learners.base import Learner
from ekya.results.continual import AccuracyMatrix
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window

log = logging.getLogger("ekya.continual")


class ProbeEvaluator:
    """Builds each camera's (N+1, N) accuracy matrix as the windows are played."""

    def __init__(self, learner: Learner, stream_set: StreamSet, windows_of: Mapping[str, Sequence[Window]]) -> None:
        self.learner, self.stream_set = learner, stream_set
        #: per camera, windows 1..N (window 0 bootstraps and has no probe)
        self.probes = {cam: [w.probe for w in ws[1:]] for cam, ws in windows_of.items()}
        self.rows: dict[str, list[list[float]]] = {cam: [] for cam in windows_of}
        #: per camera, the scored models that may serve again (the base model, the latest) with their rows: a camera
        #: that did not retrain serves the same object, and ``Learner.retrain`` never changes a model in place
        self._scored: dict[str, list[tuple[Any, list[float]]]] = {cam: [] for cam in windows_of}
        if all(len(p) == 0 for ps in self.probes.values() for p in ps):
            log.warning("every probe is empty (window.val_fraction=0 and window.probe_fraction=0): the forgetting "
                        "metrics are NaN; set window.probe_fraction > 0 or window.forgetting=false")

    def score(self, cam: str, model: Any) -> list[float]:
        """One row: the model's accuracy on each window's probe (labels as ``evaluate`` uses them, NaN if none)."""
        probes = self.probes[cam]
        if not probes:
            return []
        # one inference pass over every probe: per-call overhead, not samples, dominates probes this small
        correct, keep = self.learner.hits(model, pd.concat(probes), self.stream_set)
        owner = np.repeat(np.arange(len(probes)), [len(p) for p in probes])[keep]
        return [float(correct[owner == j].mean()) if (owner == j).any() else math.nan for j in range(len(probes))]

    def add_row(self, row: int, served: Mapping[str, Any]) -> None:
        """Score the models serving at the end of window ``row`` (0 = the base models)."""
        for cam, rows in self.rows.items():
            if len(rows) != row:
                raise EkyaError(f"accuracy matrix of camera {cam!r}: row {row} comes after {len(rows) - 1}; "
                                "windows must be played in order")
            model = served[cam]
            known = [r for m, r in self._scored[cam] if m is model]
            row_values = list(known[0]) if known else self.score(cam, model)
            rows.append(row_values)
            # keep the base model (row 0) and the latest: the only models that can serve again
            self._scored[cam] = [*self._scored[cam][:1], (model, row_values)] if row else [(model, row_values)]

    def matrices(self) -> dict[str, AccuracyMatrix]:
        """The matrices so far, one per camera."""
        out = {}
        for cam, rows in self.rows.items():
            n = len(self.probes[cam])
            sizes = tuple(_labelled(p) for p in self.probes[cam])
            out[cam] = AccuracyMatrix(cam, np.asarray(rows, dtype=float).reshape(len(rows), n), sizes)
        return out

    def state(self) -> dict[str, list[list[float]]]:
        """The rows so far (plain lists, for the run's checkpoint)."""
        return {cam: [list(r) for r in rows] for cam, rows in self.rows.items()}

    def restore(self, state: Mapping[str, Sequence[Sequence[float]]]) -> None:
        """Take back the rows of a checkpoint."""
        if set(state) != set(self.rows):
            raise EkyaError(f"the saved accuracy matrices are for cameras {sorted(state)}, this run has "
                            f"{sorted(self.rows)}; delete the run directory and start again")
        self.rows = {cam: [list(map(float, r)) for r in state[cam]] for cam in self.rows}


def _labelled(df: Any) -> int:
    """Rows with a target as ``evaluate`` counts them (``label``, else ``teacher_label``)."""
    if len(df) == 0:
        return 0
    label, teacher = df["label"].to_numpy(), df["teacher_label"].to_numpy()
    return int((np.where(label >= 0, label, teacher) >= 0).sum())
