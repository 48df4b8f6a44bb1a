"""The simulate runtime's core: schedule and play every window of a profile set, no training at all.

Each window starts from the profile set's start accuracies (like the original simulator, the
profiles already say what the deployed model achieves on each window). Plans are made on the
predicted profiles (or on the truth with ``use_predictions=False``) and scored on the truth.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import pandas as pd

from ekya.errors import EkyaError
from ekya.plans.scheduler import Scheduler
from ekya.plans.simulate import play_window
from ekya.plans.types import Budget
from ekya.profiles.types import ProfileSet

COLUMNS = ["window", "stream", "config", "infer_share", "train_share", "device", "completion_time",
           "predicted_acc", "accuracy", "scheduler_seconds"]


def simulate(
    profile_set: ProfileSet,
    scheduler: Scheduler,
    budget: Budget,
    windows: Sequence[int] | None = None,
    use_predictions: bool = True,
    checks: Sequence[float] = (),
) -> pd.DataFrame:
    """One row per stream and window (columns: COLUMNS); ``device`` is "infer/train" device ids.

    ``checks``: instants at which the scheduler may re-plan running jobs by their progress.
    """
    todo = list(range(profile_set.n_windows)) if windows is None else list(windows)
    bad = [w for w in todo if not 0 <= w < profile_set.n_windows]
    if bad:
        raise EkyaError(f"windows {bad} are out of range: the profile set has {profile_set.n_windows} windows")
    rows = []
    for w in todo:
        truth = profile_set.truth[w]
        told = profile_set.predicted[w] if use_predictions else truth
        scheduler.start_window(w)
        t0 = time.perf_counter()
        plan = scheduler.plan(told, budget)
        seconds = time.perf_counter() - t0
        out = play_window(plan, truth, budget, scheduler, predicted=told, checks=checks)
        for sp in plan.streams:
            res = out.streams[sp.stream]
            dev = f"{'' if sp.infer_device is None else sp.infer_device}/{'' if sp.train_device is None else sp.train_device}"
            rows.append({
                "window": w, "stream": sp.stream, "config": sp.config or "none", "infer_share": sp.infer_share,
                "train_share": sp.train_share, "device": dev,
                "completion_time": res.completion_time if res.completion_time is not None else math.nan,
                "predicted_acc": sp.predicted_accuracy, "accuracy": res.accuracy, "scheduler_seconds": seconds,
            })
    return pd.DataFrame(rows, columns=COLUMNS)
