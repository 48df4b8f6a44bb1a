"""Urban Traffic / Urban Building loader on released-style samplelists with frames written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ekya.errors import EkyaError
from ekya.streams.samplelist import write_frame_samplelist
from ekya.streams.urban import load_urban

W, H = 96, 64


def _frames(root: Path, camera: str, frames: list[int]) -> None:
    d = root / camera / "frame_images"
    d.mkdir(parents=True, exist_ok=True)
    for f in frames:
        Image.fromarray(np.full((H, W, 3), f * 10 % 255, np.uint8)).save(d / f"{f:06d}.jpg")


def _list(root: Path, camera: str, text: str) -> Path:
    d = root / "sample_lists" / "citywise"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{camera}.csv").write_text(text)
    return d / f"{camera}.csv"


def make_urban(root: Path) -> Path:
    """A 6-column list with a frame id column (coco80 ids), rows out of time order."""
    _frames(root, "bellevue_a", [1, 3, 5])
    _list(root, "bellevue_a", "idx,class,x0,y0,x1,y1,frame id\n"
          "0,3,0,0,40,30,5\n"     # car, last frame
          "1,1,10,10,50,60,1\n"   # person
          "2,12,0,0,20,20,1\n"    # stop sign (coco80 12): not one of the 6 classes, dropped
          "3,8,5,5,90,60,3\n"     # truck
          "4,6,1,1,30,30,3\n")    # bus
    return root


def test_six_column_list_with_frames(tmp_path):
    ss = load_urban(make_urban(tmp_path), fps=0.5, name="urban_traffic")
    a = ss.camera("bellevue_a")
    assert a["label"].tolist() == [0, 2, 3, 1]
    assert a["frame"].tolist() == [1, 3, 3, 5] and list(a["idx"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(a["timestamp"], [0, 4, 4, 8])  # (frame id - 1) / 0.5 fps
    assert a["path"][0] == "bellevue_a/frame_images/000001.jpg"
    assert ss.name == "urban_traffic"


def test_six_column_list_with_row_crops(tmp_path):
    crops = tmp_path / "vegas_0" / "classification_images"
    crops.mkdir(parents=True)
    for i, (w, h) in enumerate([(30, 40), (50, 20), (10, 10)]):
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(crops / f"{i:06d}.jpg")
    _list(tmp_path, "vegas_0", "idx,class,x0,y0,x1,y1\n0,4,0,0,300,400\n1,2,5,5,55,25\n2,99,0,0,9,9\n")
    with pytest.raises(EkyaError, match="row_image"):
        load_urban(tmp_path)
    ss = load_urban(tmp_path, row_image="{camera}/classification_images/{idx:06d}.jpg", rows_per_second=0.2)
    v = ss.camera("vegas_0")
    assert v["label"].tolist() == [5, 4]  # motorcycle, bicycle; 99 is no COCO class of ours
    assert v[["x0", "y0", "x1", "y1"]].values.tolist() == [[0, 0, 30, 40], [0, 0, 50, 20]]
    np.testing.assert_allclose(v["timestamp"], [0, 5])


def test_frame_samplelist_layout(tmp_path):
    _frames(tmp_path, "cam", [2, 4])
    rows = pd.DataFrame({"camera": "cam", "frame": [4, 2], "timestamp": [2.0, 1.0], "label": [1, 0],
                         "x0": [0, 1], "y0": [0, 1], "x1": [10, 20], "y1": [10, 20], "score": [0.9, 0.8]})
    write_frame_samplelist(rows, tmp_path / "sample_lists" / "citywise" / "cam.csv")
    ss = load_urban(tmp_path, class_numbering="ekya")
    assert ss.camera("cam")["frame"].tolist() == [2, 4]
    assert ss.camera("cam")["label"].tolist() == [0, 1]


def test_errors_name_file_and_line(tmp_path):
    with pytest.raises(EkyaError, match="directory not found"):
        load_urban(tmp_path)
    root = make_urban(tmp_path)
    with pytest.raises(EkyaError, match="dataset.fps"):
        load_urban(root)
    with pytest.raises(EkyaError, match=r"bellevue_a\.csv: line 4: class 12 is outside"):
        load_urban(root, fps=1, class_numbering="ekya")
    _list(root, "bellevue_a", "idx,class,x0,y0,x1,y1,frame id\n0,3,0,0,40,30,5\n1,1,10,10,500,60,1\n")
    with pytest.raises(EkyaError, match=r"bellevue_a\.csv: line 3: box .* outside its image"):
        load_urban(root, fps=1)
    _list(root, "bellevue_a", "idx,class,x0,y0,x1,y1,frame id\n0,3,0,0,40,30,5\n1,1,10,10,50,60,7\n")
    with pytest.raises(EkyaError, match=r"000007\.jpg: image not found"):
        load_urban(root, fps=1)
    (root / "bellevue_a/frame_images/000005.jpg").write_bytes(b"")
    _list(root, "bellevue_a", "idx,class,x0,y0,x1,y1,frame id\n0,3,0,0,40,30,5\n")
    with pytest.raises(EkyaError, match=r"000005\.jpg: not a readable image"):
        load_urban(root, fps=1)
    _list(root, "bellevue_a", "idx,class,x0,y0,x1,y1,frame id\n0,car,0,0,40,30,5\n")
    with pytest.raises(EkyaError, match=r"line 2: column 'class' holds 'car'"):
        load_urban(root, fps=1)
