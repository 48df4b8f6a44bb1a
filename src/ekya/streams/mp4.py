"""Your own videos (``dataset=mp4``): what ``python -m ekya.prepare`` wrote, one camera per video.

Reads ``<root>/sample_lists/citywise/<camera>.csv`` (the frame samplelist layout, classes 0..5 or -1
for objects the detector found without naming a class) with frames under
``<root>/<camera>/frame_images/``. Only videos whose ingestion completed (marker present) are
streams. Rows are in time order (timestamp, then list order), numbered 0..n-1 per camera.
The configured labeler fills ``teacher_label``; the load fails if it leaves a camera with no label at
all (videos ingested with the background-subtraction detector and no labeler need a labeler here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from ekya.errors import EkyaError
from ekya.prepare.ingest import MARKER
from ekya.prepare.tables import build_stream_set
from ekya.streams.samplelist import read_frame_samplelist, samplelist_path
from ekya.streams.samples import CLASSES, StreamSet, split_cameras

if TYPE_CHECKING:
    from ekya.labels.teachers import Teacher


def ingested_cameras(root: Path) -> list[str]:
    """Cameras whose ingestion completed (samplelist and completion marker present), sorted."""
    lists = Path(root) / "sample_lists" / "citywise"
    return sorted(p.stem for p in lists.glob("*.csv") if (Path(root) / p.stem / MARKER).is_file())


def load_mp4(
    root: str | Path,
    cameras: Sequence[str] | None = None,
    pretrain_cameras: Sequence[str] = (),
    check_images: bool = True,
    labeler: "Teacher | None" = None,
    name: str = "mp4",
    windows: Any = None,
) -> StreamSet:
    """Load ingested videos as cameras; pretraining cameras go to ``meta['pretrain']``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EkyaError(f"{root}: directory not found; run  python -m ekya.prepare video=... out={root}  first")
    available = ingested_cameras(root)
    if not available:
        raise EkyaError(f"{root}: no ingested video (no sample_lists/citywise/<camera>.csv with a completion "
                        f"marker); run  python -m ekya.prepare video=... out={root}")
    streams, pretrain = split_cameras(available, cameras, pretrain_cameras, f"{root} (ingested videos)")

    def _read(cam: str) -> pd.DataFrame:
        csv = samplelist_path(root, cam)
        with open(csv) as f:
            if sum(1 for _ in f) < 2:
                raise EkyaError(f"{csv}: the video had no object that passed min_size/min_score; lower them and "
                                "re-ingest, or leave the camera out (dataset.cameras)")
        return read_frame_samplelist(csv, cam, allow_unknown=True).assign(source=str(csv))

    def _load(cams: list[str], meta: dict, teacher: "Teacher | None" = None) -> StreamSet:
        df = pd.concat([_read(c) for c in cams], ignore_index=True)
        return build_stream_set(name, root, df, CLASSES, meta, teacher, check_images)

    meta: dict[str, Any] = {"pretrain_cameras": pretrain}
    if pretrain:
        meta["pretrain"] = _load(pretrain, {})
    ss = _load(streams, meta, labeler)  # the teacher labels meta['pretrain'] too
    for cam in ss.cameras:
        if bool((ss.camera(cam)["teacher_label"] < 0).all()):
            raise EkyaError(f"camera {cam!r}: no sample has a teacher label (the video was ingested without "
                            "classes); set a labeler that classifies crops, e.g. labeler@dataset.labeler=classifier "
                            "dataset.labeler.weights=PATH, or re-ingest with a labeler or a torchvision detector")
    return ss
