"""Progress a person can see: a line per played window on stderr (on a terminal, or forced), quiet in pipes."""

from __future__ import annotations

import dataclasses
import logging
import math
import pickle
import re
import sys

import pytest

from ekya.callbacks.checkpoint import STATE_FILE, load_state
from ekya.callbacks.progress import Progress, preparing, window_line
from ekya.composition import build_runtime, run_config
from ekya.execution.hooks import RunContext
from ekya.execution.runtime import WindowResult
from ekya.plans.types import Plan, StreamPlan
from ekya.results.records import WindowRecord

from helpers.stores import seed_store

CHEAP = ["runtime=simulate", "runtime.synthetic.streams=2", "runtime.synthetic.windows=3", "~tracking"]
#: a window's line as printed (the tqdm bar beside it ends with a carriage return, so split on both)
LINE = re.compile(r"^window (\d+) \((\d+)/(\d+)\): (.*)$")


@pytest.fixture(autouse=True)
def _keep_log_level():
    # run_config sets the root logger's level from log_level; later tests in this process expect the default
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


def _lines(err: str) -> list[re.Match[str]]:
    return [m for line in re.split(r"[\r\n]", err) if (m := LINE.match(line.strip()))]


def test_forced_on_prints_one_line_per_window_with_the_decisions_and_accuracies(make_cfg, tmp_path, capsys):
    run = run_config(make_cfg(*CHEAP, "callbacks.progress.show=on"), tmp_path / "run")
    out = capsys.readouterr()
    lines = _lines(out.err)
    frame = run.frame
    assert [int(m[1]) for m in lines] == sorted(frame["window"].unique()) == [0, 1, 2]
    assert [(int(m[2]), int(m[3])) for m in lines] == [(1, 3), (2, 3), (3, 3)]
    for m in lines:
        rows = frame[frame["window"] == int(m[1])]
        text = m[4]
        assert text.startswith(f"{run.runtime.scheduler.name} retrained ")
        for row in rows.itertuples():
            if row.config == "none":
                assert f"{row.stream} (" not in text
            else:  # each retrained camera with its config and training share
                assert f"{row.stream} ({row.config}, train {row.train_share:.2f}, " in text
        served = int((rows["config"] == "none").sum())
        assert (f"{served} camera" in text) == (0 < served < len(rows))
        assert (f"mean accuracy {rows['accuracy'].mean():.3f} "
                f"(no retraining {rows['noretrain_accuracy'].mean():.3f})") in text
    assert "retrained" not in out.out and "mean window accuracy" in out.out  # stdout: the summary table only


def test_a_resumed_run_says_where_it_resumes(make_cfg, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_config(make_cfg(*CHEAP, "callbacks.progress.show=on"), run_dir)
    state = load_state(run_dir)  # as if the run had been stopped after window 0
    saved = dataclasses.replace(state, next_window=1, records=[r for r in state.records if r.window < 1])
    (run_dir / STATE_FILE).write_bytes(pickle.dumps(saved))
    capsys.readouterr()
    run_config(make_cfg(f"resume={run_dir}"), run_dir)
    err = capsys.readouterr().err
    assert "resuming at window 1: 2 of 3 windows left to play" in err
    assert [int(m[1]) for m in _lines(err)] == [1, 2]


@pytest.mark.parametrize("show, tty, log_level, printed", [
    ("auto", False, "warning", False),  # a pipe, a CI log, a test
    ("auto", True, "warning", True),  # a terminal
    ("auto", True, "error", False),
    ("off", True, "warning", False),
    ("on", False, "error", True),
])
def test_auto_prints_on_a_terminal_only(make_cfg, tmp_path, capsys, monkeypatch, show, tty, log_level, printed):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    run_config(make_cfg(*CHEAP, f"callbacks.progress.show={show}", f"log_level={log_level}"), tmp_path / "run")
    assert len(_lines(capsys.readouterr().err)) == (3 if printed else 0)


def test_log_level_info_logs_the_lines_in_a_pipe(make_cfg, tmp_path, capsys, caplog):
    run_config(make_cfg(*CHEAP, "log_level=info"), tmp_path / "run")
    assert not _lines(capsys.readouterr().err)  # not printed as such: stderr is no terminal here
    logged = [r.getMessage() for r in caplog.records if r.name == "ekya.progress" and r.levelno == logging.INFO]
    assert [LINE.match(m)[1] for m in logged if LINE.match(m)] == ["0", "1", "2"]


def _record(stream: str, config: str, infer: float, train: float, done: float,
            frames: tuple[float, ...]) -> WindowRecord:
    classified, skipped, lost, faults = frames
    return WindowRecord(window=4, stream=stream, config=config, infer_share=infer, train_share=train, accuracy=0.5,
                        noretrain_accuracy=0.25, predicted_accuracy=math.nan, start_accuracy=0.4, end_accuracy=0.6,
                        retrain_cost=1.0, completion_time=done, scheduler_seconds=0.01, frames_classified=classified,
                        frames_skipped=skipped, frames_lost=lost, faults=faults)


def test_a_ray_window_shows_frames_classified_skipped_and_lost():
    records = [_record("camA", "full_e5", 0.5, 0.5, 42.4, (80, 3, 1, 0)),
               _record("camB", "none", 0.0, 0.0, math.nan, (0, 70, 7, 1)),
               _record("camC", "frozen_e2", 0.25, 0.25, math.nan, (60, 0, 0, 0))]
    plan = Plan((StreamPlan("camA", "full_e5", 0.5, 0.5, 0, 1), StreamPlan("camB", None, 0.0, 0.0),
                 StreamPlan("camC", "frozen_e2", 0.25, 0.25, 0, 0)))
    line = window_line(WindowResult(4, records, plan), "thief", (2, 5), 38.2, accelerators=2)
    assert line == ("window 4 (2/5): thief retrained camA (full_e5, train 0.50 of accelerator 1, live at 42 s), "
                    "camC (frozen_e2, train 0.25 of accelerator 0, not live in the window); 1 camera served only; "
                    "no inference share: camB; mean accuracy 0.500 (no retraining 0.250); "
                    "frames 140 classified, 73 skipped, 8 lost, 1 actor fault(s); 38 s")
    emulated = [_record("camA", "none", 1.0, 0.0, math.nan, (math.nan,) * 4)]
    assert window_line(WindowResult(1, emulated, Plan((StreamPlan("camA", None, 1.0, 0.0),))), "fair") == (
        "window 1: fair retrained no camera; mean accuracy 0.500 (no retraining 0.250)")


def test_data_and_base_models_are_announced_before_the_slow_starts(make_cfg, tmp_path, capsys):
    cfg = make_cfg("experiment=tiny", "threads=1", f"runtime.base_cache={tmp_path / 'bases'}")
    progress = Progress(show="on")
    runtime, _ = build_runtime(cfg, before=preparing({"progress": progress}, cfg))
    progress.on_run_start(RunContext(run_dir=tmp_path, name="a", runtime=runtime, params={}, tags={}))
    runtime.setup(None)  # trains both base models into the cache
    again, _ = build_runtime(cfg)
    progress.on_run_start(RunContext(run_dir=tmp_path, name="b", runtime=again, params={}, tags={}))
    err = [line.strip() for line in capsys.readouterr().err.splitlines() if line.strip() and "%|" not in line]
    data = f"data: loading dataset 'synthetic' from {cfg.dataset.root} (generated there on first use, a few seconds)"
    assert err == [data,
                   "base models: training 2 on window 0 (2 cameras)",
                   "base models: loading 2 from runtime.base_cache (2 cameras)"]


def test_a_bad_show_value_is_one_line_and_exit_2(tmp_path, monkeypatch, capfd):
    from ekya.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", ["ekya", *CHEAP, "callbacks.progress.show=loud"])
    seed_store(tmp_path)
    with pytest.raises(SystemExit) as done:
        cli()
    err = capfd.readouterr().err.strip().splitlines()
    assert done.value.code == 2
    assert err == ["ekya: error: callbacks.progress.show='loud': use auto (on a terminal only), on or off"]
    assert not (tmp_path / "outputs" / "runs").exists() or not any((tmp_path / "outputs" / "runs").iterdir())
