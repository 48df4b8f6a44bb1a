"""replay: play a schedule file, ours or the original's ``schedules.json``.

Our format (written by ``write_schedule``; one file per run)::

    {"format": "ekya-schedule/1",
     "windows": {"<window index>": [{"stream": "cam0", "config": "cfgA" | null,
                                     "infer_share": 0.3, "train_share": 0.2}, ...]}}

The original's format (the simulator's ``allocation_*.json`` = the runtime's ``schedules.json``):
``{"{period}_{resources}_{sched}_{use_oracle}": {task: {time: {job: share}}}}`` where training jobs
are named ``{camera}_train_{hp}_{epochs}`` and inference jobs by the camera name; shares are
fractions of one GPU. Like the original's UtilitySimScheduler we read only the t = 0 allocation of
the window's task; the config becomes ``config_format.format(hp=..., epochs=...)`` (default
``{hp}_{epochs}``, the names profiles/original.py gives). Window k reads task ``first_task + k``.

Shares are played as written (they need not be multiples of Delta); a schedule that needs more
than the budget's capacity is an error, one that merely does not pack is repaired (packing.py).
On completion the default rule applies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from ekya.errors import EkyaError
from ekya.plans.budget import EPS
from ekya.plans.packing import pack
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.common import check_inputs, predict_fixed
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile

FORMAT = "ekya-schedule/1"
_TRAIN = re.compile(r"^(?P<cam>.+)_train_(?P<hp>[^_]+)_(?P<epochs>\d+)$")


def write_schedule(path: str | Path, plans: Mapping[int, Plan]) -> None:
    """Write plans by window index in our schedule format (atomically: temp file, then rename)."""
    doc = {
        "format": FORMAT,
        "windows": {
            str(w): [{"stream": s.stream, "config": s.config, "infer_share": s.infer_share, "train_share": s.train_share} for s in p.streams]
            for w, p in sorted(plans.items())
        },
    }
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)


class ReplayScheduler(Scheduler):
    """Replays the shares and configs of a schedule file, window by window."""

    name = "replay"
    needs_profiles = False

    def __init__(
        self,
        path: str,
        key: str | None = None,
        first_task: int = 0,
        camera_map: Mapping[str, str] | None = None,
        config_format: str = "{hp}_{epochs}",
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.first_task = int(first_task)
        self.camera_map = dict(camera_map or {})
        self.config_format = config_format
        self._window = 0
        self._doc: Any = None

    def start_window(self, index: int) -> None:
        """Replay window ``index`` next."""
        self._window = int(index)

    def _load(self) -> Any:
        if self._doc is None:
            try:
                self._doc = json.loads(self.path.read_text())
            except FileNotFoundError:
                raise EkyaError(f"scheduler.path: schedule file {self.path} does not exist") from None
            except json.JSONDecodeError as e:
                raise EkyaError(f"{self.path}: not valid JSON ({e})") from None
            if not isinstance(self._doc, dict):
                raise EkyaError(f"{self.path}: expected a JSON object at the top level")
        return self._doc

    def _ours(self, doc: Mapping[str, Any], names: Sequence[str]) -> dict[str, tuple[str | None, float, float]]:
        windows = doc.get("windows")
        if not isinstance(windows, dict):
            raise EkyaError(f"{self.path}: field 'windows' is missing or not an object")
        rows = windows.get(str(self._window))
        if rows is None:
            raise EkyaError(f"{self.path}: no schedule for window {self._window} (has {sorted(windows, key=int)})")
        out = {}
        for n, row in enumerate(rows):
            where = f"{self.path}: windows.{self._window}[{n}]"
            try:
                stream = self.camera_map.get(row["stream"], row["stream"])
                out[stream] = (row.get("config"), float(row["infer_share"]), float(row["train_share"]))
            except (KeyError, TypeError, ValueError) as e:
                raise EkyaError(f"{where}: missing or invalid field {e}") from None
        return out

    def _original(self, doc: Mapping[str, Any], names: Sequence[str]) -> dict[str, tuple[str | None, float, float]]:
        if self.key is None:
            raise EkyaError(f"scheduler.key: {self.path} is an original schedules.json; name the key to replay, one of {sorted(doc)[:10]}")
        if self.key not in doc:
            raise EkyaError(f"scheduler.key: {self.key!r} is not in {self.path}; it has {sorted(doc)[:10]}")
        task = str(self.first_task + self._window)
        by_task = doc[self.key]
        if task not in by_task:
            raise EkyaError(f"{self.path}: key {self.key!r} has no task {task} (window {self._window}); tasks: {sorted(by_task, key=lambda t: int(t) if t.isdigit() else t)}")
        times = by_task[task]
        t0 = min(times, key=float) if times else None
        if t0 is None or abs(float(t0)) > EPS:
            raise EkyaError(f"{self.path}: {self.key!r} task {task} has no allocation at time 0")
        out: dict[str, tuple[str | None, float, float]] = {}
        for job, share in times[t0].items():
            m = _TRAIN.match(job)
            cam = self.camera_map.get(m.group("cam") if m else job, m.group("cam") if m else job)
            if cam not in names:
                continue  # read only what this run needs
            config, i, r = out.get(cam, (None, 0.0, 0.0))
            if m:
                config, r = self.config_format.format(hp=m.group("hp"), epochs=m.group("epochs")), float(share)
            else:
                i = float(share)
            out[cam] = (config, i, r)
        return out

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """The schedule of the current window."""
        check_inputs(profiles, budget)
        doc = self._load()
        names = [p.stream for p in profiles]
        rows = self._ours(doc, names) if doc.get("format") == FORMAT else self._original(doc, names)
        missing = [n for n in names if n not in rows]
        if missing:
            raise EkyaError(f"{self.path}: window {self._window} has no schedule for stream(s) {missing}; "
                            f"map names with scheduler.camera_map (file has {sorted(rows)})")
        streams = []
        for p in profiles:
            config, i, r = rows[p.stream]
            if i < 0 or r < 0:
                raise EkyaError(f"{self.path}: window {self._window}, stream {p.stream!r}: negative share")
            if config is not None and p.configs and not any(c.config == config for c in p.configs):
                raise EkyaError(f"{self.path}: window {self._window}, stream {p.stream!r}: config {config!r} is not in the profiles")
            streams.append(StreamPlan(p.stream, config if r > EPS else None, i, r if config is not None else 0.0))
        total = sum(s.infer_share + s.train_share for s in streams)
        if total > budget.capacity + 1e-6:
            raise EkyaError(f"{self.path}: window {self._window} uses {total:.3f} accelerators but the budget has {budget.capacity:g}")
        self._window += 1
        return predict_fixed(profiles, pack(Plan(tuple(streams)), budget), budget)
