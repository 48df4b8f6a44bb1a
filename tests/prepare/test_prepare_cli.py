"""`python -m ekya.prepare` usage errors: one `ekya.prepare: error:` line, exit status 2, the key named."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ekya.prepare.__main__ import cli

USAGE = ("python -m ekya.prepare video=PATH_OR_GLOB out=DIR [KEY=VALUE ...], "
         "e.g. python -m ekya.prepare video='clips/*.mp4' out=data/mycams")


def _usage_error(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capfd: pytest.CaptureFixture) -> str:
    """The one stderr line of ``python -m ekya.prepare ARGS`` (run in this process), which must exit 2."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ekya.prepare", *args])
    with pytest.raises(SystemExit) as done:
        cli()
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert done.value.code == 2 and len(lines) == 1 and lines[0].startswith("ekya.prepare: error: "), err
    assert not out and not list(tmp_path.iterdir())  # nothing written
    return lines[0].removeprefix("ekya.prepare: error: ")


@pytest.mark.parametrize("args, says", [
    ([], f"video and out are required: {USAGE}"),  # once a MissingMandatoryValue traceback
    (["video=clips/a.mp4"], f"out is required: {USAGE}"),
    (["out=data/mycams"], f"video is required: {USAGE}"),
])
def test_missing_video_or_out_names_them_and_shows_the_usage(args, says, tmp_path, monkeypatch, capfd) -> None:
    assert _usage_error(args, tmp_path, monkeypatch, capfd) == says


@pytest.mark.parametrize("args, says", [
    # once Hydra's several lines and exit status 1
    (["video=a.mp4", "out=o", "fsp=2"],
     "fsp: ekya.prepare has no such key; did you mean fps? (python -m ekya.prepare --help lists the keys)"),
    (["fsp=2"], "fsp: ekya.prepare has no such key; did you mean fps?"),  # before the missing keys
    (["video=a.mp4", "out=o", "detector.bgsub.treshold=3"], "did you mean detector.bgsub.threshold?"),
    (["video=a.mp4", "out=o", "scheduler=fair"],  # a group of the main app, not of prepare
     "scheduler: ekya.prepare has no such key (python -m ekya.prepare --help lists the keys)"),
    (["video=a.mp4", "out=o", "labeler=nope"],
     "labeler=nope: no such labeler; choose one of classifier, ground_truth, noisy, trained"),
])
def test_a_typo_names_the_key_and_points_to_help(args, says, tmp_path, monkeypatch, capfd) -> None:
    assert says in _usage_error(args, tmp_path, monkeypatch, capfd)
