"""The simulate runtime: no training; schedulers are played on a profile set, window by window.

Each window starts from the profile set's start accuracies (like the original simulator, the
profiles already say what the deployed model achieves on each window). Plans are made on the
predicted profiles (or on the truth with ``use_predictions=False``) and scored on the truth.
Thousands of camera-windows per second, and no torch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.execution.runtime import Runtime, WindowResult, WindowSettings
from ekya.plans.playback import play_window, segment_boundaries
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.model_cache import cache_request, oracle_accuracies, without_cache
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.types import Budget, Plan
from ekya.profiles.types import ProfileSet
from ekya.results.records import WindowRecord

log = logging.getLogger("ekya.simulate")

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
    return pd.DataFrame([row for _, rows in _play(profile_set, scheduler, budget, windows, use_predictions, checks)
                         for row in rows], columns=COLUMNS)


def _play(profile_set: ProfileSet, scheduler: Scheduler, budget: Budget, windows: Sequence[int] | None,
          use_predictions: bool, checks: Sequence[float]) -> Iterator[tuple[Plan, list[dict[str, Any]]]]:
    """Per window: (its initial plan, one row per stream)."""
    todo = list(range(profile_set.n_windows)) if windows is None else list(windows)
    bad = [w for w in todo if not 0 <= w < profile_set.n_windows]
    if bad:
        raise EkyaError(f"windows {bad} are out of range: the profile set has {profile_set.n_windows} windows")
    for w in todo:
        truth = profile_set.truth[w]
        told = profile_set.predicted[w] if use_predictions else truth
        if cache_request(scheduler) is None:  # cached-model configs are only for schedulers that ask for them
            truth, told = tuple(without_cache(truth)), tuple(without_cache(told))
        scheduler.start_window(w)
        t0 = time.perf_counter()
        plan = scheduler.plan(told, budget)
        seconds = time.perf_counter() - t0
        out = play_window(plan, truth, budget, scheduler, predicted=told, checks=checks)
        rows = []
        for sp in plan.streams:
            res = out.streams[sp.stream]
            dev = "/".join("" if d is None else str(d) for d in (sp.infer_device, sp.train_device))
            rows.append({
                "window": w, "stream": sp.stream, "config": sp.config or "none", "infer_share": sp.infer_share,
                "train_share": sp.train_share, "device": dev,
                "completion_time": res.completion_time if res.completion_time is not None else math.nan,
                "predicted_acc": sp.predicted_accuracy, "accuracy": res.accuracy, "scheduler_seconds": seconds,
            })
        yield plan, rows


def load_profile_set(profiles: str | None, format: str = "ekya", synthetic: Mapping[str, Any] | None = None,
                     seed: int = 0, space: Mapping[str, RetrainConfig] | None = None) -> ProfileSet:
    """The profile set at ``profiles`` (ours or the original's), or a synthetic one over ``space`` when None."""
    if profiles in (None, ""):
        from ekya.profiles.synthetic import generate_profile_set

        s = dict(synthetic or {})
        return generate_profile_set(
            streams=int(s.get("streams", 10)), windows=int(s.get("windows", 5)), seed=int(seed),
            pred_noise=float(s.get("noise", 0.05)), n_configs=None if s.get("configs") is None else int(s["configs"]),
            space=None if space is None else {n: dict(c.params) for n, c in space.items()})
    path = Path(str(profiles))
    if not path.exists():
        raise EkyaError(f"runtime.profiles={path}: no such file or directory; pass a profile set written by "
                        "a run with callbacks=[default,profile_all] or the original's profile directory")
    if format == "original":
        from ekya.profiles.original import read_original

        return read_original(path)
    if format != "ekya":
        raise EkyaError(f"runtime.format={format!r}: use 'ekya' (ours) or 'original' (the NSDI'22 code's)")
    from ekya.profiles.io import read_profiles

    return read_profiles(path)


def check_measured_under(profile_set: ProfileSet, budget: Budget, profiles: str, same_cluster: bool) -> None:
    """Refuse a profile set measured under another window length (or, with ``same_cluster``, another cluster).

    Its costs are accelerator-seconds of windows of the length it was measured at, and its start
    accuracies follow the schedules that cluster allowed. A set that does not record them (written
    before they were recorded) is replayed with a warning.
    """
    measured = profile_set.measured_under
    if measured is None:
        log.warning("runtime.profiles=%s records no window length or cluster (written by an older ekya): replayed "
                    "as if measured under window.seconds=%g cluster.accelerators=%d", profiles, budget.window,
                    budget.accelerators)
        return
    keys = [("window.seconds", measured.window_seconds, budget.window)]
    if same_cluster:
        keys += [("cluster.accelerators", measured.accelerators, budget.accelerators),
                 ("cluster.delta", measured.delta, budget.delta)]
    differ = [(key, theirs, ours) for key, theirs, ours in keys if theirs != ours]
    if differ:
        then = " ".join(f"{key}={theirs:g}" for key, theirs, _ in differ)
        now = " ".join(f"{key}={ours:g}" for key, _, ours in differ)
        fix = "" if not same_cluster else " (runtime.same_cluster=false replays it on another cluster)"
        raise EkyaError(f"runtime.profiles={profiles}: measured under {then}, but this run has {now}; run with "
                        f"{then}{fix}, or measure a profile set under these (callbacks=[default,profile_all])")


class SimulateRuntime(Runtime):
    """Plays a profile set with the scheduler and compares each window with no retraining."""

    def __init__(self, *, scheduler: Scheduler, budget: Budget, window: WindowSettings, seed: int,
                 space: Mapping[str, RetrainConfig], profiles: str | None = None, format: str = "ekya",
                 use_predictions: bool = True, synthetic: Mapping[str, Any] | None = None,
                 same_cluster: bool = True) -> None:
        self.scheduler, self.budget, self.settings = scheduler, budget, window
        self.profile_set = load_profile_set(profiles, format, synthetic, seed, space)
        if profiles not in (None, "") and format == "ekya":
            check_measured_under(self.profile_set, budget, str(profiles), bool(same_cluster))
        names = {c.config for p in self.profile_set.truth[0] for c in p.configs}
        wanted = getattr(self.scheduler, "config", None)
        if wanted is not None and wanted not in names:
            raise EkyaError(f"scheduler.config={wanted!r} is not in the profile set's configs {sorted(names)}; "
                            "pick one of them (scheduler.config=NAME)")
        self.source = "synthetic-profiles" if profiles in (None, "") else Path(str(profiles)).stem
        self.streams = list(self.profile_set.streams)
        self.windows = list(range(self.profile_set.n_windows))
        self.use_predictions = bool(use_predictions)

    def setup(self, saved: Any | None) -> None:
        """Nothing carries between windows: each window starts from its profiled start accuracy."""

    def snapshot(self) -> Any:
        """No state to keep."""
        return None

    def play(self, window: int) -> WindowResult:
        """Schedule on predictions, score on the truth, and compare with no retraining."""
        checks = segment_boundaries(self.budget.window, self.settings.segments)
        ((plan, rows),) = _play(self.profile_set, self.scheduler, self.budget, [window], self.use_predictions, checks)
        ref = simulate(self.profile_set, NoRetrainScheduler(), self.budget, [window], False)
        ref_acc = dict(zip(ref["stream"], ref["accuracy"]))
        truth = {p.stream: p for p in self.profile_set.truth[window]}
        told = {p.stream: p for p in self.profile_set.predicted[window]}
        told_profiles = (self.profile_set.predicted if self.use_predictions else self.profile_set.truth)[window]
        request = cache_request(self.scheduler)
        oracle = {}
        if request is not None and request.oracle:
            oracle = oracle_accuracies(plan, self.profile_set.truth[window], told_profiles, self.budget,
                                       self.scheduler, checks, window)
        out = []
        for row in rows:
            t = truth[row["stream"]]
            done = not math.isnan(row["completion_time"])
            config = row["config"]
            cfg_true = t.config(config) if config != "none" else None
            cfg_told = told[row["stream"]].config(config) if config != "none" else None
            out.append(WindowRecord(
                window=window, stream=row["stream"], config=config, infer_share=row["infer_share"],
                train_share=row["train_share"], accuracy=row["accuracy"], noretrain_accuracy=ref_acc[row["stream"]],
                predicted_accuracy=row["predicted_acc"], start_accuracy=t.start_accuracy,
                end_accuracy=cfg_true.accuracy if (done and cfg_true) else t.start_accuracy,
                retrain_cost=cfg_true.cost if cfg_true else 0.0, completion_time=row["completion_time"],
                scheduler_seconds=row["scheduler_seconds"], predicted_cost=cfg_told.cost if cfg_told else math.nan,
                oracle_accuracy=oracle.get(row["stream"], math.nan),
            ))
        return WindowResult(window, out, plan, list(told_profiles))
