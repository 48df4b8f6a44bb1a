"""Our profile-set file format (JSON): reader with field-level validation, and writer.

Format ``ekya-profiles/1``::

    {
      "format": "ekya-profiles/1",
      "measured_under": {"window_seconds": 200.0,             # optional: the run's window.seconds,
                         "accelerators": 1, "delta": 0.05},   # cluster.accelerators and cluster.delta
      "configs": {"<config>": {<learner params>}, ...},      # optional; declares the config names
      "windows": ["1", "2", ...],                             # optional labels, one per window
      "streams": {
        "<stream>": [                                         # one entry per window, same count for all
          {"start_accuracy": 0.71,                            # deployed model on this window, in [0, 1]
           "predicted_start_accuracy": 0.70,                  # optional
           "observables": {"window": 2, ...},                 # optional: what the window start shows
           "configs": {
             "<config>": {"accuracy": 0.83,                   # reached after retraining, in [0, 1]
                          "cost": 41.5,                       # accelerator-seconds at a full share, >= 0
                          "predicted_accuracy": 0.80,         # optional (what a scheduler is told)
                          "predicted_cost": 40.0,             # optional
                          "val_accuracy": 0.81,               # optional: measured validation accuracy
                          "observables": {"window": 1, ...}}}}  # cached models (cache:...) only
        ]
      }
    }

When "configs" is declared at the top, every config named in a window must be declared there,
except cached models (names starting with ``cache:``, see ``ekya.plans.schedulers.model_cache``),
which are not retraining configs and must carry ``observables.window`` (an integer >= 0: the
window whose pool trained them). Observables hold numbers, strings or lists of numbers.
A file without ``measured_under`` (written before it was recorded) reads as not recorded.
Every problem raises EkyaError naming the file and the field path (e.g.
``streams.cam0[2].configs.c1.cost``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ekya.atomic import atomic_write
from ekya.configspace import is_cached
from ekya.errors import EkyaError
from ekya.profiles.types import ConfigProfile, MeasuredUnder, ProfileSet, StreamProfile

FORMAT = "ekya-profiles/1"


def _num(v: Any, where: str, path: Path, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise EkyaError(f"{path}: field {where} must be a finite number, got {v!r}")
    if lo is not None and v < lo:
        raise EkyaError(f"{path}: field {where} must be >= {lo:g}, got {v!r}")
    if hi is not None and v > hi:
        raise EkyaError(f"{path}: field {where} must be <= {hi:g}, got {v!r}")
    return float(v)


def _req(obj: Mapping[str, Any], key: str, where: str, path: Path) -> Any:
    if not isinstance(obj, dict):
        raise EkyaError(f"{path}: field {where} must be an object")
    if key not in obj:
        raise EkyaError(f"{path}: field {where}.{key} is missing")
    return obj[key]


def _observables(v: Any, where: str, path: Path) -> dict[str, Any]:
    """An observables object: numbers, strings or lists of numbers, by name."""
    if not isinstance(v, dict):
        raise EkyaError(f"{path}: field {where} must be an object of name -> number, string or list of numbers")
    out: dict[str, Any] = {}
    for key, x in v.items():
        if isinstance(x, str):
            out[key] = x
        elif isinstance(x, list):
            out[key] = [_num(e, f"{where}.{key}[{n}]", path) for n, e in enumerate(x)]
        else:
            out[key] = _num(x, f"{where}.{key}", path)
    if "window" in out:
        w = out["window"]
        if not isinstance(w, float) or w != int(w) or w < 0:
            raise EkyaError(f"{path}: field {where}.window must be an integer >= 0, got {v['window']!r}")
        out["window"] = int(w)
    return out


def _parse_window(name: str, win: Any, where: str, declared: Mapping[str, Any] | None,
                  path: Path) -> tuple[StreamProfile, StreamProfile]:
    """One stream's window: (its true profile, what a scheduler is told), validated field by field."""
    a0 = _num(_req(win, "start_accuracy", where, path), f"{where}.start_accuracy", path, 0.0, 1.0)
    pa0 = win.get("predicted_start_accuracy")
    pa0 = a0 if pa0 is None else _num(pa0, f"{where}.predicted_start_accuracy", path, 0.0, 1.0)
    cfgs = win.get("configs", {})
    if not isinstance(cfgs, dict):
        raise EkyaError(f"{path}: field {where}.configs must be an object of config name -> profile")
    tc, pc = [], []
    for cname, c in cfgs.items():
        cw = f"{where}.configs.{cname}"
        if declared is not None and cname not in declared and not is_cached(cname):
            raise EkyaError(f"{path}: field {cw}: unknown config {cname!r} (not declared in configs)")
        acc = _num(_req(c, "accuracy", cw, path), f"{cw}.accuracy", path, 0.0, 1.0)
        cost = _num(_req(c, "cost", cw, path), f"{cw}.cost", path, 0.0)
        pacc = c.get("predicted_accuracy")
        pacc = acc if pacc is None else _num(pacc, f"{cw}.predicted_accuracy", path, 0.0, 1.0)
        pcost = c.get("predicted_cost")
        pcost = cost if pcost is None else _num(pcost, f"{cw}.predicted_cost", path, 0.0)
        val = c.get("val_accuracy")
        val = math.nan if val is None else _num(val, f"{cw}.val_accuracy", path, 0.0, 1.0)
        obs = _observables(c.get("observables", {}), f"{cw}.observables", path)
        if is_cached(cname) and "window" not in obs:
            raise EkyaError(f"{path}: field {cw}.observables.window is missing: a cached model must say which "
                            "window's pool trained it")
        tc.append(ConfigProfile(cname, acc, cost, val_accuracy=val, observables=obs))
        pc.append(ConfigProfile(cname, pacc, pcost, observables=obs))
    obs = _observables(win.get("observables", {}), f"{where}.observables", path)
    return (StreamProfile(name, a0, tuple(tc), observables=obs),
            StreamProfile(name, pa0, tuple(pc), observables=obs))


def _measured_under(v: Any, path: Path) -> MeasuredUnder | None:
    """The ``measured_under`` object, checked field by field (None when the file does not record it)."""
    if v is None:
        return None
    if not isinstance(v, dict):
        raise EkyaError(f"{path}: field measured_under must be an object with window_seconds, accelerators, delta")
    seconds = _num(_req(v, "window_seconds", "measured_under", path), "measured_under.window_seconds", path)
    accelerators = _num(_req(v, "accelerators", "measured_under", path), "measured_under.accelerators", path, 1)
    delta = _num(_req(v, "delta", "measured_under", path), "measured_under.delta", path, 0.0, 1.0)
    if accelerators != int(accelerators):
        raise EkyaError(f"{path}: field measured_under.accelerators must be a whole number, got {accelerators!r}")
    return MeasuredUnder(seconds, int(accelerators), delta)


def parse_profiles(doc: Any, path: str | Path = "<profiles>") -> ProfileSet:
    """Validate a loaded JSON document and build the ProfileSet."""
    path = Path(path)
    if not isinstance(doc, dict):
        raise EkyaError(f"{path}: expected a JSON object at the top level")
    if doc.get("format") != FORMAT:
        raise EkyaError(f"{path}: field format must be {FORMAT!r}, got {doc.get('format')!r}")
    declared = doc.get("configs")
    if declared is not None and not isinstance(declared, dict):
        raise EkyaError(f"{path}: field configs must be an object of config name -> params")
    streams = _req(doc, "streams", "<top>", path)
    if not isinstance(streams, dict) or not streams:
        raise EkyaError(f"{path}: field streams must be a non-empty object of stream name -> windows")
    n = None
    per_stream: dict[str, tuple[list[StreamProfile], list[StreamProfile]]] = {}
    for name, windows in streams.items():
        where = f"streams.{name}"
        if not isinstance(windows, list) or not windows:
            raise EkyaError(f"{path}: field {where} must be a non-empty list of windows")
        if n is None:
            n = len(windows)
        elif len(windows) != n:
            raise EkyaError(f"{path}: field {where} has {len(windows)} windows but earlier streams have {n}")
        parsed = [_parse_window(name, win, f"{where}[{w}]", declared, path) for w, win in enumerate(windows)]
        per_stream[name] = ([t for t, _ in parsed], [p for _, p in parsed])
    assert n is not None
    labels = doc.get("windows")
    if labels is None:
        labels = [str(w) for w in range(n)]
    if not isinstance(labels, list) or len(labels) != n:
        raise EkyaError(f"{path}: field windows must list one label per window ({n})")
    names = list(per_stream)
    return ProfileSet(
        truth=tuple(tuple(per_stream[s][0][w] for s in names) for w in range(n)),
        predicted=tuple(tuple(per_stream[s][1][w] for s in names) for w in range(n)),
        window_ids=tuple(str(x) for x in labels),
        config_params={k: dict(v) for k, v in (declared or {}).items()},
        measured_under=_measured_under(doc.get("measured_under"), path),
    )


def read_profiles(path: str | Path) -> ProfileSet:
    """Read and validate a profile-set file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise EkyaError(f"{path}: profile file does not exist") from None
    except json.JSONDecodeError as e:
        raise EkyaError(f"{path}: not valid JSON ({e})") from None
    return parse_profiles(doc, path)


def to_document(ps: ProfileSet) -> dict[str, Any]:
    """The JSON document of a ProfileSet (predictions written only where they differ from the truth)."""
    streams: dict[str, list[dict[str, Any]]] = {name: [] for name in ps.streams}
    for w in range(ps.n_windows):
        for t, p in zip(ps.truth[w], ps.predicted[w]):
            pred = {c.config: c for c in p.configs}
            win: dict[str, Any] = {"start_accuracy": t.start_accuracy}
            if p.start_accuracy != t.start_accuracy:
                win["predicted_start_accuracy"] = p.start_accuracy
            if t.observables or p.observables:
                win["observables"] = dict(t.observables or p.observables)
            cfgs = {}
            for c in t.configs:
                e: dict[str, Any] = {"accuracy": c.accuracy, "cost": c.cost}
                q = pred.get(c.config)
                if q is not None and q.accuracy != c.accuracy:
                    e["predicted_accuracy"] = q.accuracy
                if q is not None and q.cost != c.cost:
                    e["predicted_cost"] = q.cost
                if math.isfinite(c.val_accuracy):
                    e["val_accuracy"] = c.val_accuracy
                observables = c.observables or (q.observables if q is not None else None)
                if observables:
                    e["observables"] = dict(observables)
                cfgs[c.config] = e
            win["configs"] = cfgs
            streams[t.stream].append(win)
    doc: dict[str, Any] = {"format": FORMAT}
    if ps.measured_under is not None:
        doc["measured_under"] = asdict(ps.measured_under)
    if ps.config_params:
        doc["configs"] = {k: dict(v) for k, v in ps.config_params.items()}
    doc["windows"] = list(ps.window_ids) if ps.window_ids else [str(w) for w in range(ps.n_windows)]
    doc["streams"] = streams
    return doc


def write_profiles(path: str | Path, ps: ProfileSet) -> None:
    """Write a profile set atomically, so no half-written file is ever left."""
    atomic_write(path, json.dumps(to_document(ps), indent=1))
