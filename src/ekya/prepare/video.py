"""Decode a video with PyAV and pick the frames to sample at a given rate.

Every frame is decoded (H.264 needs its reference frames), but only sampled frames are converted to
arrays; between samples the detector may "learn" from frames at its own ``learn_fps`` (a background
model), which get a cheap downscaled conversion. Frame ids are 1-based, as ffmpeg numbers extracted
frames (the original's layout); a frame's time is its presentation time since the stream start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from ekya.errors import EkyaError

EPS = 1e-6


@dataclass
class VideoInfo:
    """What a video's header says."""

    duration: float
    fps: float
    width: int
    height: int


@dataclass
class Sample:
    """A sampled frame: 1-based frame id, time in seconds, and the decoded frame."""

    frame_id: int
    time: float
    frame: av.VideoFrame


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise EkyaError(f"{path}: not a readable video ({e}); the file is truncated, corrupt or not a video") from None
    if not container.streams.video:
        container.close()
        raise EkyaError(f"{path}: has no video stream")
    return container


def probe(path: Path) -> VideoInfo:
    """Duration, frame rate and size of a video, from its header."""
    with _open(Path(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 0) or 30.0
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / 1e6
        else:
            duration = (s.frames or 0) / fps
        return VideoInfo(duration, fps, int(s.codec_context.width), int(s.codec_context.height))


def sample_frames(path: Path, fps: float, learn: Callable[[av.VideoFrame], None] | None = None,
                  learn_fps: float = 0.0) -> Iterator[Sample]:
    """Yield the first frame at or after each multiple of 1/fps s; pass frames at learn_fps to ``learn``."""
    if fps <= 0:
        raise EkyaError(f"fps={fps}: the sampling rate must be > 0 frames per second")
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threading: both cores decode
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        start = stream.start_time if stream.start_time is not None else 0
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = container.duration / 1e6 if container.duration is not None else None
        next_sample = next_learn = 0.0
        i, t = 0, 0.0
        try:
            for i, frame in enumerate(container.decode(stream), start=1):
                t = float((frame.pts - start) * stream.time_base) if frame.pts is not None else (i - 1) / rate
                if t + EPS >= next_sample:
                    yield Sample(i, t, frame)
                    next_sample = (math.floor(t * fps + EPS) + 1) / fps
                    if learn_fps > 0:
                        next_learn = (math.floor(t * learn_fps + EPS) + 1) / learn_fps
                elif learn is not None and learn_fps > 0 and t + EPS >= next_learn:
                    learn(frame)
                    next_learn = (math.floor(t * learn_fps + EPS) + 1) / learn_fps
        except av.error.FFmpegError as e:
            raise EkyaError(f"{path}: decoding failed after frame {i} ({e}); the file is truncated or "
                            "corrupt") from None
        if i == 0:
            raise EkyaError(f"{path}: no frame could be decoded; the file is truncated or corrupt")
        # A cut-off file whose header survived decodes "fine" up to the cut: compare with the header.
        if duration is not None and t < duration - max(1.0, 3.0 / rate):
            raise EkyaError(f"{path}: frames end at {t:.1f} s but the header says {duration:.1f} s; the file is "
                            "truncated (re-copy it)")
