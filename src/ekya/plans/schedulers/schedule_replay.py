"""Schedule replay (``scheduler=replay``): play a saved schedule file, ours or the original's ``schedules.json``.

Our format (written by ``write_schedule``; one file per run)::

    {"format": "ekya-schedule/1",
     "windows": {"<window index>": [{"stream": "cam0", "config": "cfgA" | null,
                                     "infer_share": 0.3, "train_share": 0.2,
                                     "infer_device": 0, "train_device": 0 | null}, ...]}}

The devices are optional (files written before they were recorded have none).

The original's format (the simulator's ``allocation_*.json`` = the runtime's ``schedules.json``):
``{"{period}_{resources}_{sched}_{use_oracle}": {task: {time: {job: share}}}}`` where training jobs
are named ``{camera}_train_{hp}_{epochs}`` and inference jobs by the camera name; shares are
fractions of one GPU. Like the original's UtilitySimScheduler we read only the t = 0 allocation of
the window's task; the config becomes ``config_format.format(hp=..., epochs=...)`` (default
``{hp}_{epochs}``, the names profiles/original.py gives). Window k reads task ``first_task + k``.

Shares are played as written (they need not be multiples of Delta); a schedule that needs more
than the budget's capacity is an error. Where a window of our format gives every job's device and
that placement fits this budget, it is played as written, so a replayed plan is the plan that was
written; otherwise the plan is packed, and repaired if it does not fit (packing.py). On completion
the default rule applies. The file is read and checked when the scheduler is built, before any
training.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.plans.packing import pack
from ekya.plans.quanta import EPS
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.plan_building import check_inputs, predict_fixed
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile

FORMAT = "ekya-schedule/1"
_TRAIN = re.compile(r"^(?P<cam>.+)_train_(?P<hp>[^_]+)_(?P<epochs>\d+)$")
_DEVICES = ("infer_device", "train_device")

# One stream's row of a window: (config, infer_share, train_share, infer_device, train_device).
Row = tuple[str | None, float, float, int | None, int | None]


def write_schedule(path: str | Path, plans: Mapping[int, Plan]) -> None:
    """Write plans by window index in our schedule format (atomically), with every job's device."""
    doc = {
        "format": FORMAT,
        "windows": {
            str(w): [{"stream": s.stream, "config": s.config, "infer_share": s.infer_share,
                      "train_share": s.train_share, "infer_device": s.infer_device, "train_device": s.train_device}
                     for s in p.streams]
            for w, p in sorted(plans.items())
        },
    }
    atomic_write(path, json.dumps(doc, indent=1))


def _device(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"device {value!r} is not an integer or null")
    return value


def _placement_fits(streams: Sequence[StreamPlan], accelerators: int) -> bool:
    """Whether every job with a share sits on one of the accelerators and none holds more than 1.0."""
    loads = [0.0] * accelerators
    for s in streams:
        for share, dev in ((s.infer_share, s.infer_device), (s.train_share, s.train_device)):
            if share <= EPS:
                continue
            if dev is None or not 0 <= dev < accelerators:
                return False
            loads[dev] += share
    return all(v <= 1.0 + 1e-6 for v in loads)


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
        self.config_format = str(config_format)
        self._window = 0
        try:
            self.config_format.format(hp="0", epochs="1")
        except (KeyError, IndexError, ValueError) as e:
            raise EkyaError(f"scheduler.config_format={config_format!r} is not a format of {{hp}} and {{epochs}} "
                            f"({type(e).__name__}: {e}); e.g. '{{hp}}_{{epochs}}'") from None
        self._doc = self._load()
        self._ours_format = self._doc.get("format") == FORMAT
        if not self._ours_format:
            self._check_key()
        elif not isinstance(self._doc.get("windows"), dict):
            raise EkyaError(f"{self.path}: field 'windows' is missing or not an object")

    def start_window(self, index: int) -> None:
        """Replay window ``index`` next."""
        self._window = int(index)

    def _load(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise EkyaError(f"scheduler.path: schedule file {self.path} does not exist") from None
        except json.JSONDecodeError as e:
            raise EkyaError(f"{self.path}: not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise EkyaError(f"{self.path}: expected a JSON object at the top level")
        return doc

    def _check_key(self) -> None:
        if self.key is None:
            raise EkyaError(f"scheduler.key: {self.path} is an original schedules.json; name the key to replay, "
                            f"one of {sorted(self._doc)[:10]}")
        if self.key not in self._doc:
            raise EkyaError(f"scheduler.key: {self.key!r} is not in {self.path}; it has {sorted(self._doc)[:10]}")

    def _ours(self) -> tuple[dict[str, Row], bool]:
        """The window's rows by stream, and whether every row gives both devices."""
        windows = self._doc["windows"]
        rows = windows.get(str(self._window))
        if rows is None:
            raise EkyaError(f"{self.path}: no schedule for window {self._window} (has {sorted(windows, key=int)})")
        out: dict[str, Row] = {}
        placed = True
        for n, row in enumerate(rows):
            try:
                stream = self.camera_map.get(row["stream"], row["stream"])
                placed = placed and all(k in row for k in _DEVICES)
                out[stream] = (row.get("config"), float(row["infer_share"]), float(row["train_share"]),
                               _device(row.get("infer_device")), _device(row.get("train_device")))
            except (KeyError, TypeError, ValueError) as e:
                raise EkyaError(f"{self.path}: windows.{self._window}[{n}]: missing or invalid field {e}") from None
        return out, placed

    def _original(self, names: Sequence[str]) -> dict[str, Row]:
        task = str(self.first_task + self._window)
        assert self.key is not None, "_check_key refuses an original schedules.json without a key"
        by_task = self._doc[self.key]
        if task not in by_task:
            raise EkyaError(f"{self.path}: key {self.key!r} has no task {task} (window {self._window}); tasks: "
                            f"{sorted(by_task, key=lambda t: int(t) if t.isdigit() else t)}")
        times = by_task[task]
        t0 = min(times, key=float) if times else None
        if t0 is None or abs(float(t0)) > EPS:
            raise EkyaError(f"{self.path}: {self.key!r} task {task} has no allocation at time 0")
        out: dict[str, Row] = {}
        for job, share in times[t0].items():
            m = _TRAIN.match(job)
            cam = self.camera_map.get(m.group("cam") if m else job, m.group("cam") if m else job)
            if cam not in names:
                continue  # read only what this run needs
            config, i, r, _, _ = out.get(cam, (None, 0.0, 0.0, None, None))
            if m:
                config, r = self.config_format.format(hp=m.group("hp"), epochs=m.group("epochs")), float(share)
            else:
                i = float(share)
            out[cam] = (config, i, r, None, None)
        return out

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """The schedule of the window set by ``start_window``."""
        check_inputs(profiles, budget)
        names = [p.stream for p in profiles]
        rows, placed = self._ours() if self._ours_format else (self._original(names), False)
        missing = [n for n in names if n not in rows]
        if missing:
            raise EkyaError(f"{self.path}: window {self._window} has no schedule for stream(s) {missing}; "
                            f"map names with scheduler.camera_map (file has {sorted(rows)})")
        streams = []
        for p in profiles:
            config, i, r, infer_device, train_device = rows[p.stream]
            if i < 0 or r < 0:
                raise EkyaError(f"{self.path}: window {self._window}, stream {p.stream!r}: negative share")
            if config is not None and p.configs and not any(c.config == config for c in p.configs):
                raise EkyaError(f"{self.path}: window {self._window}, stream {p.stream!r}: config {config!r} "
                                "is not in the profiles")
            streams.append(StreamPlan(p.stream, config if r > EPS else None, i, r if config is not None else 0.0,
                                      infer_device, train_device))
        total = sum(s.infer_share + s.train_share for s in streams)
        if total > budget.capacity + 1e-6:
            raise EkyaError(f"{self.path}: window {self._window} uses {total:.3f} accelerators but the budget "
                            f"has {budget.capacity:g}")
        plan = Plan(tuple(streams))
        if not (placed and _placement_fits(streams, budget.accelerators)):
            plan = pack(plan, budget)
        return predict_fixed(profiles, plan, budget)
