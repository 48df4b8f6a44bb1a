"""The datasets' class lists, the two COCO numberings, and the one mapping from COCO ids to dataset classes.

Two class sets are in use: the six classes of every dataset but Waymo (``SIX_CLASSES``: Cityscapes,
Urban, your own videos, the synthetic default) and Waymo's four (``WAYMO_CLASSES``).

Two numberings of the same 80 COCO object categories are in use, and the original code mixed them
(coco80 in its class list and its classifier, coco91 in its detector and its Waymo mapping):

- **coco91**: the ids of the COCO paper and annotation files, 1..90 with 10 unused ids (12 street
  sign, 26 hat, 29 shoe, 30 eye glasses, 45 plate, 66 mirror, 68 window, 69 desk, 71 door,
  83 blender). TensorFlow's and torchvision's COCO detectors emit these (torchvision pads the gaps
  with 'N/A'); 0 is the background.
- **coco80**: contiguous ids 1..80 in the same order (0 = background), as in the original's
  ``coco_classes.txt`` and its released Urban samplelists; a COCO classifier's output index i is
  coco80 id i + 1.

The two agree up to id 11 (fire hydrant), so the six classes have the same id in both
(person 1, bicycle 2, car 3, motorcycle 4, bus 6, truck 8); they differ from stop sign on
(coco91 13 = coco80 12), which is where the original's Waymo 'sign' mapping went wrong.
Every conversion goes through the category *name*, so no table of ids is typed twice.
"""

from __future__ import annotations

from typing import Literal

from ekya.errors import EkyaError

Numbering = Literal["coco91", "coco80"]

# coco91 id -> name; the ids missing here are the 10 unused ones listed above.
COCO91: dict[int, str] = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train",
    8: "truck", 9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign",
    14: "parking meter", 15: "bench", 16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep",
    21: "cow", 22: "elephant", 23: "bear", 24: "zebra", 25: "giraffe", 27: "backpack",
    28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase", 34: "frisbee", 35: "skis",
    36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat", 40: "baseball glove",
    41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle", 46: "wine glass",
    47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza",
    60: "donut", 61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed",
    67: "dining table", 70: "toilet", 72: "tv", 73: "laptop", 74: "mouse", 75: "remote",
    76: "keyboard", 77: "cell phone", 78: "microwave", 79: "oven", 80: "toaster", 81: "sink",
    82: "refrigerator", 84: "book", 85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear",
    89: "hair drier", 90: "toothbrush",
}
# coco80 id -> name: the same categories, numbered 1..80 in coco91 order.
COCO80: dict[int, str] = {i + 1: name for i, name in enumerate(COCO91[k] for k in sorted(COCO91))}

#: The six classes of every dataset but Waymo; a class id is a position in this tuple.
SIX_CLASSES: tuple[str, ...] = ("person", "car", "truck", "bus", "bicycle", "motorcycle")
WAYMO_CLASSES: tuple[str, ...] = ("vehicle", "pedestrian", "sign", "cyclist")

# COCO category name -> dataset class id. Waymo's 'sign' takes traffic lights, stop signs and
# parking meters (COCO has no generic sign), 'vehicle' every motor vehicle, 'cyclist' bicycles.
_TO_DATASET: dict[str, dict[str, int]] = {
    "six": {name: i for i, name in enumerate(SIX_CLASSES)},
    "waymo": {"car": 0, "motorcycle": 0, "bus": 0, "truck": 0, "person": 1, "traffic light": 2,
              "stop sign": 2, "parking meter": 2, "bicycle": 3},
}
DATASET_CLASSES: dict[str, tuple[str, ...]] = {"six": SIX_CLASSES, "waymo": WAYMO_CLASSES}

_TABLES: dict[str, dict[int, str]] = {"coco91": COCO91, "coco80": COCO80}
_IDS: dict[str, dict[str, int]] = {n: {name: i for i, name in t.items()} for n, t in _TABLES.items()}


def _table(numbering: str) -> dict[int, str]:
    if numbering not in _TABLES:
        raise EkyaError(f"unknown COCO numbering {numbering!r}; use 'coco91' (paper/detector ids) or "
                        "'coco80' (contiguous)")
    return _TABLES[numbering]


def coco_name(coco_id: int, numbering: Numbering) -> str:
    """The category name of a COCO id in the given numbering."""
    table = _table(numbering)
    if int(coco_id) not in table:
        raise EkyaError(f"{coco_id} is not a {numbering} COCO category id")
    return table[int(coco_id)]


def coco_id(name: str, numbering: Numbering) -> int:
    """The id of a COCO category name in the given numbering."""
    _table(numbering)
    if name not in _IDS[numbering]:
        raise EkyaError(f"{name!r} is not a COCO category name")
    return _IDS[numbering][name]


def convert(coco_id_: int, source: Numbering, target: Numbering) -> int:
    """Convert a COCO id from one numbering to the other."""
    return coco_id(coco_name(coco_id_, source), target)


def class_map(numbering: Numbering, dataset: str = "six") -> dict[int, int]:
    """COCO id (in ``numbering``) -> class id of the class set ``dataset`` (six | waymo); ids absent are dropped."""
    table = _table(numbering)
    if dataset not in _TO_DATASET:
        raise EkyaError(f"no COCO mapping for dataset classes {dataset!r}; choose one of {sorted(_TO_DATASET)}")
    by_name = _TO_DATASET[dataset]
    return {i: by_name[name] for i, name in table.items() if name in by_name}
