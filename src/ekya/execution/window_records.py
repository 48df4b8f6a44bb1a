"""A played window's records in a run that trains for real: one ``WindowRecord`` per camera, and what follows.

``runtime=emulate`` (virtual clock) and ``runtime=ray`` (wall clock) play a plan differently but
record it the same way: the plan and what the scheduler was told (``PlannedWindow``), the accuracy
the base model would have served with no retraining and an even split (``noretrain_accuracy``),
and what really happened to each camera (``window_record``); then the window's end models are scored
on the forgetting probes and what each camera's model served is noted (``close_window``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ekya.execution.window_plan import PlannedWindow
from ekya.plans.playback import play_window
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.types import Budget
from ekya.profiles.types import StreamProfile
from ekya.results.records import WindowRecord

if TYPE_CHECKING:  # both train models (torch)
    import torch

    from ekya.execution.camera_models import CameraModels
    from ekya.execution.retraining import RetrainingService


def noretrain_accuracy(service: RetrainingService, base: Mapping[str, torch.nn.Module], budget: Budget,
                       k: int) -> dict[str, float]:
    """Each camera's window-k accuracy with its base model, no retraining and an even split of the accelerators."""
    base_truth = []
    for cam in service.cameras:
        acc, segs = service.live_accuracy(cam, base[cam], k)
        base_truth.append(StreamProfile(cam, acc, (), segs))
    ref = NoRetrainScheduler()
    outcome = play_window(ref.plan(base_truth, budget), base_truth, budget, ref)
    return {cam: outcome.streams[cam].accuracy for cam in service.cameras}


def window_record(planned: PlannedWindow, cam: str, *, accuracy: float, noretrain: float, start: float, end: float,
                  cost: float, completion: float, **measured: float) -> WindowRecord:
    """Camera ``cam``'s record of the window: its plan and what it was told, next to what really happened.

    ``measured``: the figures only one runtime has (``oracle_accuracy``; ray's frames, faults, job time).
    """
    sp = planned.plan.by_stream()[cam]
    return WindowRecord(
        window=planned.k, stream=cam, config=sp.config or "none", infer_share=sp.infer_share,
        train_share=sp.train_share, accuracy=accuracy, noretrain_accuracy=noretrain,
        predicted_accuracy=sp.predicted_accuracy, start_accuracy=start, end_accuracy=end, retrain_cost=cost,
        completion_time=completion, scheduler_seconds=planned.scheduler_seconds,
        predicted_cost=planned.predicted_cost(cam), profiling_cost=planned.spent[cam], **measured)


def close_window(models: CameraModels, k: int, end_models: Mapping[str, torch.nn.Module],
                 records: Sequence[WindowRecord], budget: Budget) -> None:
    """After window k: its end models on the forgetting probes, and what each camera's model served."""
    models.score_probes(k, end_models)
    models.service.note_served(k, records, budget)
