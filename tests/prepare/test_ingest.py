"""Video ingestion end to end on synthetic MP4s written here with PyAV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from ekya.errors import EkyaError
from ekya.prepare.detectors import BackgroundSubtractor, Detection, make_detector
from ekya.prepare.ingest import IngestSettings, _keep, find_videos, ingest_videos
from ekya.prepare.synthvideo import synthetic_frames, write_synthetic_video
from ekya.prepare.video import probe, sample_frames
from ekya.streams.samplelist import INGEST_MARKER, read_frame_samplelist, samplelist_path

REPO = Path(__file__).resolve().parents[2]
SCENE = dict(seconds=10.0, width=320, height=240, fps=10, objects=3, seed=0)


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    write_synthetic_video(d / "cam_a.mp4", **SCENE)
    write_synthetic_video(d / "cam_b.mp4", **{**SCENE, "seed": 1, "seconds": 6.0})
    return d


def _settings(**kw) -> IngestSettings:
    return IngestSettings(**{"fps": 1.0, "min_size": 20, "min_score": 0.5, "detector": "bgsub", **kw})


def test_sampling_at_one_fps(videos):
    info = probe(videos / "cam_a.mp4")
    assert (info.width, info.height, round(info.fps), round(info.duration)) == (320, 240, 10, 10)
    learned = []
    got = [(s.frame_id, round(s.time, 3)) for s in sample_frames(videos / "cam_a.mp4", 1.0, learned.append, 5.0)]
    assert got == [(1 + 10 * k, float(k)) for k in range(10)]  # 1-based frame ids, one per second
    assert len(learned) == 40  # 4 learning frames between consecutive samples at 5/s


def test_ingest_finds_the_moving_objects_and_writes_the_layout(videos, tmp_path):
    rep = ingest_videos([videos / "cam_a.mp4"], tmp_path, make_detector("bgsub"), _settings(), progress=False)
    assert rep.done == ["cam_a"] and not rep.failed and rep.crops > 10
    df = read_frame_samplelist(samplelist_path(tmp_path, "cam_a"), "cam_a", allow_unknown=True)
    assert (df["label"] == -1).all() and (df["score"] >= 0.5).all()
    assert ((df["x1"] - df["x0"] > 20) & (df["y1"] - df["y0"] > 20)).all()
    truth = {i + 1: boxes for i, _, boxes in synthetic_frames(**SCENE)}
    ious = [max(_iou(r, t) for t in truth[f])
            for f, *r in df[["frame", "x0", "y0", "x1", "y1"]].itertuples(index=False)]
    assert np.mean(np.array(ious) > 0.5) > 0.7  # most boxes are the rectangles (the rest: ghosts, merges)
    for f in df["frame"].unique():
        assert (tmp_path / "cam_a" / "frame_images" / f"{f:06d}.jpg").is_file()
    r = df.iloc[0]
    assert (tmp_path / "cam_a/classification_images" / f"{r.frame:06d}_{r.x0}_{r.y0}_{r.x1}_{r.y1}.jpg").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ingest-")]


def test_rerun_skips_and_changed_settings_reingest(videos, tmp_path):
    det = make_detector("bgsub")
    ingest_videos([videos / "cam_b.mp4"], tmp_path, det, _settings(), progress=False)
    csv = samplelist_path(tmp_path, "cam_b")
    before = (csv.stat().st_mtime_ns, csv.read_text())
    rep = ingest_videos([videos / "cam_b.mp4"], tmp_path, det, _settings(), progress=False)
    assert rep.skipped == ["cam_b"] and rep.done == [] and csv.stat().st_mtime_ns == before[0]
    rep = ingest_videos([videos / "cam_b.mp4"], tmp_path, det, _settings(min_score=0.9), progress=False)
    assert rep.done == ["cam_b"]
    assert len(csv.read_text().splitlines()) < len(before[1].splitlines())
    # deterministic: the same settings again give the same samplelist
    ingest_videos([videos / "cam_b.mp4"], tmp_path, det, _settings(), progress=False)
    assert csv.read_text() == before[1]


def test_broken_videos_fail_alone_and_interrupts_leave_nothing(videos, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "notvideo.mp4").write_bytes(b"this is not a video" * 100)
    data = (videos / "cam_b.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    os.symlink(videos / "cam_b.mp4", d / "good.mp4")
    out = tmp_path / "out"
    rep = ingest_videos(find_videos(str(d / "*.mp4")), out, make_detector("bgsub"), _settings(), progress=False,
                        log=lambda m: None)
    assert rep.done == ["good"]  # a cut file that still decodes is ingested with a warning: see below
    failed = dict(rep.failed)
    assert "notvideo.mp4: not a readable video" in failed[str(d / "notvideo.mp4")]
    assert "truncated.mp4" in failed[str(d / "truncated.mp4")]  # its index was cut off: nothing decodes
    assert not samplelist_path(out, "truncated").exists() and not (out / "notvideo").exists()

    class Boom(BackgroundSubtractor):
        def detect(self, frame, rgb):
            if frame.time > 3:
                raise KeyboardInterrupt
            return super().detect(frame, rgb)

    good_csv = samplelist_path(out, "good").read_text()
    with pytest.raises(KeyboardInterrupt):
        ingest_videos([videos / "cam_a.mp4"], out, Boom(), _settings(), progress=False)
    assert not (out / "cam_a").exists() and not samplelist_path(out, "cam_a").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".ingest-")]
    assert samplelist_path(out, "good").read_text() == good_csv  # what was written is untouched


def _decoded_seconds(path: Path) -> float:
    """How far a video decodes (the end of its last frame), measured with PyAV alone."""
    times = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        try:
            for frame in c.decode(s):
                times.append(frame.time)
        except av.error.InvalidDataError:  # the partial packet at the cut
            pass
        return max(times) - float((s.start_time or 0) * s.time_base) + 1 / float(s.average_rate)


def _faststart(src_path: Path, dst_path: Path) -> Path:
    """The same video with its index (moov) first, as a file cut while copying keeps it."""
    with av.open(str(src_path)) as src, av.open(str(dst_path), "w", options={"movflags": "faststart"}) as dst:
        s_out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = s_out
                dst.mux(packet)
    return dst_path


@pytest.mark.parametrize("kind", ["avi-cut", "mp4-index-first-cut", "mp4-bytes-zeroed"])
def test_truncated_video_is_ingested_as_far_as_it_decodes_with_a_warning(videos, tmp_path, capsys, kind):
    cut = tmp_path / "in" / ("lobby.avi" if kind == "avi-cut" else "lobby.mp4")
    cut.parent.mkdir()
    if kind == "avi-cut":  # an AVI cut to a third, like a partly copied vtest.avi: its header keeps the count
        data = write_synthetic_video(tmp_path / "whole.avi", **SCENE).read_bytes()
        cut.write_bytes(data[: len(data) // 3])
    elif kind == "mp4-index-first-cut":  # cut in half: the index still says 10 s
        data = _faststart(videos / "cam_a.mp4", tmp_path / "whole.mp4").read_bytes()
        cut.write_bytes(data[: len(data) // 2])
    else:  # 4 KB zeroed in the middle: the decoder gives up there
        data = bytearray((videos / "cam_a.mp4").read_bytes())
        data[len(data) // 2: len(data) // 2 + 4000] = bytes(4000)
        cut.write_bytes(bytes(data))
    decoded = _decoded_seconds(cut)
    assert 1 < decoded < SCENE["seconds"] - 2  # the fixture is really cut short

    from ekya.hydra_compose import compose_config
    from ekya.prepare.__main__ import run

    out = tmp_path / "out"
    cfg = compose_config([f"video={cut}", f"out={out}", "progress=false", "min_size=20"], config_name="prepare")
    assert run(cfg) == 0  # ingested: what decoded is usable data
    std = capsys.readouterr()
    (warning,) = [line for line in std.err.splitlines() if line.startswith("ekya.prepare: warning: ")]
    assert f"{cut}: truncated" in warning and f"its header declares {SCENE['seconds']:.1f} s of video" in warning
    assert ("the decoder stopped: " in warning) == (kind == "mp4-bytes-zeroed")
    assert f"decode only up to {decoded:.1f} s" in warning  # both durations, the file named
    assert "1 ingested (1 truncated: see the warnings), 0 already done, 0 failed" in std.out
    df = read_frame_samplelist(samplelist_path(out, "lobby"), "lobby", allow_unknown=True)
    assert len(df) and df["timestamp"].max() < decoded
    assert json.loads((out / "lobby" / INGEST_MARKER).read_text())["truncated"] == warning.split("warning: ", 1)[1]
    # not taken for done: a rerun reads the file again (a re-copied file in full) and warns again
    rep = ingest_videos([cut], out, make_detector("bgsub"), _settings(), progress=False, log=lambda m: None)
    assert rep.done == ["lobby"] and rep.truncated == ["lobby"] and not rep.skipped
    rep = ingest_videos([videos / "cam_b.mp4"], out, make_detector("bgsub"), _settings(), progress=False,
                        log=pytest.fail)  # a whole video: no warning
    assert rep.done == ["cam_b"] and not rep.truncated


def test_cli_exit_codes_and_summary(videos, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 64)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = [f"out={tmp_path / 'o'}", "progress=false", "min_size=20"]
    cmd = [sys.executable, "-m", "ekya.prepare", f"video=[{videos / 'cam_b.mp4'},{bad}]", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 1, p.stderr  # one video failed, the other was ingested
    assert "1 ingested, 0 already done, 1 failed" in p.stdout and "bad.mp4" in p.stderr
    assert (tmp_path / "o" / "cam_b" / INGEST_MARKER).is_file()
    # the same entry in-process (no interpreter start-up): a rerun skips, a glob matching nothing is an error
    from ekya.hydra_compose import compose_config
    from ekya.prepare.__main__ import run

    cfg = compose_config([f"video={videos / 'cam_b.mp4'}", *args], config_name="prepare")
    none = compose_config([f"video={tmp_path / 'none*.mp4'}", *args], config_name="prepare")
    assert run(cfg) == 0 and "0 ingested, 1 already done, 0 failed" in capsys.readouterr().out
    with pytest.raises(EkyaError, match="matches no video"):
        run(none)


def test_detection_filters_and_coco_mapping():
    s = _settings(min_size=30, min_score=0.5)
    assert _keep(Detection(0, 0, 40, 40, 0.9, 3), s) == 1        # coco91 car -> car
    assert _keep(Detection(0, 0, 40, 40, 0.9, 8), s) == 2        # truck
    assert _keep(Detection(0, 0, 40, 40, 0.9, 10), s) is None    # traffic light: not one of ours
    assert _keep(Detection(0, 0, 40, 40, 0.4, 1), s) is None     # below the score threshold
    assert _keep(Detection(0, 0, 30, 40, 0.9, 1), s) is None     # not wider than min_size
    assert _keep(Detection(0, 0, 40, 40, 0.9), s) == -1          # no class named


def test_torchvision_detector_loads_user_weights_only(tmp_path):
    import torch
    import torchvision

    with pytest.raises(EkyaError, match="needs detector.weights"):
        make_detector("torchvision")
    with pytest.raises(EkyaError, match="file not found"):
        make_detector("torchvision", weights=str(tmp_path / "none.pth"))
    from ekya.labels.teachers import torch_threads

    torch.manual_seed(0)
    arch = "ssdlite320_mobilenet_v3_large"
    model = torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=91)
    torch.save(model.state_dict(), tmp_path / "det.pth")
    with pytest.raises(EkyaError, match="does not fit"):
        make_detector("torchvision", weights=str(tmp_path / "det.pth"))  # default arch differs
    det = make_detector("torchvision", weights=str(tmp_path / "det.pth"), arch=arch, min_score=0.0)
    _, rgb, _ = next(iter(synthetic_frames(**SCENE)))
    with torch_threads(1):  # one thread: a shared 2-core CI machine makes two spin against each other
        dets = det.detect(None, rgb)
    assert dets and all(0 <= d.coco91 <= 90 and 0 <= d.x0 < d.x1 <= 320 and 0 <= d.y0 < d.y1 <= 240 for d in dets)
    assert pd.Series([d.score for d in dets]).between(0, 1).all()

    # Saved from DataParallel under 'state_dict' (as classifier teachers are): the same weights load.
    wrapped = {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    again = make_detector("torchvision", weights=str(tmp_path / "wrapped.pth"), arch=arch, min_score=0.0)
    loaded = again.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    with torch_threads(1):
        assert again.detect(None, rgb) == dets
