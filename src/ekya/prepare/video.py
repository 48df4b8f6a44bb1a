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


def _declared_seconds(container: av.container.InputContainer, stream: av.VideoStream, fps: float) -> float | None:
    """How long the header says the video is: the longer of its duration and its frame count at ``fps``.

    Both are read: a cut-off AVI keeps its header's frame count while FFmpeg estimates its duration from
    the bytes that are left, so the duration alone would make a truncated file look complete.
    """
    if stream.duration is not None and stream.time_base is not None:
        duration: float | None = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1e6
    else:
        duration = None
    counted = (stream.frames or 0) / fps if fps > 0 else 0.0
    return max(duration or 0.0, counted) or duration


def probe(path: Path) -> VideoInfo:
    """Duration, frame rate and size of a video, from its header."""
    with _open(Path(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 0) or 30.0
        duration = _declared_seconds(c, s, fps) or 0.0
        return VideoInfo(duration, fps, int(s.codec_context.width), int(s.codec_context.height))


@dataclass
class Decoded:
    """How much of a video decoded (filled in by :func:`sample_frames` when it has read the last frame)."""

    #: the end of the last decoded frame, in seconds since the stream start
    seconds: float = 0.0
    #: what the header declares (None: it says nothing)
    declared: float | None = None
    #: frames may end this much before the declared end without the file counting as cut off
    slack: float = 1.0
    #: why the decoder stopped before the end of the file, if it did (a cut-off file's last packet is partial)
    error: str | None = None

    @property
    def truncated(self) -> bool:
        """Whether decoding stopped early: frames end well before the header says, or the decoder gave up."""
        return self.error is not None or (self.declared is not None and self.seconds < self.declared - self.slack)

    def warning(self, path: Path) -> str:
        """What to tell the user about a truncated video: the file, both durations, what was kept."""
        declared = f"declares {self.declared:.1f} s of video" if self.declared is not None else "declares no duration"
        stopped = f" (the decoder stopped: {self.error})" if self.error else ""
        what = "truncated or corrupt" if self.error else "truncated"
        return (f"{path}: {what}: its header {declared} but frames decode only up to {self.seconds:.1f} s{stopped}; "
                f"ingested those {self.seconds:.1f} s (re-copy the file and rerun to ingest the rest)")


def sample_frames(path: Path, fps: float, learn: Callable[[av.VideoFrame], None] | None = None,
                  learn_fps: float = 0.0, decoded: Decoded | None = None) -> Iterator[Sample]:
    """Yield the first frame at or after each multiple of 1/fps s; pass frames at learn_fps to ``learn``.

    A file that decodes to fewer seconds than its header declares (cut off while copying) yields what
    decoded; ``decoded`` (when given) then says how much that was, and whether it is ``truncated``.
    """
    if fps <= 0:
        raise EkyaError(f"fps={fps}: the sampling rate must be > 0 frames per second")
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threading: both cores decode
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        start = stream.start_time if stream.start_time is not None else 0
        declared = _declared_seconds(container, stream, rate)
        next_sample = next_learn = 0.0
        i, t, error = 0, 0.0, None
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
            if i == 0:
                raise EkyaError(f"{path}: decoding failed at the first frame ({e}); the file is truncated or "
                                "corrupt") from None
            error = str(e)  # the frames before the bad packet were sound: they stand (the caller is told)
        if i == 0:
            raise EkyaError(f"{path}: no frame could be decoded; the file is truncated or corrupt")
        if decoded is not None:
            # a cut-off file whose header survived decodes "fine" up to the cut: the caller compares
            decoded.seconds, decoded.declared, decoded.slack = t + 1.0 / rate, declared, max(1.0, 3.0 / rate)
            decoded.error = error
