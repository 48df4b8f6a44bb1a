"""A measured share-throughput curve, and the cluster/*.yaml profile that carries it (calibrate, accelerator check).

Training throughput measured at several shares of one accelerator becomes the ``throughput`` table
of conf/cluster (the format of ``ekya.plans.curves.TrainThroughput``: seconds per task at each
share; a task here is 1000 training samples), so the schedulers and emulate plan with the curve the
machine really has. Torch-free: the measuring is done by the callers.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.hydra_compose import CONF_DIR
from ekya.plans.curves import (
    DEFAULT_CAPACITY,
    DEFAULT_MAX_INFERENCE_SHARE,
    DEFAULT_RELATIVE_ACCURACY,
    DEFAULT_SUBSAMPLING,
    TrainThroughput,
)

#: training samples in one "task" of the throughput table
TASK_SAMPLES = 1000


@dataclass(frozen=True)
class SharePoint:
    """Throughputs measured at one share of one accelerator (effective GFLOP/s: FLOPs computed / wall time)."""

    share: float
    train_samples_per_s: float
    infer_samples_per_s: float
    train_gflops: float
    infer_gflops: float


@dataclass(frozen=True)
class ProportionCheck:
    """Two processes at shares a and b ran at once: did their throughputs split in that proportion?"""

    share_a: float
    share_b: float
    rate_a: float
    rate_b: float
    tolerance: float  # relative, on the ratio rate_b / rate_a

    @property
    def expected(self) -> float:
        """The ratio the shares promise."""
        return self.share_b / self.share_a

    @property
    def ratio(self) -> float:
        """The ratio measured."""
        return self.rate_b / self.rate_a if self.rate_a > 0 else math.inf

    @property
    def ok(self) -> bool:
        """Whether the measured ratio is within ``tolerance`` (relative) of the expected one."""
        return abs(self.ratio / self.expected - 1.0) <= self.tolerance


def median_rate(counts: Sequence[float], seconds: Sequence[float]) -> float:
    """The median of per-chunk rates count/seconds (robust to one chunk disturbed by another process)."""
    rates = [c / s for c, s in zip(counts, seconds) if s > 0]
    if not rates or len(rates) != len(counts):
        raise EkyaError("a throughput measurement needs chunks with positive durations")
    return float(statistics.median(rates))


def throughput_table(points: Sequence[SharePoint]) -> dict[str, object]:
    """The ``cluster.throughput`` table for measured points: shares increasing up to 1.0, seconds per task.

    The full share must be among them: the curve is relative to one whole accelerator.
    """
    pts = sorted(points, key=lambda p: p.share)
    shares = [round(float(p.share), 4) for p in pts]
    if len(set(shares)) != len(shares):
        raise EkyaError(f"throughput curve: each share measured once, got shares {shares}")
    if not shares or shares[-1] != 1.0 or shares[0] <= 0:
        raise EkyaError(f"throughput curve: shares must lie in (0, 1] and include 1.0, got {shares}")
    bad = [p.share for p in pts if not (p.train_samples_per_s > 0 and math.isfinite(p.train_samples_per_s))]
    if bad:
        raise EkyaError(f"throughput curve: no positive training throughput measured at share(s) {bad}")
    seconds = [float(f"{TASK_SAMPLES / p.train_samples_per_s:.6g}") for p in pts]
    TrainThroughput(kind="mps", shares=tuple(shares), seconds_per_task=tuple(seconds))  # the reader accepts it
    return {"kind": "mps", "shares": shares, "seconds_per_task": seconds}


def profile_name(label: str) -> str:
    """A cluster config name from a device label ("NVIDIA H200" -> "nvidia-h200")."""
    name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    if not name:
        raise EkyaError(f"cannot make a cluster config name from {label!r}; pass the output path explicitly")
    return name


def keep_up_share(points: Sequence[SharePoint], frames_per_second: float) -> float:
    """The smallest share whose measured inference rate keeps up with ``frames_per_second`` (linear between points).

    Below the smallest measured share the rate is taken as proportional to the share (from 0 at 0);
    a frame rate above the full share's rate needs the whole accelerator and more: 1.0 is returned,
    and the curve then subsamples at every share.
    """
    fps = float(frames_per_second)
    if not (fps > 0 and math.isfinite(fps)):
        raise EkyaError(f"--frames-per-second must be a rate > 0, got {frames_per_second!r}")
    pts = [(0.0, 0.0)] + [(p.share, p.infer_samples_per_s) for p in sorted(points, key=lambda p: p.share)]
    for (s0, r0), (s1, r1) in zip(pts, pts[1:]):
        if r1 >= fps:
            return float(s0 + (s1 - s0) * (fps - r0) / (r1 - r0)) if r1 > r0 else float(s1)
    return 1.0


def inference_max_share(points: Sequence[SharePoint], frames_per_second: float | None) -> float:
    """The profile's inference ``max_share``: the keep-up share for ``frames_per_second``, else the default curve's."""
    if frames_per_second is None:
        return DEFAULT_MAX_INFERENCE_SHARE
    return round(keep_up_share(points, frames_per_second), 4)


def profile_yaml(points: Sequence[SharePoint], *, title: str, how: str, accelerators: int | None = None,
                 delta: float | None = None, notes: Sequence[str] = (), frames_per_second: float | None = None,
                 capacity: float | None = None) -> str:
    """The text of a conf/cluster/*.yaml with the measured throughput table (keys as in cluster/default.yaml).

    ``accelerators`` and ``delta`` are the profiled cluster's; None takes conf/cluster/default.yaml's (their owner).

    With ``frames_per_second`` (a camera's frame rate in wall time) the inference curve's
    ``max_share`` is the measured share that keeps up with it; otherwise the default curve's.
    ``capacity``: the measured capacity for concurrent work (None: not measured, the conserving default).
    """
    default = yaml.safe_load((CONF_DIR / "cluster" / "default.yaml").read_text())
    accelerators = default["accelerators"] if accelerators is None else accelerators
    delta = default["delta"] if delta is None else delta
    table = throughput_table(points)
    max_share = inference_max_share(points, frames_per_second)
    if frames_per_second is None:
        inference_note = "# Inference accuracy vs share: the default curve (see cluster/default.yaml)."
    else:
        inference_note = (f"# Inference accuracy vs share: max_share is the measured share whose inference rate "
                          f"keeps up with {float(frames_per_second):.4g} frames/s;\n"
                          "# below it the stream subsamples as in the default curve (see cluster/default.yaml).")
    full = max(points, key=lambda p: p.share)
    lines = [f"# {title}", f"# Measured by: {how}"]
    lines += [f"# {n}" for n in notes]
    lines += ["# Measured (share: training samples/s, effective training GFLOP/s; inference samples/s, GFLOP/s):"]
    for p in sorted(points, key=lambda p: p.share):
        lines.append(f"#   {p.share:.2f}: {p.train_samples_per_s:.1f}, {p.train_gflops:.3f}; "
                     f"{p.infer_samples_per_s:.1f}, {p.infer_gflops:.3f}")
    lines += [
        f"# With emulate, pair it with runtime.accelerator_gflops={full.train_gflops:.4g} (the full-share rate;",
        "# x window_wall_seconds / window.seconds to predict a runtime=ray run whose windows play faster).",
        "# Number of accelerators G; a job never spans two of them.",
        f"accelerators: {int(accelerators)}",
        "# Allocation quantum Delta: every planned share is a multiple of it.",
        f"delta: {float(delta)}",
        f"# Training throughput vs share, measured: seconds per task ({TASK_SAMPLES} training samples) at each",
        "# share; rate(share) = t(1.0) / t(share), piecewise-linear in between (see ekya.plans.curves).",
        "throughput:",
        f"  kind: {table['kind']}",
        f"  shares: {list(table['shares'])}",
        f"  seconds_per_task: {list(table['seconds_per_task'])}",
        ("# Capacity for concurrent work in lone-job units, measured (see the notes above)." if capacity is not None
         else "# Capacity for concurrent work: not measured here; 1.0 is the conserving default (= linear)."),
        f"capacity: {round(float(capacity), 4) if capacity is not None else DEFAULT_CAPACITY}",
        inference_note,
        "inference:",
        f"  max_share: {max_share}",
        f"  subsampling: {[int(v) for v in DEFAULT_SUBSAMPLING]}",
        f"  relative_accuracy: {[float(v) for v in DEFAULT_RELATIVE_ACCURACY]}",
        "# Optional per-camera inference curves (see cluster/default.yaml).",
        "stream_inference: {}",
    ]
    text = "\n".join(lines) + "\n"
    yaml.safe_load(text)  # a profile that does not parse is never written
    return text


def write_profile(path: str | Path, text: str) -> Path:
    """Write a cluster profile in one step; cluster/default.yaml is never replaced."""
    path = Path(path)
    if path.suffix != ".yaml":
        raise EkyaError(f"cluster profile {path}: the file name must end in .yaml "
                        "(Hydra reads cluster=NAME from NAME.yaml)")
    if path.name == "default.yaml" and path.parent.name == "cluster":
        raise EkyaError(f"refusing to replace {path}: choose another name (cluster=NAME selects NAME.yaml)")
    return atomic_write(path, text)
