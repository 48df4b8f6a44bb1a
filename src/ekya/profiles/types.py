"""Values that travel from profiling to scheduling. Torch-free."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ConfigProfile:
    """Predicted (or measured) outcome of retraining one stream with one config in one window.

    accuracy: accuracy of the retrained model on the window's live data, in [0, 1]; NaN = unknown
        (schedulers with ``needs_profiles = False`` accept that).
    cost: accelerator-seconds the job needs at a full (1.0) share of one accelerator.
    segments: (truth only, optional) the retrained model's live accuracy on each of the window's
        equal time segments, so a model is scored on the part of the window it really serves.
    val_accuracy: (truth only, optional) the retrained model's teacher-labelled validation accuracy:
        what a deployed system knows about it once the job completes (NaN = not measured).
    observables: (cached models only, see ``ekya.plans.schedulers.model_cache``) what is known of
        the data the cached model was trained on: its source ``window`` and ``camera``, and
        ``class_distribution``, ``object_count``, ``time_of_day``, ``location`` where measured.
    """

    config: str
    accuracy: float
    cost: float
    segments: tuple[float, ...] = ()
    val_accuracy: float = math.nan
    observables: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def known(self) -> bool:
        """Whether the accuracy is a number rather than unknown (NaN)."""
        return not math.isnan(self.accuracy)


@dataclass(frozen=True)
class StreamProfile:
    """Everything a scheduler knows about one stream at a window start.

    start_accuracy: accuracy of the deployed model on this window's live data at full inference share.
    configs: the candidate retraining configs; an empty tuple means the stream cannot retrain.
    start_segments: (truth only, optional) the deployed model's live accuracy per time segment.
    observables: (optional) what is observable of the window at its start (the teacher labels of
        the previous chunk: ``class_distribution``, ``object_count``; ``time_of_day`` and
        ``location`` where the dataset has them); empty when nothing asked for them.
    """

    stream: str
    start_accuracy: float
    configs: tuple[ConfigProfile, ...] = ()
    start_segments: tuple[float, ...] = ()
    observables: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def config(self, name: str) -> ConfigProfile:
        """The profile of one config, by name."""
        for c in self.configs:
            if c.config == name:
                return c
        raise KeyError(f"stream {self.stream!r} has no profile for config {name!r}")


@dataclass(frozen=True)
class MeasuredUnder:
    """The window length and cluster a profile set was measured under (its costs and accuracies hold there)."""

    window_seconds: float
    accelerators: int
    delta: float


@dataclass(frozen=True)
class ProfileSet:
    """Profiles of many streams over many windows (the simulator's input).

    truth[w][s]: what really happens in window w for stream s (start accuracy; per config the
        accuracy reached and the accelerator-seconds needed).
    predicted[w][s]: what a scheduler is told (e.g. micro-profiling estimates); equal to truth
        where no prediction was recorded.
    window_ids: a label per window (e.g. the original's task ids); config_params: the learner knobs
        of each config name, if known.
    measured_under: the window length and cluster of the run that measured it (None: not recorded,
        as in sets written before it was, the original's and generated ones).
    """

    truth: tuple[tuple[StreamProfile, ...], ...]
    predicted: tuple[tuple[StreamProfile, ...], ...]
    window_ids: tuple[str, ...] = ()
    config_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    measured_under: MeasuredUnder | None = None

    @property
    def streams(self) -> tuple[str, ...]:
        """Stream names, in order."""
        return tuple(p.stream for p in self.truth[0]) if self.truth else ()

    @property
    def n_windows(self) -> int:
        """Number of windows."""
        return len(self.truth)
