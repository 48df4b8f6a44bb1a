"""The bad inputs a new user met on a first day with ekya, each as the user typed it.

Every case runs the entry point in this process (``python -m ekya`` minus the interpreter start) and holds it
to the contract: exit status 2, one stderr line starting ``ekya: error:`` that names the key or file, and
nothing half-written (no run folder under outputs/runs, no state.pkl, no MLflow run left RUNNING). Each
case's id starts with its number in that list (r01-r38). r20 (a damaged image in the synthetic cache, met only while
a run plays) is pinned where the message is made, on a generated cache, to keep the matrix fast.

Cases pinned elsewhere by tests that run the same command (referenced, not repeated here):

- r03, r04 ``dataset.windows=0`` / ``=1``: tests/streams/test_window_count.py
  (test_the_run_refuses_them_in_one_line_before_generating_data)
- r11 ``seed=abc``: tests/execution/test_resume_and_outputs.py (test_a_seed_that_is_not_a_number_is_one_line_naming_it)
- r21, r22 unwritable ``output_root``: tests/execution/test_resume_and_outputs.py
  (test_an_unwritable_output_root_is_one_line_naming_it)
- r26 ``resume=`` with other overrides: tests/execution/test_resume_and_outputs.py
  (test_resume_with_other_overrides_is_refused_naming_them)
- r30 ``experiment=tiny`` on real datasets: tests/execution/test_tiny_real_data.py
- r32, r33 an unreachable Ray address / MLflow server: tests/execution/test_bounded_waits.py
- r34 a multirun with one bad cell (exit 1 by design: the good cells run): tests/execution/test_sweep_cells.py
  (test_rerun_skips_finished_cells_and_a_failed_cell_does_not_stop_the_sweep)
- r35, r36 ``python -m ekya.prepare`` with no arguments / a typo: tests/prepare/test_prepare_cli.py
- r38 ``ekya.prepare`` on a file that is no video (exit 1, a per-video failure): tests/prepare/test_ingest.py
  (test_broken_videos_fail_alone_and_interrupts_leave_nothing, test_cli_exit_codes_and_summary); a truncated
  video: test_truncated_video_is_ingested_as_far_as_it_decodes_with_a_warning
"""

from __future__ import annotations

import pickle
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.stores import seed_store

TINY = ["experiment=tiny", "threads=1"]
URBAN = ["dataset=urban_traffic", "dataset.root=urban", "dataset.windows=2", "window.seconds=20"]
CAMERA_CSV = "urban/sample_lists/citywise/cam01.csv"


def _urban(root: Path, frames: int = 40) -> None:
    """The smallest Urban Traffic layout a run accepts: one camera, a frame every 2 s, one box per frame."""
    images = root / "cam01" / "frame_images"
    images.mkdir(parents=True)
    rows = ["idx,class,x0,y0,x1,y1,frame id"]
    for f in range(1, frames + 1):
        Image.fromarray(np.full((24, 32, 3), f * 6 % 255, np.uint8)).save(images / f"{f:06d}.jpg")
        rows.append(f"{f - 1},{(1, 3, 6)[f % 3]},0,0,20,16,{f}")
    (root / "sample_lists" / "citywise").mkdir(parents=True)
    (root / CAMERA_CSV.removeprefix("urban/")).write_text("\n".join(rows) + "\n")


def _truncate_csv(tmp: Path) -> None:
    text = (tmp / CAMERA_CSV).read_text()
    (tmp / CAMERA_CSV).write_text(text[: text.index("\n21,") + 6])  # cut inside row 21


def _corrupt_frame(tmp: Path) -> None:
    (tmp / "urban/cam01/frame_images/000005.jpg").write_bytes(b"\xff\xd8 not a jpeg")


def _checkpoint(kind: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        if kind == "text":
            (tmp / "model.pt").write_text("not a model\n")
        else:  # a pickle of something else: what torch's weights-only loader refuses with its long advice
            (tmp / "model.pt").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    return make


def _state_cut_to_a_third(tmp: Path) -> None:
    from omegaconf import OmegaConf

    from ekya.hydra_compose import compose_config

    run = tmp / "interrupted"
    run.mkdir()
    OmegaConf.save(compose_config(TINY), run / "config.yaml")
    (run / "state.pkl").write_bytes(pickle.dumps({"window": 1, "payload": list(range(300))})[:300])


def _file(name: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / name).write_text("a file, not a folder\n")
    return make


# (id, args, needles the one line must hold, fixture builder or None, environment overrides)
CASES: list[tuple[str, list[str], list[str], Callable[[Path], None] | None, dict[str, str]]] = [
    ("r01-cameras-0", [*TINY, "dataset.cameras=0"], ["dataset.cameras=0", "at least 1"], None, {}),
    ("r02-cameras-negative", [*TINY, "dataset.cameras=-2"], ["dataset.cameras=-2"], None, {}),
    ("r05-window-seconds-0", [*TINY, "window.seconds=0"], ["window.seconds=0", "> 0"], None, {}),
    ("r05-window-seconds-negative", [*TINY, "window.seconds=-100"], ["window.seconds=-100"], None, {}),
    ("r06-window-seconds-abc", [*TINY, "window.seconds=abc"], ["window.seconds", "'abc'", "number"], None, {}),
    ("r07-accelerators-two", [*TINY, "cluster.accelerators=two"], ["cluster.accelerators", "'two'"], None, {}),
    ("r07-accelerators-negative", [*TINY, "cluster.accelerators=-1"], ["cluster.accelerators"], None, {}),
    ("r07-accelerators-half", [*TINY, "cluster.accelerators=0.5"], ["cluster.accelerators"], None, {}),
    ("r08-scheduler-delta", [*TINY, "scheduler.delta=0"], ["scheduler.delta", "cluster.delta"], None, {}),
    ("r09-cluster-delta-0", [*TINY, "cluster.delta=0"], ["cluster.delta", "(0, 1]"], None, {}),
    ("r10-label-delay", [*TINY, "window.label_delay=500"], ["window.label_delay"], None, {}),
    ("r10-history-weight", [*TINY, "window.history_weight=2"], ["window.history_weight=2"], None, {}),
    ("r10-val-fraction", [*TINY, "window.val_fraction=1.0"], ["window.val_fraction"], None, {}),
    ("r10-segments-negative", [*TINY, "window.segments=-3"], ["window.segments"], None, {}),
    ("r10-threads-0", [*TINY[:1], "threads=0"], ["threads"], None, {}),
    ("r10-log-level", [*TINY, "log_level=loud"], ["log_level"], None, {}),
    ("r12-experiment-nope", ["experiment=nope"], ["experiment/nope"], None, {}),
    ("r13-dataset-root-a-file", [*TINY, "dataset=urban_traffic", "dataset.root=afile"],
     ["afile/sample_lists/citywise", "directory not found"], _file("afile"), {}),
    ("r14-ekya-data-a-file", TINY, ["EKYA_DATA", "afile", "folder"], _file("afile"), {"EKYA_DATA": "afile"}),
    ("r15-samplelist-empty", [*TINY, *URBAN], ["cam01.csv", "not a readable CSV"],
     lambda t: (_urban(t / "urban"), (t / CAMERA_CSV).write_text("")) and None, {}),
    ("r16-samplelist-header-only", [*TINY, *URBAN], ["'urban_traffic' at urban", "no samples"],
     lambda t: (_urban(t / "urban"), (t / CAMERA_CSV).write_text("idx,class,x0,y0,x1,y1,frame id\n")) and None, {}),
    ("r17-samplelist-truncated", [*TINY, *URBAN], ["cam01.csv", "line 23", "fix or delete that row"],
     lambda t: (_urban(t / "urban"), _truncate_csv(t)) and None, {}),
    ("r18-corrupt-jpeg", [*TINY, *URBAN], ["000005.jpg", "not a readable image"],
     lambda t: (_urban(t / "urban"), _corrupt_frame(t)) and None, {}),
    ("r19-corrupt-jpeg-unchecked", [*TINY, *URBAN, "dataset.check_images=false"],
     ["000005.jpg", "cannot read the image"], lambda t: (_urban(t / "urban"), _corrupt_frame(t)) and None, {}),
    ("r23-resume-scratch", ["resume=scratch"], ["resume=scratch", "config.yaml is missing"], None, {}),
    ("r24-resume-empty-folder", ["resume=empty"], ["resume=empty", "no ekya run there"],
     lambda t: (t / "empty").mkdir(), {}),
    ("r25-resume-truncated-state", ["resume=interrupted"], ["state.pkl", "cannot read the run state"],
     _state_cut_to_a_third, {}),
    ("r27-checkpoint-missing", [*TINY, "learner.checkpoint=scratch.pt"], ["learner.checkpoint", "scratch.pt",
                                                                          "does not exist"], None, {}),
    ("r28-checkpoint-text", [*TINY, "learner.checkpoint=model.pt"],
     ["learner.checkpoint", "model.pt", "not an ekya model checkpoint", "save_checkpoint"], _checkpoint("text"), {}),
    ("r28-checkpoint-pickle", [*TINY, "learner.checkpoint=model.pt"],
     ["learner.checkpoint", "model.pt", "not an ekya model checkpoint"], _checkpoint("pickle"), {}),
    ("r29-classifier-without-weights", [*TINY, "labeler=classifier"], ["labeler.weights"], None, {}),
    ("r31-mp4-default-root-missing", [*TINY, "dataset=mp4"], ["data/mp4", "ekya.prepare"], None, {}),
]

#: cases whose check needs the (synthetic) data, so the complete data cache may be there after them: a resumed run
#: rebuilds its data before it reads its state, and the labeler is built on the loaded data
NEEDS_DATA = {"r25-resume-truncated-state", "r29-classifier-without-weights"}


#: the one case found while the run plays (the image is read only then): its MLflow runs end FAILED
PLAYS = {"r19-corrupt-jpeg-unchecked"}


def _mlflow_runs(store: Path) -> list[str]:
    """The status of every run in the store."""
    with sqlite3.connect(store) as db:
        return [row[0] for row in db.execute("SELECT status FROM runs")]


@pytest.mark.parametrize("case, args, needles, build, env", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_naming_it_and_leaves_nothing_half_written(
        case, args, needles, build, env, tmp_path, monkeypatch, capfd):
    from ekya.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EKYA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if build is not None:
        build(tmp_path)
    store = seed_store(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ekya", *args])
    with pytest.raises(SystemExit) as done:
        cli()
    err = capfd.readouterr().err
    # a line as a terminal shows it: what a progress bar overwrote with "\r" is gone
    lines = [line.rsplit("\r", 1)[-1] for line in err.strip().split("\n")]
    assert done.value.code == 2 and len(lines) == 1 and lines[0].startswith("ekya: error: "), err
    assert all(n in lines[0] for n in needles), (needles, lines[0])
    assert "weights_only" not in lines[0]  # torch's advice to load untrusted pickles is no fix
    assert not list(tmp_path.glob("outputs/runs/*")), "a failed run left a run folder"
    assert not [p for p in tmp_path.rglob("state.pkl") if p.parent.name != "interrupted"]
    runs = _mlflow_runs(store)
    assert "RUNNING" not in runs
    assert runs == [] or (case in PLAYS and set(runs) == {"FAILED"}), runs  # checked before tracking began
    if case not in NEEDS_DATA:  # checked before the synthetic data was generated
        assert not (tmp_path / "data").exists()


def test_r20_a_corrupt_image_in_the_synthetic_cache_names_the_folder_to_delete(tmp_path):
    # r20: the run failed while playing with "regenerate the dataset", without saying how
    from ekya.errors import EkyaError
    from ekya.streams.images import load_crop
    from ekya.streams.synthetic import load_synthetic

    streams = load_synthetic(tmp_path, cameras=1, chunks=2, samples_per_chunk=4, image_size=16)
    first = streams.camera(streams.cameras[0])
    image = Path(streams.root) / first["path"][0]
    image.write_bytes(b"\xff\xd8 not a jpeg")
    cache = image.relative_to(tmp_path).parts[0]
    with pytest.raises(EkyaError, match=re.escape(f"delete {tmp_path / cache} ") + ".*generates it again"):
        load_crop(image, (0, 0, 4, 4), 8)


@pytest.mark.parametrize("args, needles", [
    (["video=/no/such.mp4", "out=o"], ["video='/no/such.mp4'", "no such file or folder"]),
], ids=["r37-prepare-no-such-video"])
def test_prepare_bad_input_is_one_line(args, needles, tmp_path, monkeypatch, capfd):
    from ekya.prepare.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ekya.prepare", *args])
    with pytest.raises(SystemExit) as done:
        cli()
    lines = capfd.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(lines) == 1 and lines[0].startswith("ekya.prepare: error: "), lines
    assert all(n in lines[0] for n in needles), lines[0]
    assert not list(tmp_path.iterdir())  # no out folder made


@pytest.mark.parametrize("args, needles", [
    (["nope"], ["no study 'nope'", "choose one of"]),
    (["accelerators"], ["--uri sqlite:///mlflow.db", "no MLflow store there"]),
], ids=["r39-analysis-no-such-study", "r39-analysis-empty-folder"])
def test_analysis_bad_input_is_one_line(args, needles, tmp_path, monkeypatch, capfd):
    from ekya.analysis.__main__ import main

    monkeypatch.chdir(tmp_path)
    try:
        status = main(args)
    except SystemExit as done:  # argparse's own usage errors
        status = done.code
    lines = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "error: " in lines[0], lines
    assert all(n in lines[0] for n in needles), lines[0]
    assert not list(tmp_path.iterdir())  # no store created in an empty folder


def test_the_early_checkpoint_check_passes_a_real_checkpoint_and_leaves_templates_to_each_camera(tmp_path):
    # the other side of r27/r28: the check a run makes before its data must not refuse what it would load
    from ekya.learners import FinetuneLearner, save_checkpoint
    from ekya.learners.model_state import check_checkpoint

    save_checkpoint(FinetuneLearner().new_model(6, seed=0), tmp_path / "base.pt")
    check_checkpoint(str(tmp_path / "base.pt"))
    check_checkpoint(str(tmp_path / "base_{camera}.pt"))  # read per camera when the base models are made
    check_checkpoint(None)
