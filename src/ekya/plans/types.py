"""Values that travel from scheduling to execution. Torch-free.

Units: shares are fractions of one accelerator (0.25 = a quarter GPU); times are seconds from the
window start; costs are accelerator-seconds at a full (1.0) share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

ShareFn = Callable[[float], float]


@dataclass(frozen=True)
class Budget:
    """What one window's scheduling decision may spend.

    accelerators: G, the number of physical accelerators (a job never spans two).
    window: the retraining window length T in seconds.
    delta: the allocation quantum; every planned share is a multiple of it.
    label_delay: seconds at the window start during which teacher labels are not yet ready, so
        no retraining can run (the golden-label delay); the scheduler plans for window - label_delay.
    infer_scale: accuracy multiplier of inference as a function of its share (paper section 1.5).
    train_rate: accelerator-seconds of retraining progress per wall-second at a share
        (sub-linear under MPS; the identity for linear scaling).
    stream_scales: optional per-stream inference curves (stream name -> curve) overriding
        infer_scale for those streams (cameras differ in how subsampling hurts them).
    derive_keep_up: inference keep-up shares are derived per camera by the runtime (see the field).
    profiling_seconds / profiling_fraction: micro-profiling trials run in the last
        ``profiling_seconds`` before ``label_delay`` (after the teacher's own delay) and hold
        ``profiling_fraction`` of every accelerator meanwhile, so inference gets only what is left:
        every allotment is scaled by 1 - profiling_fraction over that interval.
    """

    accelerators: int
    window: float
    delta: float
    label_delay: float
    infer_scale: ShareFn
    train_rate: ShareFn
    stream_scales: Mapping[str, ShareFn] = field(default_factory=dict)
    profiling_seconds: float = 0.0
    profiling_fraction: float = 0.0
    #: ``cluster.inference.max_share: auto``: a runtime that knows the model and the streams derives each
    #: camera's keep-up share (ekya.execution.keep_up); until then ``infer_scale`` holds the table's default
    derive_keep_up: bool = False

    @property
    def profiling_start(self) -> float:
        """When the micro-profiling trials start (they end at ``label_delay``)."""
        d = min(max(self.label_delay, 0.0), self.window)
        return max(0.0, d - max(self.profiling_seconds, 0.0))

    @property
    def profiling_span(self) -> float:
        """Seconds during which the trials hold accelerators (0 without micro-profiling)."""
        if self.profiling_seconds <= 0:
            return 0.0
        return min(max(self.label_delay, 0.0), self.window) - self.profiling_start

    @property
    def profiling_keep(self) -> float:
        """The fraction of its allotment inference keeps while the trials run."""
        return 1.0 - self.profiling_fraction if self.profiling_seconds > 0 else 1.0

    def scale_for(self, stream: str | None) -> ShareFn:
        """The inference curve of one stream (its own if given, else the cluster's)."""
        return self.stream_scales.get(stream, self.infer_scale) if stream is not None else self.infer_scale

    @property
    def capacity(self) -> float:
        """Total accelerator share available at any instant."""
        return float(self.accelerators)


@dataclass(frozen=True)
class StreamPlan:
    """One stream's decision for a window: retrain with ``config`` (None = don't) and the split.

    infer_device / train_device: the physical accelerator each job is packed onto (None = no job).
    predicted_accuracy: the scheduler's estimate of this stream's window accuracy (NaN if none).
    """

    stream: str
    config: str | None
    infer_share: float
    train_share: float
    infer_device: int | None = None
    train_device: int | None = None
    predicted_accuracy: float = float("nan")


@dataclass(frozen=True)
class Plan:
    """A scheduler's decision for all streams of one window.

    predicted_accuracy: the scheduler's own estimate of the mean window accuracy (NaN if none).
    """

    streams: tuple[StreamPlan, ...]
    predicted_accuracy: float = float("nan")

    def by_stream(self) -> Mapping[str, StreamPlan]:
        """The plan of each stream, keyed by stream name."""
        return {s.stream: s for s in self.streams}
