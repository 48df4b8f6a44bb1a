"""Micro-profiling: predict each retraining config's accuracy and cost from a short, cheap trial.

For every stream and every *family* of configs (configs that differ only in epochs and data
fraction), train once for a few epochs on a uniform sample of the window's training pool, record
validation accuracy (teacher labels) after every epoch and the work done, then:

- accuracy: fit an accuracy curve (``curvefit``, Optimus by default, via NNLS) over training
  progress measured in *passes over the full pool* (epochs x data fraction) and read it at each
  config's epochs x data fraction. A failed or out-of-range fit falls back to the best accuracy
  observed (never an invented gain) and the note is logged.
- cost: the per-sample FLOPs of every pass the trial ran (measured by the learner while training)
  times the config's samples and epochs, divided by the accelerator's rate: measured work, not a table.
  A learner's own per-job work scales as its ``TrainReport`` says: samples it adds to every
  epoch whatever the data fraction (iCaRL's exemplars, less those the window's pool holds too),
  passes paid once per training or validation sample, and a fixed part per job.

Every pass is charged: the trials' training and validation, and the evaluation of the deployed
model on the whole validation set that anchors the curves. The runtime charges that cost to the
window's virtual clock (retraining waits for it) and to inference, which meanwhile keeps only
what the trials leave free (``held_fraction``). State kept
per stream across windows:

- config pruning (all configs in the first window, then drop a fraction of the worst every few
  windows), as in the paper;
- trial reuse: a family's trial keeps serving later windows (its curve shifted by the change in
  the stream's measured validation accuracy) until it is ``reuse_windows`` windows old or the
  stream's accuracy has moved by more than ``reuse_drift`` since, i.e. until the scene has changed
  enough that the old curve may no longer hold. ``reuse_windows: 1`` re-profiles every window.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.profiles.curvefit import FAMILIES, fit_curve
from ekya.profiles.types import ConfigProfile, StreamProfile

log = logging.getLogger("ekya.profiler")

_VARIED = ("epochs", "data_fraction")


@dataclass(frozen=True)
class Trial:
    """One micro-profiling trial: the family it stands for, what it observed, and when it ran.

    ``start`` is the stream's validation accuracy when the trial ran (the curve is shifted by the
    change since when the trial is reused); ``window`` the window index it ran in; ``cost`` the
    accelerator-seconds charged for it in the window that uses it (0 when reused).
    """

    family: tuple
    progress: tuple[float, ...]
    val_acc: tuple[float, ...]
    cost: float
    start: float = math.nan
    window: int = -1
    #: validation samples behind each point (the fit weighs points by it: inverse binomial variance)
    counts: tuple[int, ...] = ()
    pass_flops: tuple[float, float, float] = (0.0, 0.0, 0.0)
    reused: bool = False
    #: the learner's per-job work beyond pass_flops, as its TrainReport gave it (same names)
    extra_train_samples: int = 0
    extra_overlap: float = 0.0
    train_once_flops: float = 0.0
    val_once_flops: float = 0.0
    fixed_flops: float = 0.0


@dataclass
class StreamPrediction:
    """A stream's predicted profile, the accelerator-seconds spent to get it, and fit notes."""

    profile: StreamProfile
    cost: float
    trials: list[Trial] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def family_of(config: RetrainConfig) -> tuple:
    """Configs that differ only in epochs and data fraction share one trial."""
    return tuple(sorted((k, str(v)) for k, v in config.params.items() if k not in _VARIED))


def pareto_gap(acc: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Per config, the accuracy gap to the best config that costs no more (0 on the frontier)."""
    order = np.argsort(cost, kind="stable")
    best_so_far = np.maximum.accumulate(acc[order])
    gap = np.empty_like(acc)
    gap[order] = best_so_far - acc[order]
    return gap


def transfer(reached: float, trial_start: float, start: float) -> float:
    """A trial's outcome carried to a model starting at ``start``: the same fraction of error (or accuracy) moved.

    The trial's model went from ``trial_start`` to ``reached``. A gain closes that fraction of the
    remaining error, (reached - trial_start) / (1 - trial_start), so a camera with more to gain is
    predicted to gain more; a loss keeps that fraction of the accuracy. Fresh trials on the
    camera itself (start == trial_start) are read as they are. Why: the realised gain of retraining
    is set by how far the served model is behind the labelled data far more than by the config, and
    the remaining error measures that for free (python -m ekya.bench profiler).
    """
    if not (math.isfinite(trial_start) and math.isfinite(start)) or start == trial_start:
        return float(np.clip(reached, 0.0, 1.0))
    if reached >= trial_start:
        moved = (reached - trial_start) / (1.0 - trial_start) if trial_start < 1.0 else 0.0
        return float(np.clip(start + (1.0 - start) * moved, 0.0, 1.0))
    kept = reached / trial_start if trial_start > 0 else 1.0
    return float(np.clip(start * kept, 0.0, 1.0))


#: the owner of trials shared by every camera (fleet_trials)
FLEET = "*fleet*"
#: what the start accuracy is measured on: the newest labelled chunk's validation samples, or all of them
START_DATA = ("newest", "all")

# profiler.<key> -> (whether a value is allowed, the allowed values in words)
_OPTIONS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "sample_fraction": (lambda v: 0 < v <= 1, "a fraction of the training pool in (0, 1]"),
    "epochs": (lambda v: v >= 2, "an integer >= 2 (a curve needs at least 2 epochs)"),
    "family": (lambda v: v in FAMILIES, f"one of {list(FAMILIES)}"),
    "prune_fraction": (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
    "min_configs": (lambda v: v >= 1, "an integer >= 1"),
    "trial_share": (lambda v: 0 < v <= 1, "a share of one accelerator in (0, 1]"),
    "profiling_fraction": (lambda v: 0 < v <= 1, "a fraction of the accelerators in (0, 1]"),
    "val_samples": (lambda v: v >= 0, "an integer >= 0 (0 = the whole validation set)"),
    "reuse_windows": (lambda v: v >= 1, "an integer >= 1 (1 = re-profile every window)"),
    "reuse_drift": (lambda v: v >= 0, "an accuracy difference >= 0"),
    "start_data": (lambda v: v in START_DATA, f"one of {list(START_DATA)}"),
}


def _check_options(**options: Any) -> None:
    """Raise EkyaError naming the first profiler option whose value is not allowed, and what is."""
    for key, value in options.items():
        allowed, words = _OPTIONS[key]
        if not allowed(value):
            raise EkyaError(f"profiler.{key} must be {words}, got {value!r}")


class MicroProfiler:
    """Short trials per config family; curve-fit extrapolation; pruning across windows."""

    def __init__(self, sample_fraction: float = 0.1, epochs: int = 5, family: str = "optimus",
                 prune_every: int = 2, prune_fraction: float = 0.25, min_configs: int = 3,
                 trial_share: float = 0.5, profiling_fraction: float = 0.5, val_samples: int = 64,
                 reuse_windows: int = 1, reuse_drift: float = 0.0, fleet_trials: bool = False,
                 start_data: str = "all") -> None:
        _check_options(sample_fraction=sample_fraction, epochs=epochs, family=family, prune_fraction=prune_fraction,
                       min_configs=min_configs, trial_share=trial_share, profiling_fraction=profiling_fraction,
                       val_samples=val_samples, reuse_windows=reuse_windows, reuse_drift=reuse_drift,
                       start_data=start_data)
        self.sample_fraction, self.epochs, self.family = float(sample_fraction), int(epochs), str(family)
        self.prune_every, self.prune_fraction = int(prune_every), float(prune_fraction)
        self.min_configs = int(min_configs)
        self.trial_share, self.profiling_fraction = float(trial_share), float(profiling_fraction)
        self.val_samples = int(val_samples)
        self.reuse_windows, self.reuse_drift = int(reuse_windows), float(reuse_drift)
        self.fleet_trials, self.start_data = bool(fleet_trials), str(start_data)
        self.active: dict[str, list[str]] = {}
        self.profiled_windows: dict[str, int] = {}
        self.trials: dict[str, dict[tuple, Trial]] = {}

    # -- state kept across windows (pruning, trial reuse) --------------------------------------

    def state(self) -> dict[str, Any]:
        """Picklable pruning and trial-reuse state, for resumable runs."""
        return {"active": {k: list(v) for k, v in self.active.items()}, "profiled": dict(self.profiled_windows),
                "trials": {k: dict(v) for k, v in self.trials.items()}}

    def restore(self, state: Mapping[str, Any] | None) -> None:
        """Restore the state saved by ``state``."""
        if state:
            self.active = {k: list(v) for k, v in state["active"].items()}
            self.profiled_windows = dict(state["profiled"])
            self.trials = {k: dict(v) for k, v in state.get("trials", {}).items()}

    def reusable(self, stream: str, family: tuple, index: int, start: float) -> Trial | None:
        """The earlier trial of a family (the stream's, or the fleet's) if it may still serve window ``index``."""
        old = self.trials.get(self._owner(stream), {}).get(family)
        if old is None or not 0 <= index - old.window < self.reuse_windows:
            return None
        # A fleet trial serves cameras of every accuracy by design (see _predict): no drift check.
        return old if self.fleet_trials or abs(start - old.start) <= self.reuse_drift else None

    def _owner(self, stream: str) -> str:
        """Whose trials serve ``stream``: its own, or with fleet_trials the fleet's."""
        return FLEET if self.fleet_trials else stream

    def candidates(self, stream: str, space: Mapping[str, RetrainConfig]) -> list[str]:
        """The configs still considered for a stream (all of them until pruning starts)."""
        return [c for c in self.active.get(stream, list(space)) if c in space]

    def _prune(self, stream: str, profile: StreamProfile) -> None:
        n_done = self.profiled_windows.get(stream, 0) + 1
        self.profiled_windows[stream] = n_done
        names = [c.config for c in profile.configs]
        if self.prune_every <= 0 or n_done % self.prune_every or len(names) <= self.min_configs:
            self.active.setdefault(stream, names)
            return
        acc = np.array([c.accuracy for c in profile.configs])
        cost = np.array([c.cost for c in profile.configs])
        gap = pareto_gap(acc, cost)
        n_drop = min(int(math.floor(self.prune_fraction * len(names))), len(names) - self.min_configs)
        # Drop the configs farthest from the accuracy-cost frontier; ties broken by higher cost.
        worst = set(sorted(range(len(names)), key=lambda i: (-gap[i], -cost[i], names[i]))[:max(n_drop, 0)])
        self.active[stream] = [n for i, n in enumerate(names) if i not in worst]

    # -- the trial -----------------------------------------------------------------------------

    def _slots(self, accelerators: int) -> int:
        return max(1, int(math.floor(accelerators * self.profiling_fraction / self.trial_share + 1e-9)))

    def wall_seconds(self, cost: float, accelerators: int, train_rate: Callable[[float], float]) -> float:
        """Virtual seconds the window's trials take: they share profiling_fraction of the accelerators."""
        if cost <= 0:
            return 0.0
        return cost / (self._slots(accelerators) * float(train_rate(self.trial_share)))

    def held_fraction(self, accelerators: int) -> float:
        """The fraction of the accelerators the trials hold while they run (inference gets the rest)."""
        return min(1.0, self._slots(accelerators) * self.trial_share / accelerators)

    def _trial(self, fam: tuple, base: RetrainConfig, learner: Any, model: Any, window: Any, trial_val: Any,
               stream_set: Any, seed: int, gflops: float, start: float, n_train: int, n_val: int,
               index: int) -> Trial:
        """Train one family briefly on a uniform sample; its curve in passes over the full pool."""
        params = {**base.params, "epochs": self.epochs, "data_fraction": self.sample_fraction}
        trial_cfg = RetrainConfig(f"{base.name}@micro", params)
        _, report = learner.retrain(model, trial_cfg, window.train, trial_val, stream_set, seed)
        # Progress in passes over the full pool: the trial saw sample_fraction of it per epoch.
        frac = report.train_samples / max(n_train, 1)
        x = np.arange(1, len(report.val_acc) + 1) * frac
        y = np.asarray(report.val_acc, dtype=float)
        served = float(getattr(report, "val_accuracy", math.nan))
        if math.isfinite(served) and len(y):
            # The model serves by another rule than the one scoring the epochs (iCaRL: class means
            # vs its head): the curve is moved by the gap the trial measured on its returned model.
            y = np.clip(y + (served - float(y.max())), 0.0, 1.0)
        counts = [max(int(report.val_samples), 1)] * len(y)
        keeps_head = getattr(model, "hidden", None) == params.get("hidden", getattr(model, "hidden", None))
        if keeps_head and not report.from_scratch:
            # The start point: the deployed model on the whole validation set, before any training.
            x, y = np.concatenate([[0.0], x]), np.concatenate([[start], y])
            counts = [max(n_val, 1)] + counts
        return Trial(fam, tuple(x.tolist()), tuple(y.tolist()), report.train_flops / (gflops * 1e9),
                     start=start, window=index, counts=tuple(counts), pass_flops=tuple(report.pass_flops),
                     extra_train_samples=int(getattr(report, "extra_train_samples", 0)),
                     extra_overlap=float(getattr(report, "extra_overlap", 0.0)),
                     train_once_flops=float(getattr(report, "train_once_flops", 0.0)),
                     val_once_flops=float(getattr(report, "val_once_flops", 0.0)),
                     fixed_flops=float(getattr(report, "fixed_flops", 0.0)))

    def _predict(self, stream: str, trial: Trial, start: float, members: Mapping[str, RetrainConfig], n_train: int,
                 n_val: int, gflops: float, notes: list[str]) -> list[ConfigProfile]:
        """Each member config's accuracy read off the trial's fitted curve, and its cost from the measured work."""
        x = np.asarray(trial.progress, dtype=float)
        y = np.asarray(trial.val_acc, dtype=float)
        weights = np.asarray(trial.counts, dtype=float) if trial.counts else None
        once, per_train, per_val = trial.pass_flops
        out = []
        for n, config in members.items():
            e, f = int(config.params.get("epochs", 1)), float(config.params.get("data_fraction", 1.0))
            fit = fit_curve(x, y, self.family, weights=weights, horizon=e * f)
            if fit.fallback:
                notes.append(f"{stream}/{n}: {fit.note}; using the conservative estimate {fit.params[0]:.3f}")
                log.info("micro-profiling %s/%s: %s; using the conservative estimate", stream, n, fit.note)
            # the job serves its best epoch by validation, so it reaches the curve's best over its epochs
            reached = float(np.max(fit.predict(np.arange(1, e + 1) * f)))
            acc = transfer(reached, trial.start, start)
            n_tr = max(1, int(round(f * n_train)))
            # Samples trained per epoch: the window's share plus the learner's extra ones, each once.
            n_job = n_tr + trial.extra_train_samples - trial.extra_overlap * n_tr
            # The full job validates on the whole validation set every epoch.
            flops = (trial.fixed_flops + once * (n_job + n_val) + trial.train_once_flops * n_job
                     + trial.val_once_flops * n_val + e * (per_train * n_job + per_val * n_val))
            out.append(ConfigProfile(n, acc, flops / (gflops * 1e9)))
        return out

    def measure_start(self, learner: Any, model: Any, window: Any, stream_set: Any, gflops: float,
                      newest: tuple[Any, int] | None = None) -> tuple[float, float, Any]:
        """(the deployed model's accuracy on the start set, what measuring it cost, the start set).

        newest: (the newest labelled samples the deployed model never trained on, how many of them it
        served itself) as the runtime knows them; with start_data=newest they are the start set, and
        the samples the model served cost nothing (inference already classified them, the teacher's
        labels score it). Otherwise (start_data=all, or no newest data given) the whole validation set.
        """
        data, free = (window.val, 0) if self.start_data == "all" or newest is None else newest
        start = float(learner.evaluate(model, data, stream_set, teacher=True))
        # Every other sample is one inference pass of the deployed model: charged.
        return start, max(len(data) - int(free), 0) * float(learner.forward_flops(model)) / (gflops * 1e9), data

    def _trial_val(self, data: Any, seed: int) -> Any:
        """The trial validates every epoch on a uniform subsample of the start set (val_samples of it)."""
        if 0 < self.val_samples < len(data):
            rng = np.random.default_rng(seed)
            return data.iloc[np.sort(rng.choice(len(data), self.val_samples, replace=False))]
        return data

    def profile(self, stream: str, learner: Any, model: Any, window: Any, stream_set: Any,
                space: Mapping[str, RetrainConfig], seed: int, gflops: float,
                every_config: bool = False, newest: tuple[Any, int] | None = None,
                measured: tuple[float, float, Any] | None = None) -> StreamPrediction:
        """Trial each family of the stream's candidate configs (or reuse a trial) and predict every candidate.

        every_config: predict the whole space and leave the pruning and reuse state alone (profiling
        mode: it reads reusable trials, so it predicts what the scheduler was told).
        newest: see ``measure_start``; measured: the start accuracy, its cost and start set, when the
        caller measured them already.
        """
        names = list(space) if every_config else self.candidates(stream, space)
        start, spent, data = measured or self.measure_start(learner, model, window, stream_set, gflops, newest)
        families: dict[tuple, list[str]] = {}
        for n in names:
            families.setdefault(family_of(space[n]), []).append(n)
        configs: list[ConfigProfile] = []
        trials: list[Trial] = []
        notes: list[str] = []
        n_train = int((window.train["teacher_label"] >= 0).sum())
        n_val = int((window.val["teacher_label"] >= 0).sum())
        trial_val = self._trial_val(data, seed)
        index = int(window.index)
        for fam, members in families.items():
            trial = self.reusable(stream, fam, index, start)
            if trial is None:
                trial = self._trial(fam, space[members[0]], learner, model, window, trial_val, stream_set, seed,
                                    gflops, start, n_train, len(data), index)
                if not every_config:
                    self.trials.setdefault(self._owner(stream), {})[fam] = trial
                trials.append(trial)
            else:
                trials.append(dataclasses.replace(trial, cost=0.0, reused=True))
            spent += trials[-1].cost
            configs += self._predict(stream, trial, start, {n: space[n] for n in members}, n_train, n_val, gflops,
                                     notes)
        order = {n: i for i, n in enumerate(names)}
        configs.sort(key=lambda c: order[c.config])
        profile = StreamProfile(stream, start, tuple(configs))
        if not every_config:
            self._prune(stream, profile)
        return StreamPrediction(profile, spent, trials, notes)

    def profile_fleet(self, cameras: Mapping[str, tuple[Any, Any]], learner: Any, stream_set: Any,
                      space: Mapping[str, RetrainConfig], seed_of: Callable[[str], int], gflops: float,
                      newest: Mapping[str, tuple[Any, int]] | None = None) -> dict[str, StreamPrediction]:
        """Every camera's prediction for one window (cameras: name -> (deployed model, window); newest: per
        camera, see ``measure_start``).

        With fleet_trials, each family needing a fresh trial is trialled once, on the camera whose
        deployed model is furthest behind its labelled data (the lowest start accuracy: the most
        to learn from), and the trial serves every camera (``transfer``); its cost is that camera's.
        """
        if not self.fleet_trials:
            return {cam: self.profile(cam, learner, model, window, stream_set, space, seed_of(cam), gflops,
                                      newest=(newest or {}).get(cam)) for cam, (model, window) in cameras.items()}
        measured = {cam: self.measure_start(learner, model, window, stream_set, gflops, (newest or {}).get(cam))
                    for cam, (model, window) in cameras.items()}
        fresh: dict[str, list[Trial]] = {}
        for fam in dict.fromkeys(family_of(space[n]) for cam in cameras for n in self.candidates(cam, space)):
            users = [cam for cam in cameras if any(family_of(space[n]) == fam for n in self.candidates(cam, space))]
            index = int(cameras[users[0]][1].index)
            if self.reusable(users[0], fam, index, measured[users[0]][0]) is not None:
                continue
            cam = min(users, key=lambda c: (measured[c][0], c))
            model, window = cameras[cam]
            base = space[next(n for n in self.candidates(cam, space) if family_of(space[n]) == fam)]
            n_train = int((window.train["teacher_label"] >= 0).sum())
            trial = self._trial(fam, base, learner, model, window, self._trial_val(measured[cam][2], seed_of(cam)),
                                stream_set, seed_of(cam), gflops, measured[cam][0], n_train, len(measured[cam][2]),
                                index)
            self.trials.setdefault(FLEET, {})[fam] = trial
            fresh.setdefault(cam, []).append(trial)
        out = {}
        for cam, (model, window) in cameras.items():
            pred = self.profile(cam, learner, model, window, stream_set, space, seed_of(cam), gflops,
                                measured=measured[cam])
            mine = fresh.get(cam, [])
            if mine:  # the trials run here this window: charged here, shown as run (not reused)
                ran = {t.family for t in mine}
                pred.trials = [t for t in pred.trials if t.family not in ran] + mine
                pred.cost += sum(t.cost for t in mine)
            out[cam] = pred
        return out
