"""Teachers fill teacher_label: ground truth, noisy, a user's classifier checkpoint, a trained one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image

from ekya.errors import EkyaError
from ekya.labels.teachers import (
    ClassifierTeacher,
    GroundTruthTeacher,
    NoisyTeacher,
    apply_teacher,
    output_to_dataset,
    teacher_agreement,
)
from ekya.labels.trained import TrainedTeacher, bootstrap_rows
from ekya.streams.classes import SIX_CLASSES
from ekya.streams.samples import StreamSet

COLOURS = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30], [30, 230, 230], [230, 30, 230]])


def colour_set(root: Path, per_class: int = 12, cameras=("a", "b"), seed: int = 0) -> StreamSet:
    """Frames holding one coloured square per class (colour = class), two boxes per frame."""
    rows = []
    for cam in cameras:
        rng = np.random.default_rng([seed, ord(cam[0])])
        (root / cam).mkdir(parents=True, exist_ok=True)
        for i in range(per_class * len(SIX_CLASSES) // 2):
            img = np.full((48, 96, 3), 128, np.uint8)
            labels = rng.integers(0, len(SIX_CLASSES), 2)
            for k, lab in enumerate(labels):
                img[8:40, 8 + 48 * k:40 + 48 * k] = np.clip(COLOURS[lab] + rng.integers(-20, 20, 3), 0, 255)
                rows.append((cam, f"{cam}/{i:04d}.png", 4 + 48 * k, 4, 44 + 48 * k, 44, int(lab), float(i)))
            Image.fromarray(img).save(root / cam / f"{i:04d}.png")
    df = pd.DataFrame(rows, columns=["camera", "path", "x0", "y0", "x1", "y1", "label", "timestamp"])
    df["idx"] = df.groupby("camera").cumcount()
    df["teacher_label"] = df["label"]
    return StreamSet("colours", root, df, SIX_CLASSES)


def test_ground_truth_and_noisy(tmp_path):
    ss = colour_set(tmp_path, per_class=100, cameras=("a",))
    assert (apply_teacher(ss, GroundTruthTeacher()).samples["teacher_label"] == ss.samples["label"]).all()
    noisy = apply_teacher(ss, NoisyTeacher(accuracy=0.85, seed=3))
    acc = teacher_agreement(noisy.samples)
    assert 0.80 < acc < 0.90 and noisy.meta["teacher"] == "noisy(0.85)"
    assert noisy.samples["teacher_label"].between(0, 5).all()
    again = apply_teacher(ss, NoisyTeacher(accuracy=0.85, seed=3)).samples["teacher_label"]
    assert again.equals(noisy.samples["teacher_label"])  # seeded
    other = apply_teacher(ss, NoisyTeacher(accuracy=0.85, seed=4)).samples["teacher_label"]
    assert not other.equals(noisy.samples["teacher_label"])
    assert teacher_agreement(apply_teacher(ss, NoisyTeacher(accuracy=0.0)).samples) == 0.0  # flips never hit the truth
    unknown = StreamSet("u", tmp_path, ss.samples.assign(label=-1), SIX_CLASSES)
    assert (NoisyTeacher(0.5).label(unknown) == -1).all()  # unknown stays unknown
    with pytest.raises(EkyaError, match="camera 'a' of 'u': no sample has a teacher label"):
        apply_teacher(unknown, NoisyTeacher(0.5))  # a camera with no label cannot be trained on
    with pytest.raises(EkyaError, match="accuracy"):
        NoisyTeacher(accuracy=1.5)


def test_noisy_cameras_are_independent(tmp_path):
    both = apply_teacher(colour_set(tmp_path, cameras=("a", "b")), NoisyTeacher(0.5, seed=1)).samples
    only_b = apply_teacher(colour_set(tmp_path, cameras=("b",)), NoisyTeacher(0.5, seed=1)).samples
    assert both[both["camera"] == "b"]["teacher_label"].tolist() == only_b["teacher_label"].tolist()


def test_coco_outputs_map_to_dataset_classes():
    logits = np.full((3, 80), -5.0)
    logits[0, 0] = 9      # coco80 id 1: person
    logits[1, 7] = 9      # coco80 id 8: truck
    logits[2, 11] = 9     # coco80 id 12: stop sign - not a Cityscapes class; next best wins
    logits[2, 5] = 1      # coco80 id 6: bus
    assert output_to_dataset(logits, "coco80", SIX_CLASSES).tolist() == [0, 2, 3]
    waymo = ("vehicle", "pedestrian", "sign", "cyclist")
    assert output_to_dataset(logits, "coco80", waymo).tolist() == [1, 0, 2]
    l91 = np.full((1, 91), -5.0)
    l91[0, 13] = 9        # coco91 13: stop sign
    assert output_to_dataset(l91, "coco91", waymo).tolist() == [2]
    with pytest.raises(EkyaError, match="outputs"):
        output_to_dataset(np.zeros((1, 5)), "dataset", SIX_CLASSES)


def test_classifier_checkpoint(tmp_path):
    ss = colour_set(tmp_path / "data", per_class=2)
    torch.manual_seed(0)
    model = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=6)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "ck.pt")
    t = ClassifierTeacher(str(tmp_path / "ck.pt"), arch="mobilenet_v3_small", image_size=32, num_threads=1)
    got = apply_teacher(ss, t).samples["teacher_label"]
    model.eval()
    from ekya.labels.crops import crop_array
    x = torch.from_numpy(np.stack([crop_array(ss, i, 32) for i in range(len(ss.samples))]))
    with torch.inference_mode():
        assert got.tolist() == model(x).argmax(1).tolist()  # the checkpoint's own predictions
    with pytest.raises(EkyaError, match="does not fit"):
        ClassifierTeacher(str(tmp_path / "ck.pt"), arch="resnet18").label(ss)
    with pytest.raises(EkyaError, match="file not found"):
        ClassifierTeacher(str(tmp_path / "none.pt")).label(ss)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(EkyaError, match="not a PyTorch checkpoint"):
        ClassifierTeacher(str(tmp_path / "junk.pt")).label(ss)
    (tmp_path / "data/a/0000.png").write_bytes(b"")
    with pytest.raises(EkyaError, match="0000.png: cannot read"):
        ClassifierTeacher(str(tmp_path / "ck.pt"), arch="mobilenet_v3_small", image_size=32).label(ss)


@pytest.mark.slow
def test_trained_teacher_learns_from_bootstrap(tmp_path):
    ss = colour_set(tmp_path, per_class=6)
    rows = bootstrap_rows(ss, 0.5)
    assert len(rows) == len(ss.samples) // 2 and set(ss.samples.iloc[rows]["idx"]) == set(range(18))

    t = TrainedTeacher(arch="resnet18", epochs=12, image_size=32, bootstrap_fraction=0.5, seed=0, batch_size=16,
                       num_threads=1)
    out = apply_teacher(ss, t).samples
    later = out[out["idx"] >= 18]  # samples the teacher never trained on
    assert teacher_agreement(later) > 0.6 and t.trained_on == len(rows)  # chance is 1/6


def test_pretrain_set_labelled_by_same_teacher(tmp_path):
    streams = colour_set(tmp_path / "s", per_class=2, cameras=("a",), seed=1)
    pre = colour_set(tmp_path / "p", per_class=4, cameras=("p",), seed=2)
    streams.meta["pretrain"] = pre
    def teacher():
        return TrainedTeacher(arch="squeezenet1_1", epochs=2, image_size=32, seed=0, batch_size=16, num_threads=1)

    t = teacher()
    out = apply_teacher(streams, t)
    again = apply_teacher(streams, teacher())
    assert again.samples["teacher_label"].equals(out.samples["teacher_label"])  # seeded, deterministic
    assert t.trained_on == len(pre.samples)  # fitted on the pretraining data, once
    assert out.meta["pretrain"].meta["teacher"] == t.name
    assert out.meta["pretrain"].samples["teacher_label"].between(0, 5).all()
    with pytest.raises(EkyaError, match="no labelled bootstrap"):
        TrainedTeacher(num_threads=1).label(StreamSet("u", tmp_path, streams.samples.assign(label=-1), SIX_CLASSES))


def test_trained_teacher_with_the_project_learner(tmp_path):
    from ekya.learners.finetune import FinetuneLearner

    ss = colour_set(tmp_path, per_class=6)
    learner = FinetuneLearner(backbone="resnet10_w16", image_size=16, base_epochs=15, base_batch_size=16)
    t = TrainedTeacher(bootstrap_fraction=0.5, seed=0, learner=learner)
    out = apply_teacher(ss, t).samples
    assert t.trained_on == 36 and t.name == "trained(resnet10_w16)"
    assert teacher_agreement(out[out["idx"] >= 18]) > 0.6
