"""dataset.windows below a run's minimum (2: the bootstrap window and one played) is one clear line, early."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from ekya.errors import EkyaError
from ekya.execution.hooks import Callback, RunContext
from ekya.execution.loop import run_windows
from ekya.execution.runtime import Runtime
from ekya.streams.windows import MIN_RUN_WINDOWS, check_run_windows

from helpers.stores import seed_store


@pytest.mark.parametrize("value, says", [
    (1, "dataset.windows=1: must be at least 2 (window 0 only trains the base models"),
    (0, "dataset.windows=0: must be at least 2"), (-3, "dataset.windows=-3: must be at least 2"),
    ("abc", "dataset.windows=abc: must be a whole number of windows, at least 2"),
    (2.5, "dataset.windows=2.5: must be a whole number"), (None, "dataset.windows=None: must be a whole number"),
])
def test_too_few_or_no_windows_name_the_key_and_minimum(value: Any, says: str) -> None:
    with pytest.raises(EkyaError, match=r"^" + says.replace(".", r"\.").replace("(", r"\(")):
        check_run_windows(value)


def test_a_whole_number_of_two_or_more_windows_passes() -> None:
    assert MIN_RUN_WINDOWS == 2
    assert [check_run_windows(v) for v in (2, "3", 10.0)] == [2, 3, 10]


@pytest.mark.parametrize("windows", ["1", "0"])
def test_the_run_refuses_them_in_one_line_before_generating_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capfd: pytest.CaptureFixture, windows: str) -> None:
    # once an IndexError traceback after a false warning about window.val_fraction (1), or a complaint
    # about dataset.chunks, a key the user never typed (0)
    from ekya.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EKYA_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "argv", ["ekya", "experiment=tiny", "threads=1", f"dataset.windows={windows}"])
    seed_store(tmp_path)
    with pytest.raises(SystemExit) as done:
        cli()
    err = capfd.readouterr().err.strip().splitlines()
    says = (f"ekya: error: dataset.windows={windows}: must be at least 2 (window 0 only trains the base models; "
            "window 1 is the first one played and scored)")
    assert done.value.code == 2 and err == [says], err
    assert not (tmp_path / "data").exists()  # refused before the synthetic stream was generated


class _NoWindows(Runtime):
    """A runtime with nothing to play after its bootstrap window."""

    def __init__(self) -> None:
        self.windows, self.streams, self.source, self.calls = [], ["cam"], "none", []

    def setup(self, saved: Any | None) -> None:
        self.calls.append("setup")

    def play(self, window: int) -> Any:
        self.calls.append("play")

    def snapshot(self) -> Any:
        return None

    def close(self) -> None:
        self.calls.append("close")


class _Starts(Callback):
    def __init__(self) -> None:
        self.started = False

    def on_run_start(self, run: RunContext) -> None:
        self.started = True


def test_the_loop_refuses_a_runtime_with_no_window_before_any_callback_starts(tmp_path: Path) -> None:
    runtime, callback = _NoWindows(), _Starts()
    run = RunContext(run_dir=tmp_path, name="n", runtime=runtime, params={}, tags={}, callbacks={"c": callback})
    with pytest.raises(EkyaError, match=r"dataset\.windows: no window to play.*at least 2"):
        run_windows(runtime, run)
    assert runtime.calls == ["close"] and not callback.started  # nothing set up, no tracking run begun
    assert not (tmp_path / "windows.csv").exists()
