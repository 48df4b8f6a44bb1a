"""Cityscapes preparation: gtFine polygons -> per-city samplelists, the layout ``ekya.streams.cityscapes`` loads.

A polygon becomes a sample when its label is one of the 6 classes and its bounding box is more than
``min_size`` px wide *and* high. Cityscapes 'person', 'car', 'truck', 'bus', 'bicycle', 'motorcycle'
map to the class of the same name. 'rider' (a person on a bicycle or motorcycle) is left out by
default, as in the paper's class list; ``rider_as_person=true`` maps it to person (a COCO teacher
sees a person). '...group' labels (a crowd of several objects in one polygon) are always left out:
one crop, many objects. Lists are rewritten only when the options change (see the marker).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.streams import cityscapes
from ekya.streams.classes import SIX_CLASSES
from ekya.streams.samplelist import samplelist_dir
from ekya.streams.samples import StreamSet

_LABELS = {name: i for i, name in enumerate(SIX_CLASSES)}
_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)_gtFine_polygons\.json$")
_FORMAT = 1  # bump when the generated lists change meaning, so old caches are regenerated


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
    marker = out / cityscapes.PREPARED_MARKER
    if marker.is_file() and not force:
        done = json.loads(marker.read_text())
        if done.get("params") == params and all((out / f"{c}_fine.csv").is_file() for c in done["cities"]):
            return list(done["cities"])
    per_city: dict[str, list[tuple]] = {}
    # Sorted walks (never os.listdir order, which differs between file systems): splits, cities, then files.
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
        atomic_write(out / f"{city}_fine.csv", "\n".join(lines) + "\n")
        cities.append(city)
    atomic_write(marker, json.dumps({"params": params, "cities": cities}, indent=1))
    return cities


def prepare_and_load_cityscapes(
    root: str | Path,
    cameras: Sequence[str] | None = None,
    pretrain_cameras: Sequence[str] = ("frankfurt", "munster"),
    min_size: int = 50,
    rider_as_person: bool = False,
    sequence_gap_frames: int = 30,
    check_images: bool = True,
    name: str = "cityscapes",
) -> StreamSet:
    """Prepare the samplelists on first use (or when the options change), then load them (``dataset=cityscapes``)."""
    root = Path(root).expanduser()
    prepare_cityscapes(root, min_size=min_size, rider_as_person=rider_as_person)
    return cityscapes.load_cityscapes(root, cameras, pretrain_cameras, sequence_gap_frames, check_images, name)
