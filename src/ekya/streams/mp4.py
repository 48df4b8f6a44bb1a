"""Your own videos (``dataset=mp4``): what ``python -m ekya.prepare`` wrote, one camera per video.

Reads ``<root>/sample_lists/citywise/<camera>.csv`` (the frame samplelist layout, classes 0..5 or -1
for objects the detector found without naming a class) with frames under
``<root>/<camera>/frame_images/``. Only videos whose ingestion completed (marker present) are
streams. Rows are in time order (timestamp, then list order), numbered 0..n-1 per camera.
The run's labeler fills ``teacher_label``; videos ingested with the background-subtraction detector
and no labeler have no class, so they need a labeler that classifies crops (``labeler=classifier``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ekya.errors import EkyaError
from ekya.streams.build import load_cameras
from ekya.streams.classes import SIX_CLASSES
from ekya.streams.samplelist import INGEST_MARKER, read_frame_samplelist, samplelist_dir, samplelist_path
from ekya.streams.samples import StreamSet


def ingested_cameras(root: Path) -> list[str]:
    """Cameras whose ingestion completed (samplelist and completion marker present), sorted."""
    return sorted(p.stem for p in samplelist_dir(root).glob("*.csv") if (Path(root) / p.stem / INGEST_MARKER).is_file())


def read_ingested_camera(root: Path, camera: str) -> pd.DataFrame:
    """One ingested camera's rows; EkyaError when its video held no object that passed the filters."""
    csv = samplelist_path(root, camera)
    with open(csv) as f:
        if sum(1 for _ in f) < 2:
            raise EkyaError(f"{csv}: the video had no object that passed min_size/min_score; lower them and "
                            "re-ingest, or leave the camera out (dataset.cameras)")
    return read_frame_samplelist(csv, camera, allow_unknown=True).assign(source=str(csv))


def load_mp4(
    root: str | Path,
    cameras: Sequence[str] | None = None,
    pretrain_cameras: Sequence[str] = (),
    check_images: bool = True,
    name: str = "mp4",
) -> StreamSet:
    """Load ingested videos as cameras, unlabelled; pretraining cameras go to ``meta['pretrain']``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EkyaError(f"{root}: directory not found; run  python -m ekya.prepare video=... out={root}  first")
    available = ingested_cameras(root)
    if not available:
        raise EkyaError(f"{root}: no ingested video (no sample_lists/citywise/<camera>.csv with a completion "
                        f"marker); run  python -m ekya.prepare video=... out={root}")
    return load_cameras(name, root, lambda c: read_ingested_camera(root, c), available, cameras, pretrain_cameras,
                        f"{root} (ingested videos)", SIX_CLASSES, {}, check_images)
