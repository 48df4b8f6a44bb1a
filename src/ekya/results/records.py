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
    frames_classified .. faults are measured by runtime=ray only (NaN in other runtimes).
    oracle_accuracy: scheduler=model_cache only (NaN otherwise): the window accuracy of the best
        cached model of an earlier window, chosen after the fact on the live data (its upper bound).
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
    # runtime=ray only (NaN elsewhere): what really ran on the wall clock. frames_*: the window's
    # live frames classified, skipped (served by the last result) and lost (see
    # ekya/execution/ray/serving.py); infer_fps: frames classified per wall second of the window;
    # job_wall_seconds: the retraining job's real duration; faults: actors of this stream that died.
    frames_classified: float = math.nan
    frames_skipped: float = math.nan
    frames_lost: float = math.nan
    infer_fps: float = math.nan
    job_wall_seconds: float = math.nan
    faults: float = math.nan
    oracle_accuracy: float = math.nan

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
