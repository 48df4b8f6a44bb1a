"""Ingestion speed: a generated 60 s 720p video ingested at 1 fps by the default detector, against real time.

    python -m ekya.bench ingest [--seconds 60 --width 1280 --height 720 --fps 1]

Writes a synthetic fixed-camera MP4 (PyAV, H.264, 30 fps, moving rectangles) into a temporary
folder (not timed), then times ``ingest_videos`` on it at ``--fps`` with the default detector
(MOG2 background subtraction) and no labeler: decode, background model, detection, JPEG frames
and crops, samplelist. realtime_factor = video seconds / wall seconds (target: >= 2 on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ekya.prepare.detectors import make_detector
from ekya.prepare.ingest import IngestSettings, ingest_videos
from ekya.prepare.synthvideo import write_synthetic_video

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 20 s"


def main(argv: list[str]) -> dict:
    """Run the benchmark and return its figures."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench ingest", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--video-fps", type=int, default=30)
    ap.add_argument("--fps", type=float, default=1.0, help="sampling rate of ingestion")
    ap.add_argument("--objects", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ekya-bench-ingest-") as d:
        video = write_synthetic_video(Path(d) / "bench.mp4", seconds=args.seconds, width=args.width,
                                      height=args.height, fps=args.video_fps, objects=args.objects, seed=0)
        settings = IngestSettings(fps=args.fps, detector="bgsub")
        t0 = time.perf_counter()
        report = ingest_videos([video], Path(d) / "out", make_detector("bgsub"), settings, progress=False)
        wall = time.perf_counter() - t0
    if report.failed:
        raise RuntimeError(f"ingestion failed: {report.failed}")
    return {"video_seconds": round(report.video_seconds, 3), "wall_seconds": round(wall, 3),
            "realtime_factor": round(report.video_seconds / wall, 2), "crops": report.crops,
            "resolution": f"{args.width}x{args.height}", "sample_fps": args.fps, "detector": "bgsub-mog2"}
