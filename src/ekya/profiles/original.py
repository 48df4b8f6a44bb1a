"""Read the original Ekya's profile directories (profiling-mode output) into a ProfileSet.

Layout (what the original's profiling mode writes): ``<root>/<camera>/`` holds, per hyperparameter id ``hp``:

* ``{hp}_profile.json``: ``{task: [row per epoch]}``, 13 columns per row: epoch-start timestamp,
  then time, loss, accuracy, sample count for train, val and test (zeros where a phase did not run).
* ``{hp}_retraining_result.json``: ``{"val_acc": {task: acc}, "test_acc": {...},
  "preretrain_test_acc": {task: acc}}``.

Conversion, as the original's ``generate_meta_profiles`` but without its epoch off-by-one: every
epoch row k that has a test result yields config ``"{hp}_{k + 1}"`` (k + 1
epochs were trained when row k ends) with accuracy = that row's test accuracy and cost = the sum of
the train times of rows 0..k, i.e. exactly the k + 1 epochs trained. The original named the same
row ``"{hp}_{k}"`` while charging k + 1 epochs. A window's start accuracy is the minimum of the
pre-retraining test accuracies over the hps (as the original). The profiled train times are taken
as accelerator-seconds at a full share, as the original did. Only tasks present for every camera
and hp become windows, labelled by task id. The optional ``{hp}_predicted_acc_1.json`` has no
documented producer or format, so predictions are not read (predicted = truth).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ekya.errors import EkyaError
from ekya.profiles.types import ConfigProfile, ProfileSet, StreamProfile

_COLS = 13
_TRAIN_TIME, _TEST_ACC, _TEST_N = 1, 11, 12


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EkyaError(f"{path}: file is missing (expected in the original's profile layout)") from None
    except json.JSONDecodeError as e:
        raise EkyaError(f"{path}: not valid JSON ({e})") from None


def _configs(path: Path, hp: str, task: str, rows: Any, epochs: Sequence[int] | None) -> list[ConfigProfile]:
    if not isinstance(rows, list):
        raise EkyaError(f"{path}: field {task} must be a list of epoch rows")
    out, spent = [], 0.0
    for k, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != _COLS:
            raise EkyaError(f"{path}: task {task}, epoch row {k} must have {_COLS} columns")
        spent += float(row[_TRAIN_TIME])
        if float(row[_TEST_N]) > 0 and (epochs is None or k + 1 in epochs):
            acc = float(row[_TEST_ACC])
            if not 0.0 <= acc <= 1.0:
                raise EkyaError(f"{path}: task {task}, epoch row {k}: test accuracy {acc} outside [0, 1]")
            out.append(ConfigProfile(f"{hp}_{k + 1}", acc, spent))
    return out


def read_original(root: str | Path, cameras: Sequence[str] | None = None,
                  epochs: Sequence[int] | None = None) -> ProfileSet:
    """Profiles of ``cameras`` (default: every sub-directory of ``root``); ``epochs`` filters configs."""
    root = Path(root)
    if not root.is_dir():
        raise EkyaError(f"{root}: original profile directory does not exist")
    cams = list(cameras) if cameras is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
    if not cams:
        raise EkyaError(f"{root}: no camera directories")
    per_cam: dict[str, dict[str, tuple[float, list[ConfigProfile]]]] = {}
    for cam in cams:
        d = root / cam
        if not d.is_dir():
            raise EkyaError(f"{d}: camera directory does not exist")
        hps = sorted((m.group(1) for p in d.glob("*_profile.json") if (m := re.match(r"^(.+)_profile\.json$", p.name))),
                     key=lambda h: (len(h), h))
        if not hps:
            raise EkyaError(f"{d}: no {{hp}}_profile.json files")
        tasks: dict[str, tuple[float, list[ConfigProfile]]] = {}
        common: set[str] | None = None
        for hp in hps:
            prof_path, res_path = d / f"{hp}_profile.json", d / f"{hp}_retraining_result.json"
            prof, res = _load(prof_path), _load(res_path)
            pre = res.get("preretrain_test_acc") if isinstance(res, dict) else None
            if not isinstance(pre, dict):
                raise EkyaError(f"{res_path}: field preretrain_test_acc is missing")
            if not isinstance(prof, dict):
                raise EkyaError(f"{prof_path}: expected an object of task -> epoch rows")
            have = set(prof) & set(pre)
            common = have if common is None else common & have
            for task in have:
                a0 = float(pre[task])
                if not 0.0 <= a0 <= 1.0:
                    raise EkyaError(f"{res_path}: field preretrain_test_acc.{task} = {a0} outside [0, 1]")
                old = tasks.get(task, (1.0, []))
                tasks[task] = (min(old[0], a0), old[1] + _configs(prof_path, hp, task, prof[task], epochs))
        per_cam[cam] = {t: tasks[t] for t in (common or set())}
    shared = set.intersection(*(set(v) for v in per_cam.values()))
    if not shared:
        raise EkyaError(f"{root}: no task is profiled for every camera and hp")
    order = sorted(shared, key=lambda t: (int(t) if t.lstrip("-").isdigit() else 0, t))
    truth = tuple(tuple(StreamProfile(cam, per_cam[cam][t][0], tuple(per_cam[cam][t][1])) for cam in cams)
                  for t in order)
    return ProfileSet(truth=truth, predicted=truth, window_ids=tuple(order))
