"""Cityscapes: per-city samplelists generated from gtFine polygons, loaded as one camera per city.

Raw layout (as downloaded): ``<root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png``
and ``<root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_polygons.json``.

Generated (the original's layout): ``<root>/sample_lists/citywise/<city>_fine.csv``, no header, columns
idx, imgpath (relative to leftImg8bit/), class, x0, y0, x1, y1. A polygon becomes a sample when its
label is one of the 6 classes and its bounding box is more than ``min_size`` px wide *and* high.

Label choices: Cityscapes 'person', 'car', 'truck', 'bus', 'bicycle', 'motorcycle' map to the class
of the same name. 'rider' (a person on a bicycle or motorcycle) is left out by default, as in the
paper's class list; ``rider_as_person=true`` maps it to person (a COCO teacher sees a person).
'...group' labels (a crowd of several objects in one polygon) are always left out: one crop, many objects.

Time: Cityscapes publishes no clock, only 30-frame snippets at 17 Hz (sequence and frame numbers in
the file name; train cities annotate frame 19 of each snippet, the val cities number frames along
long drives). Frames are ordered by (sequence, frame) numerically; within a sequence
t = (frame - first frame) / 17, and each sequence starts ``sequence_gap_frames`` frame periods
(default 30: one snippet, 1.76 s) after the previous one's last frame, so a city is one continuous
stream of about 2.5-11 minutes (use ``window.seconds`` of 15-20 s for 10 windows per city).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.prepare.tables import build_stream_set
from ekya.streams.samples import CLASSES, StreamSet, split_cameras

if TYPE_CHECKING:
    from ekya.labels.teachers import Teacher

FPS = 17.0
LIST_COLUMNS = ("idx", "imgpath", "class", "x0", "y0", "x1", "y1")
_LABELS = {name: i for i, name in enumerate(CLASSES)}
_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)_gtFine_polygons\.json$")
_IMG = re.compile(r"_(?P<seq>\d+)_(?P<frame>\d+)_leftImg8bit\.[a-z]+$")
_MARKER = ".ekya_cityscapes.json"
_FORMAT = 1  # bump when the generated lists change meaning, so old caches are regenerated


def samplelist_dir(root: Path) -> Path:
    """Where the per-city samplelists live."""
    return Path(root) / "sample_lists" / "citywise"


def _class_of(label: str, rider_as_person: bool) -> int | None:
    if label == "rider" and rider_as_person:
        return _LABELS["person"]
    return _LABELS.get(label)


def _objects_of(json_path: Path, rel_img: str, rider_as_person: bool, min_size: int) -> list[tuple]:
    """The qualifying (class, box) of one annotation file, in the file's object order."""
    try:
        ann = json.loads(json_path.read_text())
        width, height, objects = int(ann["imgWidth"]), int(ann["imgHeight"]), ann["objects"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EkyaError(f"{json_path}: not a Cityscapes polygon file ({type(e).__name__}: {e}); "
                        "re-extract gtFine from the Cityscapes download") from None
    rows = []
    for k, obj in enumerate(objects):
        cls = _class_of(str(obj.get("label", "")), rider_as_person)
        if cls is None:
            continue
        try:
            pts = np.asarray(obj["polygon"], dtype=float).reshape(-1, 2)
        except (KeyError, ValueError, TypeError):
            raise EkyaError(f"{json_path}: object {k} ({obj.get('label')!r}) has no valid 'polygon'; "
                            "re-extract gtFine from the Cityscapes download") from None
        if len(pts) == 0:
            continue
        # Polygon vertices may touch the border; clamp so every box lies inside the image.
        x0, y0 = max(0, int(np.floor(pts[:, 0].min()))), max(0, int(np.floor(pts[:, 1].min())))
        x1, y1 = min(width, int(np.ceil(pts[:, 0].max()))), min(height, int(np.ceil(pts[:, 1].max())))
        if x1 - x0 > min_size and y1 - y0 > min_size:
            rows.append((rel_img, cls, x0, y0, x1, y1))
    return rows


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_cityscapes(root: Path, min_size: int = 50, rider_as_person: bool = False, force: bool = False) -> list[str]:
    """Generate ``<city>_fine.csv`` for every city (skipped when done with the same options); return the cities."""
    root = Path(root)
    left, gt = root / "leftImg8bit", root / "gtFine"
    for d in (left, gt):
        if not d.is_dir():
            raise EkyaError(f"{d}: directory not found; extract leftImg8bit_trainvaltest.zip and "
                            "gtFine_trainvaltest.zip from cityscapes-dataset.com into dataset.root")
    out = samplelist_dir(root)
    params = {"format": _FORMAT, "min_size": int(min_size), "rider_as_person": bool(rider_as_person)}
    marker = out / _MARKER
    if marker.is_file() and not force:
        done = json.loads(marker.read_text())
        if done.get("params") == params and all((out / f"{c}_fine.csv").is_file() for c in done["cities"]):
            return list(done["cities"])
    per_city: dict[str, list[tuple]] = {}
    # Sorted walks (never os.listdir order, the original's defect 16): splits, cities, then files.
    for split_dir in sorted(p for p in gt.iterdir() if p.is_dir()):
        for city_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            rows = per_city.setdefault(city_dir.name, [])
            for jp in sorted(city_dir.glob("*_gtFine_polygons.json")):
                m = _NAME.match(jp.name)
                if not m or m["city"] != city_dir.name:
                    raise EkyaError(f"{jp}: file name is not <city>_<seq>_<frame>_gtFine_polygons.json; "
                                    "remove it or restore the original name")
                rel = f"{split_dir.name}/{city_dir.name}/{m['city']}_{m['seq']}_{m['frame']}_leftImg8bit.png"
                if not (left / rel).is_file():
                    raise EkyaError(f"{jp}: its image leftImg8bit/{rel} is missing; extract leftImg8bit for "
                                    f"split {split_dir.name!r} too")
                key = (int(m["seq"]), int(m["frame"]))
                rows.extend((key, k, *r) for k, r in enumerate(_objects_of(jp, rel, rider_as_person, min_size)))
    if not per_city:
        raise EkyaError(f"{gt}: no <split>/<city>/ folders with polygon files; is this the gtFine folder?")
    out.mkdir(parents=True, exist_ok=True)
    cities = []
    for city in sorted(per_city):
        rows = sorted(per_city[city], key=lambda r: (r[0], r[1]))  # time order, then object order
        if not rows:
            continue  # e.g. the test split, whose public gtFine holds no object polygons
        lines = [f"{i},{r[2]},{r[3]},{r[4]},{r[5]},{r[6]},{r[7]}" for i, r in enumerate(rows)]
        _write_atomic(out / f"{city}_fine.csv", "\n".join(lines) + "\n")
        cities.append(city)
    _write_atomic(marker, json.dumps({"params": params, "cities": cities}, indent=1))
    return cities


def read_city_samplelist(csv_path: Path, city: str, sequence_gap_frames: int = 30) -> pd.DataFrame:
    """Read one ``<city>_fine.csv`` into time-ordered rows (idx not yet set); errors name file and line."""
    if not csv_path.is_file():
        raise EkyaError(f"{csv_path}: samplelist not found; delete {csv_path.parent / _MARKER} to regenerate")
    try:
        raw = pd.read_csv(csv_path, header=None, names=list(LIST_COLUMNS), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise EkyaError(f"{csv_path}: not a readable samplelist ({e}); delete it and regenerate") from None
    nums = {}
    for col in ("class", "x0", "y0", "x1", "y1"):
        v = pd.to_numeric(raw[col], errors="coerce")
        bad = v.isna().to_numpy().nonzero()[0]
        if len(bad):
            raise EkyaError(f"{csv_path}: line {int(bad[0]) + 1}: column {col!r} holds {raw[col].iloc[bad[0]]!r}, "
                            "not a number; fix or delete that line")
        nums[col] = v.round().astype(np.int64).to_numpy()
    bad = ((nums["class"] < 0) | (nums["class"] >= len(CLASSES))).nonzero()[0]
    if len(bad):
        raise EkyaError(f"{csv_path}: line {int(bad[0]) + 1}: class {int(nums['class'][bad[0]])} is outside "
                        f"0..{len(CLASSES) - 1} ({', '.join(CLASSES)}); fix or delete that line")
    seq, frame = [], []
    for i, p in enumerate(raw["imgpath"]):
        m = _IMG.search(p)
        if not m:
            raise EkyaError(f"{csv_path}: line {i + 1}: image path {p!r} is not <split>/<city>/"
                            "<city>_<seq>_<frame>_leftImg8bit.png; fix or delete that line")
        seq.append(int(m["seq"]))
        frame.append(int(m["frame"]))
    df = pd.DataFrame({
        "camera": city, "path": "leftImg8bit/" + raw["imgpath"], "x0": nums["x0"], "y0": nums["y0"],
        "x1": nums["x1"], "y1": nums["y1"], "label": nums["class"], "sequence": seq, "frame": frame,
        "source": str(csv_path), "source_row": np.arange(len(raw)) + 1,
    })
    df = df.sort_values(["sequence", "frame", "source_row"], kind="stable").reset_index(drop=True)
    df["timestamp"] = _timestamps(df["sequence"].to_numpy(), df["frame"].to_numpy(), sequence_gap_frames)
    df["teacher_label"] = df["label"]
    df["idx"] = 0
    return df


def _timestamps(seq: np.ndarray, frame: np.ndarray, gap_frames: int = 30) -> np.ndarray:
    """Seconds since the city's first frame: sequences laid end to end at 17 Hz (see module doc)."""
    t = np.zeros(len(seq))
    offset, start = 0.0, 0
    while start < len(seq):
        end = start + int(np.searchsorted(seq[start:], seq[start], side="right"))
        f0 = frame[start]
        t[start:end] = offset + (frame[start:end] - f0) / FPS
        offset = t[end - 1] + gap_frames / FPS
        start = end
    return t


def load_cityscapes(
    root: str | Path,
    cameras: Sequence[str] | None = None,
    pretrain_cameras: Sequence[str] = ("frankfurt", "munster"),
    min_size: int = 50,
    rider_as_person: bool = False,
    sequence_gap_frames: int = 30,
    check_images: bool = True,
    labeler: "Teacher | None" = None,
    name: str = "cityscapes",
    windows: Any = None,
) -> StreamSet:
    """Load Cityscapes, one camera per city (samplelists generated on first use).

    ``samples`` holds the stream cities (``cameras``, default every city not used for pretraining);
    the pretraining cities form their own StreamSet in ``meta['pretrain']`` so that they never count
    as streams. ``name`` and ``windows`` belong to the run's config (read by the runtime), not used here.
    """
    root = Path(root).expanduser()
    available = prepare_cityscapes(root, min_size=min_size, rider_as_person=rider_as_person)
    streams, pretrain = split_cameras(available, cameras, pretrain_cameras, f"{samplelist_dir(root)}")
    out = samplelist_dir(root)

    def _load(cities: list[str], meta: dict, teacher: "Teacher | None" = None) -> StreamSet:
        df = pd.concat([read_city_samplelist(out / f"{c}_fine.csv", c, sequence_gap_frames) for c in cities], ignore_index=True)
        return build_stream_set(name, root, df, CLASSES, meta, teacher, check_images)

    meta: dict[str, Any] = {"fps": FPS, "samplelists": str(out), "pretrain_cameras": pretrain}
    if pretrain:
        meta["pretrain"] = _load(pretrain, {"fps": FPS, "samplelists": str(out)})
    return _load(streams, meta, labeler)  # the teacher labels meta['pretrain'] too
