"""The per-stream, per-window result record every runtime produces."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import pandas as pd


@dataclass(frozen=True)
class WindowRecord:
    """What happened to one stream in one window.

    accuracy: inference accuracy time-averaged over the window (the paper's objective).
    noretrain_accuracy: the same stream and window served by the base model with an even split of
        the accelerators and no retraining (the "without retraining" reference).
    start_accuracy / end_accuracy: accuracy of the model serving at the window start / end, at a full
        inference share. retrain_cost: accelerator-seconds at a full share the retraining needed.
    completion_time: seconds from the window start when the retrained model went live (NaN = never).
    predicted_cost / profiling_cost: the scheduler's predicted retraining cost, and the
        accelerator-seconds micro-profiling spent on this stream in this window.
    """

    window: int
    stream: str
    config: str
    infer_share: float
    train_share: float
    accuracy: float
    noretrain_accuracy: float
    predicted_accuracy: float
    start_accuracy: float
    end_accuracy: float
    retrain_cost: float
    completion_time: float
    scheduler_seconds: float
    predicted_cost: float = math.nan
    profiling_cost: float = 0.0

    def metrics(self) -> dict[str, float]:
        """The numeric fields, as MLflow metrics (NaN fields left out)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("window", "stream", "config"):
                continue
            if isinstance(v, (int, float)) and not math.isnan(float(v)):
                out[f.name] = float(v)
        return out


def records_frame(records: list[WindowRecord]) -> pd.DataFrame:
    """Records as a DataFrame, one row per (window, stream), sorted."""
    cols = [f.name for f in fields(WindowRecord)]
    df = pd.DataFrame([asdict(r) for r in records], columns=cols)
    return df.sort_values(["window", "stream"], kind="stable").reset_index(drop=True)
