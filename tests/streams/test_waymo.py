"""Waymo loader on preprocessed-style label CSVs and crops written here."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ekya.errors import EkyaError
from ekya.streams.waymo import LABEL_COLUMNS, load_waymo

S = 64  # crop size of the fixture (the real data uses 224)


def _write_list(root: Path, name: str, rows: list[dict]) -> Path:
    path = root / f"{name}_labels.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(LABEL_COLUMNS))
        w.writeheader()
        for i, r in enumerate(rows):
            img = root / r["segment"] / r["camera name"] / r["image name"]
            img.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((S, S, 3), (30 * int(r["class"])) % 256, np.uint8)).save(img)
            w.writerow({"idx": i, "weather": "sunny", "location": name.split("_")[0], "time of day": "Day",
                        "xmin": 10, "ymin": 20, "xmax": 300, "ymax": 250, "detection difficulty level": 0,
                        "tracking difficulty level": 0, **r})
    return path


def _row(seg: str, ts_us: int, cls: int, cam: str = "FRONT", lid: str = "a") -> dict:
    return {"image name": f"{ts_us}_{cam}_{lid}.jpg", "class": cls, "timestamp": ts_us, "segment": seg,
            "frame index": 0, "camera name": cam, "label id": lid}


def make_waymo(root: Path) -> Path:
    # segment 'late' is listed first in the file but recorded after 'early': the loader reorders
    _write_list(root, "sf_000_009", [
        _row("late", 9_000_000_000, 0), _row("late", 9_000_500_000, 1, "SIDE_LEFT"),
        _row("early", 1_000_000_000, 2), _row("early", 1_001_000_000, 3, lid="b"),
        _row("early", 1_001_000_000, 0, lid="a"),
    ])
    _write_list(root, "phx_000_009", [_row("p0", 5_000_000, 1), _row("p0", 6_000_000, 0)])
    _write_list(root, "pretrain_2000", [_row("q", 7, 0), _row("q", 8, 1)])
    return root


def test_loads_streams_in_segment_time_order(tmp_path):
    ss = load_waymo(make_waymo(tmp_path), pretrain_cameras=["pretrain_2000"], crop_size=S)
    assert ss.classes == ("vehicle", "pedestrian", "sign", "cyclist")
    assert ss.cameras == ["phx_000_009", "sf_000_009"]
    sf = ss.camera("sf_000_009")
    assert sf["segment"].tolist() == ["early"] * 3 + ["late"] * 2
    assert sf["label"].tolist() == [2, 0, 3, 0, 1]  # same time: label id 'a' before 'b'
    # segments end to end: early spans 1 s, late starts 0.1 s after it
    np.testing.assert_allclose(sf["timestamp"], [0, 1, 1, 1.1, 1.6])
    assert sf["path"][0] == "early/FRONT/1000000000_FRONT_a.jpg"
    assert sf[["x0", "y0", "x1", "y1"]].drop_duplicates().values.tolist() == [[0, 0, S, S]]
    assert sf["frame_x1"].iloc[0] == 300 and sf["time_of_day"].iloc[0] == "Day"
    assert ss.meta["pretrain"].cameras == ["pretrain_2000"]


def test_coco_numbered_lists(tmp_path):
    _write_list(tmp_path, "c", [_row("s", 1, 1), _row("s", 2, 13), _row("s", 3, 12), _row("s", 4, 2), _row("s", 5, 14)])
    c91 = load_waymo(tmp_path, class_numbering="coco91", crop_size=S).camera("c")
    # coco91: person, stop sign, (12 is unused: dropped), bicycle, parking meter
    assert c91["label"].tolist() == [1, 2, 3, 2] and c91["timestamp_us"].tolist() == [1, 2, 4, 5]
    c80 = load_waymo(tmp_path, class_numbering="coco80", crop_size=S).camera("c")
    # coco80: person, parking meter, stop sign, bicycle, (14 is a bench: dropped)
    assert c80["label"].tolist() == [1, 2, 2, 3] and c80["timestamp_us"].tolist() == [1, 2, 3, 4]
    assert list(c80["idx"]) == [0, 1, 2, 3]


def test_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(EkyaError, match="not found"):
        load_waymo(tmp_path / "nope")
    root = make_waymo(tmp_path)
    with pytest.raises(EkyaError, match="outside its image"):
        load_waymo(root)  # crops are 64 px, not the default 224
    _write_list(root, "bad", [_row("s", 1, 0), _row("s", 2, 7)])
    with pytest.raises(EkyaError, match=r"bad_labels\.csv: line 3: class 7"):
        load_waymo(root, cameras=["bad"], crop_size=S)
    _write_list(root, "bad", [_row("s", 1, 0)])
    (root / "s/FRONT/1_FRONT_a.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(EkyaError, match=r"1_FRONT_a\.jpg: not a readable image"):
        load_waymo(root, cameras=["bad"], crop_size=S)
    with pytest.raises(EkyaError, match="available"):
        load_waymo(root, cameras=["la_000_009"], crop_size=S)
