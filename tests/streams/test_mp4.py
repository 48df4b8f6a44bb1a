"""dataset=mp4: a synthetic MP4 written with PyAV, ingested, loaded (unlabelled) and labelled, also via Hydra."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ekya.errors import EkyaError
from ekya.hydra_compose import compose_config
from ekya.labels.teachers import ClassifierTeacher, GroundTruthTeacher, apply_teacher
from ekya.prepare.detectors import make_detector
from ekya.prepare.ingest import IngestSettings, ingest_videos
from ekya.prepare.synthvideo import write_synthetic_video
from ekya.streams.mp4 import load_mp4
from ekya.streams.samplelist import INGEST_MARKER, samplelist_path

SETTINGS = IngestSettings(fps=1.0, min_size=20, min_score=0.5, detector="bgsub")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("mp4")
    for i, name in enumerate(["lobby", "street"]):
        write_synthetic_video(d / "videos" / f"{name}.mp4", seconds=8, width=320, height=240, fps=10, seed=i)
    rep = ingest_videos(sorted((d / "videos").glob("*.mp4")), d / "data", make_detector("bgsub"), SETTINGS,
                        progress=False)
    assert rep.done == ["lobby", "street"]
    torch.manual_seed(0)
    model = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=6)
    torch.save(model.state_dict(), d / "teacher.pt")
    return d / "data", d / "teacher.pt"


def _teacher(ck: Path) -> ClassifierTeacher:
    return ClassifierTeacher(str(ck), arch="mobilenet_v3_small", image_size=32, num_threads=1)


def _labelled(ck: Path, **kwargs):
    return apply_teacher(load_mp4(**kwargs), _teacher(ck))


def test_load_needs_a_labeler_for_classless_detections(ingested):
    root, ck = ingested
    raw = load_mp4(root)
    assert (raw.samples["label"] == -1).all() and (raw.samples["teacher_label"] == -1).all()
    with pytest.raises(EkyaError, match="camera 'lobby' of 'mp4': no sample has a teacher label.*labeler=classifier"):
        apply_teacher(raw, GroundTruthTeacher())
    ss = _labelled(ck, root=root, pretrain_cameras=["lobby"])
    assert ss.cameras == ["street"] and ss.meta["pretrain"].cameras == ["lobby"]
    s = ss.camera("street")
    assert (s["label"] == -1).all() and s["teacher_label"].between(0, 5).all()
    assert list(s["idx"]) == list(range(len(s))) and s["timestamp"].is_monotonic_increasing
    assert ss.meta["pretrain"].samples["teacher_label"].between(0, 5).all()
    assert ss.meta["teacher"].startswith("classifier(mobilenet_v3_small")


def test_ingest_with_a_teacher_writes_labels(ingested, tmp_path):
    root, ck = ingested
    videos = Path(root).parent / "videos"
    rep = ingest_videos([videos / "street.mp4"], tmp_path, make_detector("bgsub"), SETTINGS, _teacher(ck),
                        progress=False)
    assert rep.done == ["street"]
    ss = apply_teacher(load_mp4(tmp_path), GroundTruthTeacher())
    labelled = _labelled(ck, root=root, cameras=["street"]).samples
    assert ss.samples["label"].tolist() == labelled["teacher_label"].tolist()  # same crops, same teacher


def test_hydra_config_instantiates(ingested):
    root, ck = ingested
    cfg = compose_config(["+dataset=mp4", "+seed=0", f"dataset.root={root}", "+labeler=classifier",
                          f"labeler.weights={ck}", "labeler.arch=mobilenet_v3_small", "labeler.image_size=32"],
                         config_name=None)
    kwargs = OmegaConf.to_container(cfg.dataset, resolve=True)
    assert kwargs.pop("windows") == 3  # the runtime's key; the loader never sees it
    ss = instantiate(kwargs)
    assert ss.name == "mp4" and ss.cameras == ["lobby", "street"]
    ss = apply_teacher(ss, instantiate(cfg.labeler))
    assert ss.samples["teacher_label"].between(0, 5).all()


def test_unfinished_or_broken_outputs(ingested, tmp_path):
    root, ck = ingested
    with pytest.raises(EkyaError, match="run  python -m ekya.prepare"):
        load_mp4(tmp_path / "nothing")
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "street" / INGEST_MARKER).unlink()  # an ingestion that never completed is not a camera
    assert load_mp4(copy).cameras == ["lobby"]
    with pytest.raises(EkyaError, match="does not hold"):
        load_mp4(copy, cameras=["street"])
    frames = sorted((copy / "lobby" / "frame_images").glob("*.jpg"))
    frames[0].write_bytes(frames[0].read_bytes()[:40])
    with pytest.raises(EkyaError, match=f"{frames[0].name}: not a readable image"):
        load_mp4(copy)
    csv = samplelist_path(copy, "lobby")
    lines = csv.read_text().splitlines()
    lines[1] = ",".join(lines[1].split(",")[:2] + ["7"] + lines[1].split(",")[3:])
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(EkyaError, match=r"lobby\.csv: line 2: class 7"):
        load_mp4(copy, check_images=False)
    assert len(_labelled(ck, root=root).samples) > 0  # the original is intact
