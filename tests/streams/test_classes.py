"""Class lists and the one COCO mapping: both numberings pinned for the classes Ekya uses."""

from __future__ import annotations

import pytest

from ekya.errors import EkyaError
from ekya.streams.classes import (
    COCO80,
    COCO91,
    DATASET_CLASSES,
    SIX_CLASSES,
    WAYMO_CLASSES,
    class_map,
    coco_id,
    coco_name,
    convert,
)

SIX = {"person": (1, 1), "bicycle": (2, 2), "car": (3, 3), "motorcycle": (4, 4), "bus": (6, 6), "truck": (8, 8)}


def test_numberings_pinned():
    assert len(COCO91) == 80 and len(COCO80) == 80 and max(COCO91) == 90 and max(COCO80) == 80
    assert set(COCO91.values()) == set(COCO80.values())
    for name, (id91, id80) in SIX.items():
        assert coco_id(name, "coco91") == id91 and coco_id(name, "coco80") == id80
    # where they part: the unused id 12 (street sign) shifts everything after it
    assert (coco_id("stop sign", "coco91"), coco_id("stop sign", "coco80")) == (13, 12)
    assert (coco_id("toothbrush", "coco91"), coco_id("toothbrush", "coco80")) == (90, 80)
    assert convert(13, "coco91", "coco80") == 12 and convert(12, "coco80", "coco91") == 13
    assert all(convert(convert(i, "coco91", "coco80"), "coco80", "coco91") == i for i in COCO91)
    with pytest.raises(EkyaError, match="not a coco91"):
        coco_name(12, "coco91")


def test_dataset_maps():
    six = {0: "person", 1: "car", 2: "truck", 3: "bus", 4: "bicycle", 5: "motorcycle"}
    assert dict(enumerate(SIX_CLASSES)) == six and DATASET_CLASSES == {"six": SIX_CLASSES, "waymo": WAYMO_CLASSES}
    for numbering in ("coco91", "coco80"):
        m = class_map(numbering, "six")
        assert {coco_name(i, numbering): c for i, c in m.items()} == {v: k for k, v in six.items()}
    assert class_map("coco91") == class_map("coco91", "six") == {1: 0, 3: 1, 8: 2, 6: 3, 2: 4, 4: 5}
    assert class_map("coco91", "waymo") == {1: 1, 2: 3, 3: 0, 4: 0, 6: 0, 8: 0, 10: 2, 13: 2, 14: 2}
    assert class_map("coco80", "waymo") == {1: 1, 2: 3, 3: 0, 4: 0, 6: 0, 8: 0, 10: 2, 12: 2, 13: 2}
    with pytest.raises(EkyaError, match="coco91"):
        class_map("tf", "waymo")  # type: ignore[arg-type]
    with pytest.raises(EkyaError, match=r"\['six', 'waymo'\]"):
        class_map("coco91", "cityscapes")
