"""The model store of an emulate run: the cached models a scheduler's ``cache_request`` asks for, kept across windows.

Two sources (``ekya.plans.schedulers.model_cache.CacheRequest``):

- ``pretrained`` (scheduler=model_cache): an offline, seeded pass retrains each camera's model of
  window i with one fixed config on window i's pool (from the model of window i - 1, or from the
  base model without ``window.carry_over``); that model is a candidate from window i + 1 on. As in
  the paper, the cache is pre-trained offline: its training is charged to no window. The pass runs
  lazily, one window ahead of need, and its models are part of the run's snapshot.
- ``served`` (thief with cached_models): the base model and every model that went live in an
  earlier window of this run; the model serving now is not offered (that is "no retraining").

A candidate trained on window i's pool is named ``cache:w<i>`` (``cache:<camera>:w<i>`` for another
camera's). Observables are those of the newest chunk of a training pool: for window k, chunk k - 1
(its teacher labels are what the window's retraining uses); for a model trained on window i's pool,
chunk i - 1 (chunk 0 for the base model). Measured: the class histogram of the teacher labels and
the object count per second (object crops per second of video); ``time_of_day`` and ``location``
(the most frequent value) only where the dataset has such a column (Waymo has time of day, the
synthetic stream has neither: those heuristics then fall back to the class histogram).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.execution.retraining import RetrainingService
from ekya.plans.playback import segment_boundaries
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.model_cache import CacheRequest, cache_name, cache_request, oracle_accuracies
from ekya.plans.types import Budget, Plan
from ekya.profiles.types import ConfigProfile, StreamProfile
from ekya.seeds import derive_seed

#: metadata columns that are observables when a dataset has them
_META = ("time_of_day", "location")


def chunk_observables(camera_df: pd.DataFrame, n_classes: int, start: float, seconds: float) -> dict[str, Any]:
    """What the teacher-labelled samples of one chunk [start, start + seconds) show: class mix, objects/s, metadata."""
    ts = camera_df["timestamp"].to_numpy(dtype=float)
    rows = camera_df[(ts >= start) & (ts < start + seconds)]
    labels = rows["teacher_label"].to_numpy()
    labels = labels[labels >= 0].astype(np.int64)
    hist = np.bincount(labels, minlength=n_classes).astype(float)
    out: dict[str, Any] = {"class_distribution": [float(v) for v in hist / max(hist.sum(), 1.0)],
                           "object_count": float(len(rows)) / float(seconds)}
    for col in _META:
        if col in rows.columns:
            values = rows[col].dropna().astype(str)
            if len(values):
                counts = values.value_counts()
                out[col] = sorted(counts[counts == counts.max()].index)[0]  # the mode; ties by name
    return out


@dataclass(frozen=True)
class Candidate:
    """One cached model offered to a camera: its config name, source camera and window, and the model."""

    name: str
    camera: str
    window: int
    model: Any


class ModelStore:
    """The cached models one emulate run keeps for its scheduler (see the module doc).

    ``service`` trains, scores and prices the models; ``scheduler`` is the one that asked (named in
    errors, and re-planning with it gives the after-the-fact upper bound).
    """

    def __init__(self, service: RetrainingService, scheduler: Scheduler, request: CacheRequest) -> None:
        self.service, self.scheduler, self.request = service, scheduler, request
        if request.source not in ("pretrained", "served"):
            raise EkyaError(f"cache source {request.source!r}: use 'pretrained' or 'served'")
        self.config = request.config if request.config is not None else next(iter(service.space))
        if self.config not in service.space:
            raise EkyaError(f"scheduler.cache_config={self.config!r} is not in the configuration space; choose one "
                            f"of {list(service.space)}")
        #: camera -> window i -> the model trained on window i's pool (pretrained source, i >= 1)
        self.pretrained: dict[str, dict[int, Any]] = {}
        #: camera -> window i -> the model retrained in window i that went live (served source)
        self.served: dict[str, dict[int, Any]] = {}
        #: camera -> (source camera, window) of the cached entry serving now (served source)
        self.serving: dict[str, tuple[str, int]] = {}
        #: camera -> the candidates offered in the window being played
        self.offered: dict[str, list[Candidate]] = {}
        #: camera -> its base model (set by ``start_window``): window 0's entry of every camera
        self.base: Mapping[str, Any] = {}
        self._window: int | None = None
        self._val: dict[tuple[str, int, str], float] = {}
        self._obs: dict[tuple[str, int], dict[str, Any]] = {}

    @classmethod
    def for_scheduler(cls, service: RetrainingService, scheduler: Scheduler) -> ModelStore | None:
        """The store the scheduler asks for, or None when it asks for none."""
        request = cache_request(scheduler)
        return None if request is None else cls(service, scheduler, request)

    # -- state across windows ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Picklable cached models (state dicts) and which entry serves each camera."""
        dump = self.service.learner.model_state
        return {"pretrained": {c: {i: dump(m) for i, m in v.items()} for c, v in self.pretrained.items()},
                "served": {c: {i: dump(m) for i, m in v.items()} for c, v in self.served.items()},
                "serving": dict(self.serving)}

    def restore(self, state: Mapping[str, Any] | None) -> None:
        """Take back the cache saved by ``state``."""
        if not state:
            return
        load = self.service.learner.load_model_state
        self.pretrained = {c: {int(i): load(s) for i, s in v.items()} for c, v in state["pretrained"].items()}
        self.served = {c: {int(i): load(s) for i, s in v.items()} for c, v in state["served"].items()}
        self.serving = {c: (str(v[0]), int(v[1])) for c, v in state["serving"].items()}

    # -- candidates ----------------------------------------------------------------------------------

    def _pretrained_model(self, cam: str, i: int) -> Any:
        """The offline pass's model of window i (trained now if not yet): offline, so charged to no window."""
        if i == 0:
            return self.base[cam]
        have = self.pretrained.setdefault(cam, {})
        if i not in have:
            svc = self.service
            start = self._pretrained_model(cam, i - 1) if svc.settings.carry_over else self.base[cam]
            w = svc.windows_of[cam][i]
            # its own seed, not a job's: the offline pass is no job of any window
            have[i], _ = svc.learner.retrain(start, svc.space[self.config], w.train, w.val, svc.stream_set,
                                             derive_seed(svc.seed, "model_cache", i, cam))
        return have[i]

    def candidates(self, cam: str, k: int) -> list[Candidate]:
        """The cached models camera ``cam`` may switch to in window k: only those of windows before k."""
        sources = self.service.cameras if self.request.cross_camera else [cam]
        out = []
        for src in sources:
            if self.request.source == "pretrained":
                entries = [(i, self._pretrained_model(src, i)) for i in range(k)]
            else:
                served = {0: self.base[src], **self.served.get(src, {})}
                now = self.serving.get(cam, (cam, 0))
                entries = [(i, m) for i, m in sorted(served.items()) if i < k and (src, i) != now]
            out += [Candidate(cache_name(i, None if src == cam else src), src, i, m) for i, m in entries]
        return out

    @property
    def window(self) -> int:
        """The window being played (set by ``start_window``)."""
        if self._window is None:
            raise RuntimeError("ModelStore.start_window has not been called")
        return self._window

    def start_window(self, k: int, base: Mapping[str, Any]) -> None:
        """Fix the candidates of window k, given each camera's base model (training the pretrained pass's models)."""
        self._window, self.base = int(k), base
        self.offered = {cam: self.candidates(cam, k) for cam in self.service.cameras}

    # -- what is observable and what is told ------------------------------------------------------------

    def _chunk(self, cam: str, j: int) -> dict[str, Any]:
        if (cam, j) not in self._obs:
            T, streams = self.service.settings.seconds, self.service.stream_set
            self._obs[(cam, j)] = chunk_observables(streams.camera(cam), len(streams.classes), j * T, T)
        return self._obs[(cam, j)]

    def observables(self, cam: str, k: int) -> dict[str, Any]:
        """What window k's start shows of camera ``cam``: the previous chunk's observables and the window index."""
        return {**self._chunk(cam, k - 1), "window": int(k), "camera": cam}

    def _candidate_observables(self, c: Candidate) -> dict[str, Any]:
        return {**self._chunk(c.camera, max(c.window - 1, 0)), "window": c.window, "camera": c.camera}

    def val_accuracy(self, cam: str, c: Candidate) -> float:
        """The candidate's teacher-labelled accuracy on camera ``cam``'s validation set of the current window."""
        key = (cam, int(self.window), c.name)
        if key not in self._val:
            self._val[key] = float(self.service.val_accuracy(cam, c.model, self.window))
        return self._val[key]

    def tell(self, cam: str, profile: StreamProfile) -> tuple[StreamProfile, float]:
        """The stream's profile with its cached configs and observables; and the accelerator-seconds that cost.

        With ``measure`` each candidate is evaluated on the window's validation set: one inference
        pass per validation sample, charged like micro-profiling.
        """
        configs, cost = [], 0.0
        n_val = len(self.service.windows_of[cam][self.window].val)
        for c in self.offered[cam]:
            acc = math.nan
            if self.request.measure:
                acc = self.val_accuracy(cam, c)
                cost += self.service.inference_seconds(c.model, n_val)
            configs.append(ConfigProfile(c.name, acc, 0.0, observables=self._candidate_observables(c)))
        told = replace(profile, configs=profile.configs + tuple(configs),
                       observables=self.observables(cam, self.window))
        return told, cost

    def _find(self, cam: str, name: str) -> Candidate:
        for c in self.offered[cam]:
            if c.name == name:
                return c
        raise EkyaError(f"scheduler {self.scheduler.name!r} picked {name!r} for camera {cam!r}, which is not "
                        f"among the cached models offered in window {self.window}")

    def truth(self, cam: str, c: Candidate) -> ConfigProfile:
        """What switching camera ``cam`` to a candidate really gives: live accuracy (per segment), no cost."""
        acc, segs = self.service.live_accuracy(cam, c.model, self.window)
        val = self.val_accuracy(cam, c) if self.request.measure else math.nan
        return ConfigProfile(c.name, acc, 0.0, segs, val, observables=self._candidate_observables(c))

    def job(self, cam: str, name: str) -> tuple[Any, ConfigProfile]:
        """The "job" of switching to a cached model: the model and what really happens (cost 0)."""
        c = self._find(cam, name)
        return c.model, self.truth(cam, c)

    def went_live(self, cam: str, k: int, config: str | None, model: Any) -> None:
        """Book-keeping after window k: a retrained model that went live joins the served cache."""
        if self.request.source != "served":
            return
        if config is not None and config in {c.name for c in self.offered[cam]}:
            picked = self._find(cam, config)
            self.serving[cam] = (picked.camera, picked.window)
        elif config is not None:
            self.served.setdefault(cam, {})[int(k)] = model
            self.serving[cam] = (cam, int(k))
        if not self.service.settings.carry_over:
            self.serving[cam] = (cam, 0)

    def oracle(self, plan: Plan, truths: Sequence[StreamProfile], told: Sequence[StreamProfile],
               budget: Budget) -> dict[str, float]:
        """Per camera, the best offered candidate chosen after the fact on ``budget`` (none unless the request asks)."""
        if not self.request.oracle:
            return {}
        full = []
        for t in truths:  # every offered candidate's truth, not only the picked one's
            offered = self.offered[t.stream]
            names = {c.name for c in offered}
            kept = tuple(c for c in t.configs if c.config not in names)
            full.append(replace(t, configs=kept + tuple(self.truth(t.stream, c) for c in offered)))
        checks = segment_boundaries(budget.window, self.service.settings.segments)
        return oracle_accuracies(plan, full, told, budget, self.scheduler, checks, self.window)


def cached_job(store: ModelStore | None, scheduler: Scheduler, cam: str, config: str) -> tuple[Any, ConfigProfile]:
    """The switch to a cached model a plan asks for; EkyaError when the run keeps no store to switch to."""
    if store is None:
        raise EkyaError(f"scheduler {scheduler.name!r} planned the cached model {config!r} for camera {cam!r}, but "
                        "it asks for no model cache (cache_request), so none was kept; in emulate, cached models "
                        "come only with scheduler=model_cache or scheduler.cached_models=true")
    return store.job(cam, config)
