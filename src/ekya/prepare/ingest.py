"""Video ingestion: sample frames, detect, crop, label, and write the frame samplelist layout.

For each video (camera = the file name without extension) under ``out``::

    sample_lists/citywise/<camera>.csv                  idx,frame id,class,xmin,ymin,xmax,ymax,score,timestamp,camera
    <camera>/frame_images/<frame id:06d>.jpg            sampled frames that hold an object
    <camera>/classification_images/<frame id:06d>_<x0>_<y0>_<x1>_<y1>.jpg   the crops
    <camera>/.ekya_ingest.json                          completion marker (INGEST_MARKER): settings and counts

A video is written into a temporary folder under ``out`` and moved into place only when complete
(marker inside the camera folder, samplelist written last), so an interrupted run leaves nothing half-written
and a rerun skips every video whose marker and samplelist exist with the same settings. A video that
decodes to fewer seconds than its header declares (cut off) is ingested as far as it decodes, with a
warning naming both durations, and ingested again by the next run. ``class``
is the teacher's label when a labeler is given, else the detector's class mapped to the 6 classes
(-1 when the detector names none, e.g. background subtraction: label at load time then).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ekya.errors import EkyaError
from ekya.prepare.detectors import Detection, Detector
from ekya.prepare.video import Decoded, probe, sample_frames
from ekya.streams.classes import SIX_CLASSES, class_map
from ekya.streams.samplelist import INGEST_MARKER, frame_path, samplelist_path, write_frame_samplelist
from ekya.streams.samples import StreamSet

if TYPE_CHECKING:
    from ekya.labels.teachers import Teacher

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")
_COCO_TO_CLASS = class_map("coco91", "six")  # detectors emit coco91 ids


@dataclass
class IngestSettings:
    """The knobs that change what ingestion writes (kept in each video's marker)."""

    fps: float = 1.0
    min_size: int = 30       # a box must be more than this many px wide and high (the original's min_res)
    min_score: float = 0.5   # detections below this score are dropped (the original had no threshold)
    jpeg_quality: int = 95
    write_crops: bool = True
    detector: str = ""
    labeler: str = ""


@dataclass
class IngestReport:
    """What a run did: videos ingested, skipped (already done) and failed (with the reason).

    ``truncated`` lists the ingested videos whose frames ended before their header said (what decoded was
    ingested; each was also reported through ``log`` as it happened).
    """

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    crops: int = 0
    video_seconds: float = 0.0


def find_videos(spec: str | Sequence[str]) -> list[Path]:
    """Videos named by a path, a folder (its video files) or a glob, or a list of those; sorted, unique."""
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    found: set[Path] = set()
    for s in specs:
        s = os.path.expanduser(str(s))
        if os.path.isdir(s):
            found.update(p for p in Path(s).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        elif glob.has_magic(s):
            found.update(Path(p) for p in glob.glob(s, recursive=True) if os.path.isfile(p))
        elif os.path.isfile(s):
            found.add(Path(s))
        else:
            raise EkyaError(f"video={s!r}: no such file or folder; give a video file, a folder or a glob")
    if not found:
        raise EkyaError(f"video={spec!r}: matches no video file")
    return sorted(found)


def camera_name(video: Path) -> str:
    """A camera name from a video file name: its stem, with characters unsafe in paths replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(video).stem)


def is_done(out: Path, camera: str, settings: IngestSettings) -> bool:
    """Whether this camera was ingested completely with the same settings.

    A video ingested truncated (its marker says ``truncated``) is not done: the next run ingests it again,
    so a re-copied file is read in full, and a still-cut one is reported again.
    """
    marker, csv = Path(out) / camera / INGEST_MARKER, samplelist_path(out, camera)
    if not (marker.is_file() and csv.is_file()):
        return False
    try:
        written = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return written.get("settings") == asdict(settings) and "truncated" not in written


def _keep(d: Detection, settings: IngestSettings) -> int | None:
    """The class of a detection worth keeping (-1: unknown), or None to drop it."""
    if d.score < settings.min_score or d.x1 - d.x0 <= settings.min_size or d.y1 - d.y0 <= settings.min_size:
        return None
    if d.coco91 < 0:
        return -1
    return _COCO_TO_CLASS.get(d.coco91)  # None: a COCO class that is none of ours (e.g. traffic light)


def _write_jpg(path: Path, rgb: np.ndarray, quality: int) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
        raise EkyaError(f"{path}: could not write the image; is the disk full or the folder read-only?")


def ingest_video(video: Path, out: Path, detector: Detector, settings: IngestSettings,
                 teacher: Teacher | None = None, progress: bool = True) -> dict[str, Any]:
    """Ingest one video into ``out`` atomically; return its counts (see module doc)."""
    video, out = Path(video), Path(out)
    camera = camera_name(video)
    info = probe(video)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".ingest-{camera}-"))
    try:
        cam_dir = tmp / camera
        (cam_dir / "frame_images").mkdir(parents=True)
        if settings.write_crops:
            (cam_dir / "classification_images").mkdir()
        if hasattr(detector, "reset"):
            detector.reset()
        rows = []
        decoded = Decoded()
        bar = tqdm(total=max(1, int(info.duration * settings.fps)), desc=camera, unit="frame", leave=False,
                   disable=not progress)
        for s in sample_frames(video, settings.fps, detector.learn, detector.learn_fps, decoded):
            bar.update(1)
            rgb = s.frame.to_ndarray(format="rgb24")
            kept = [(d, c) for d in detector.detect(s.frame, rgb) if (c := _keep(d, settings)) is not None]
            if not kept:
                continue
            _write_jpg(tmp / frame_path(camera, s.frame_id), rgb, settings.jpeg_quality)
            for d, cls in kept:
                if settings.write_crops:
                    name = f"{s.frame_id:06d}_{d.x0}_{d.y0}_{d.x1}_{d.y1}.jpg"
                    _write_jpg(cam_dir / "classification_images" / name, rgb[d.y0:d.y1, d.x0:d.x1],
                               settings.jpeg_quality)
                rows.append((camera, s.frame_id, s.time, d.x0, d.y0, d.x1, d.y1, d.score, cls))
        bar.close()
        df = pd.DataFrame(rows, columns=["camera", "frame", "timestamp", "x0", "y0", "x1", "y1", "score", "label"])
        if teacher is not None and len(df):
            df = _label(df, tmp, camera, teacher)
        counts = {"video": str(video), "crops": len(df), "frames": int(df["frame"].nunique()),
                  "video_seconds": decoded.seconds if decoded.truncated else info.duration,
                  "settings": asdict(settings)}
        if decoded.truncated:  # ingested as far as it decodes; the marker says so, and the next run reads it again
            counts["truncated"] = decoded.warning(video)
        (cam_dir / INGEST_MARKER).write_text(json.dumps(counts, indent=1))
        _commit(tmp, out, camera, df)
        return counts
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _label(df: pd.DataFrame, tmp: Path, camera: str, teacher: Teacher) -> pd.DataFrame:
    """Replace the detector's classes by the teacher's labels, reading crops from the temporary frames."""
    from ekya.labels.teachers import apply_teacher

    samples = df.assign(idx=np.arange(len(df)), path=[frame_path(camera, f) for f in df["frame"]],
                        teacher_label=df["label"])
    labelled = apply_teacher(StreamSet(camera, tmp, samples, SIX_CLASSES), teacher).samples
    return df.assign(label=labelled["teacher_label"].to_numpy())


def _commit(tmp: Path, out: Path, camera: str, rows: pd.DataFrame) -> None:
    """Move a finished video into place: old samplelist out first, folder swapped, new samplelist last."""
    final_dir, csv = out / camera, samplelist_path(out, camera)
    csv.unlink(missing_ok=True)  # never a samplelist naming frames of another run
    if final_dir.exists():
        old = tmp / "old"
        os.replace(final_dir, old)
    os.replace(tmp / camera, final_dir)
    write_frame_samplelist(rows, csv)


def ingest_videos(videos: Sequence[Path], out: Path, detector: Detector, settings: IngestSettings,
                  teacher: Teacher | None = None, progress: bool = True,
                  log: Callable[[str], None] = print) -> IngestReport:
    """Ingest every video, skipping finished ones; a failing video is reported and the others go on."""
    report = IngestReport()
    cams: dict[str, Path] = {}
    for v in videos:
        c = camera_name(v)
        if c in cams:
            raise EkyaError(f"{v} and {cams[c]} would both be camera {c!r}; rename one of them")
        cams[c] = Path(v)
    for v in tqdm(list(videos), desc="videos", unit="video", disable=not progress or len(videos) < 2):
        cam = camera_name(v)
        if is_done(out, cam, settings):
            report.skipped.append(cam)
            continue
        try:
            counts = ingest_video(v, out, detector, settings, teacher, progress)
        except EkyaError as e:
            report.failed.append((str(v), str(e)))
            log(f"ekya.prepare: failed: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - one broken video must not stop the others
            report.failed.append((str(v), f"{type(e).__name__}: {e}"))
            log(f"ekya.prepare: failed: {v}: {type(e).__name__}: {e}")
            continue
        report.done.append(cam)
        if "truncated" in counts:
            report.truncated.append(cam)
            log(f"ekya.prepare: warning: {counts['truncated']}")
        report.crops += counts["crops"]
        report.video_seconds += counts["video_seconds"]
    return report
