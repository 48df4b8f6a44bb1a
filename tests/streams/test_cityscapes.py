"""Cityscapes on a miniature raw tree (leftImg8bit PNGs + gtFine polygon JSONs) built here: prepared, then loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ekya.errors import EkyaError
from ekya.labels.teachers import GroundTruthTeacher, apply_teacher
from ekya.prepare.cityscapes import prepare_and_load_cityscapes, prepare_cityscapes
from ekya.streams.cityscapes import FPS, load_cityscapes
from ekya.streams.samplelist import samplelist_dir

W, H = 320, 160


def _rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _frame(root: Path, split: str, city: str, seq: int, frame: int, objects: list[dict]) -> None:
    stem = f"{city}_{seq:06d}_{frame:06d}"
    img_dir, gt_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 40 * seq % 255, np.uint8)).save(img_dir / f"{stem}_leftImg8bit.png")
    (gt_dir / f"{stem}_gtFine_polygons.json").write_text(
        json.dumps({"imgHeight": H, "imgWidth": W, "objects": objects}))


def make_cityscapes(root: Path) -> Path:
    """Two train cities and one val city; frames written in shuffled order on purpose."""
    car = {"label": "car", "polygon": _rect(10, 10, 100, 90)}
    person = {"label": "person", "polygon": _rect(150, 20, 220, 150)}
    small = {"label": "bus", "polygon": _rect(0, 0, 40, 40)}          # <= 50 px: dropped
    rider = {"label": "rider", "polygon": _rect(230, 10, 300, 120)}
    group = {"label": "cargroup", "polygon": _rect(0, 0, 300, 150)}   # a crowd: dropped
    sky = {"label": "sky", "polygon": _rect(0, 0, 320, 60)}
    for seq, frame in [(12, 19), (2, 19), (2, 25), (0, 19)]:
        _frame(root, "train", "zurich", seq, frame, [car, small, rider, group, sky, person])
    _frame(root, "train", "aachen", 0, 19, [{"label": "truck", "polygon": _rect(5, 5, 200, 100)}])
    _frame(root, "val", "frankfurt", 0, 294, [{"label": "motorcycle", "polygon": _rect(0, 0, 320, 160)}])
    _frame(root, "val", "frankfurt", 0, 1, [{"label": "bicycle", "polygon": _rect(-5, 3, 80, 200)}])
    return root


def test_generates_original_layout_and_loads_time_ordered(tmp_path):
    root = make_cityscapes(tmp_path)
    ss = prepare_and_load_cityscapes(root, pretrain_cameras=["frankfurt"])
    lines = (samplelist_dir(root) / "zurich_fine.csv").read_text().splitlines()
    # no header; idx, imgpath relative to leftImg8bit/, class, box; sorted by (sequence, frame)
    assert lines[0] == "0,train/zurich/zurich_000000_000019_leftImg8bit.png,1,10,10,100,90"
    assert [ln.split(",")[1].split("_")[1:3] for ln in lines[::2]] == [
        ["000000", "000019"], ["000002", "000019"], ["000002", "000025"], ["000012", "000019"]]
    assert ss.cameras == ["aachen", "zurich"]
    assert ss.meta["pretrain_cameras"] == ["frankfurt"] and ss.meta["pretrain"].cameras == ["frankfurt"]
    z = ss.camera("zurich")
    assert z["label"].tolist() == [1, 0] * 4  # car, person; no bus (small), rider, group or sky
    assert list(z["idx"]) == list(range(8))
    # snippets laid end to end at 17 Hz: seq 0 f19 -> 0; seq 2 starts one 30-frame snippet later; f25 is 6 on
    np.testing.assert_allclose(z["timestamp"].unique(), [0, 30 / FPS, 36 / FPS, 66 / FPS])
    f = ss.meta["pretrain"].camera("frankfurt")
    assert f["frame"].tolist() == [1, 294]  # numeric, not lexicographic or listdir order
    assert (f.loc[0, ["x0", "y0", "x1", "y1"]].tolist()) == [0, 3, 80, H]  # clamped into the image


def test_loads_unlabelled_and_the_teacher_labels_streams_and_pretraining(tmp_path):
    root = make_cityscapes(tmp_path)
    prepare_cityscapes(root)
    ss = load_cityscapes(root, pretrain_cameras=["frankfurt"])
    pre = ss.meta["pretrain"]
    assert (ss.samples["teacher_label"] == -1).all() and (pre.samples["teacher_label"] == -1).all()
    assert (ss.samples["label"] >= 0).all() and "teacher" not in ss.meta
    out = apply_teacher(ss, GroundTruthTeacher())
    assert out.samples["teacher_label"].equals(ss.samples["label"]) and out.meta["teacher"] == "ground_truth"
    assert out.meta["pretrain"].samples["teacher_label"].equals(pre.samples["label"])
    assert out.meta["pretrain"].meta["teacher"] == "ground_truth"
    assert (ss.samples["teacher_label"] == -1).all()  # a labelled copy; the loaded set is untouched


def test_rider_option_and_cache(tmp_path):
    root = make_cityscapes(tmp_path)
    prepare_cityscapes(root)
    csv = samplelist_dir(root) / "zurich_fine.csv"
    before = csv.stat().st_mtime_ns
    prepare_cityscapes(root)  # same options: skipped
    assert csv.stat().st_mtime_ns == before
    ss = prepare_and_load_cityscapes(root, cameras=["zurich"], pretrain_cameras=[], rider_as_person=True,
                                     sequence_gap_frames=1)
    assert ss.camera("zurich")["label"].tolist() == [1, 0, 0] * 4
    np.testing.assert_allclose(ss.camera("zurich")["timestamp"].unique(), [0, 1 / FPS, 7 / FPS, 8 / FPS])
    assert ss.cameras == ["zurich"]


def test_deterministic(tmp_path):
    root = make_cityscapes(tmp_path)
    a = prepare_and_load_cityscapes(root, pretrain_cameras=[]).samples
    (samplelist_dir(root) / ".ekya_cityscapes.json").unlink()
    with pytest.raises(EkyaError, match="not prepared"):
        load_cityscapes(root, pretrain_cameras=[])  # loading alone never prepares
    b = prepare_and_load_cityscapes(root, pretrain_cameras=[]).samples
    assert a.drop(columns="source").equals(b.drop(columns="source"))


def test_missing_directories_and_unknown_city(tmp_path):
    with pytest.raises(EkyaError, match="leftImg8bit.*not found"):
        prepare_and_load_cityscapes(tmp_path)
    root = make_cityscapes(tmp_path)
    with pytest.raises(EkyaError, match="lindau"):
        prepare_and_load_cityscapes(root, cameras=["lindau"], pretrain_cameras=[])
    with pytest.raises(EkyaError, match="both"):
        prepare_and_load_cityscapes(root, cameras=["zurich", "frankfurt"], pretrain_cameras=["frankfurt"])


def test_bad_rows_name_file_and_line(tmp_path):
    root = make_cityscapes(tmp_path)
    prepare_cityscapes(root)
    csv = samplelist_dir(root) / "zurich_fine.csv"
    good = csv.read_text()
    lines = good.splitlines()
    lines[2] = lines[2].replace(",1,", ",9,", 1)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(EkyaError, match=r"zurich_fine\.csv: line 3: class 9"):
        prepare_and_load_cityscapes(root, pretrain_cameras=[])
    lines = good.splitlines()
    lines[1] = lines[1].rsplit(",", 2)[0] + ",900,150"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(EkyaError, match=r"zurich_fine\.csv: line 2: box .* outside its image"):
        prepare_and_load_cityscapes(root, pretrain_cameras=[])


def test_unreadable_image_and_bad_json(tmp_path):
    root = make_cityscapes(tmp_path)
    img = root / "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"
    img.write_bytes(b"not a png")
    with pytest.raises(EkyaError, match="aachen_000000_000019_leftImg8bit.png: not a readable image"):
        prepare_and_load_cityscapes(root, pretrain_cameras=[])
    bad = root / "gtFine/train/aachen/aachen_000001_000019_gtFine_polygons.json"
    bad.write_text("{trunc")
    (root / "leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png").write_bytes(b"x")
    with pytest.raises(EkyaError, match="aachen_000001_000019_gtFine_polygons.json: not a Cityscapes polygon"):
        prepare_cityscapes(root, force=True)
