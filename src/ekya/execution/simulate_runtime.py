"""The simulate runtime: no training; schedulers are played on a profile set, window by window."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ekya.errors import EkyaError
from ekya.execution.runtime import Runtime
from ekya.execution.simulate import simulate
from ekya.plans.budget import budget_from_config
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.simulate import segment_boundaries
from ekya.profiles.configspace import load_configspace
from ekya.profiles.types import ProfileSet
from ekya.results.records import WindowRecord


def load_profile_set(rt: DictConfig, seed: int, space: dict[str, dict] | None = None) -> ProfileSet:
    """The profile set named by runtime.profiles (ours or the original's), or a synthetic one over ``space``."""
    if rt.get("profiles") in (None, ""):
        from ekya.profiles.synthetic import generate

        s = rt.synthetic
        return generate(streams=int(s.streams), windows=int(s.windows), seed=seed, pred_noise=float(s.noise),
                        n_configs=None if s.get("configs") is None else int(s.configs), space=space)
    path = Path(str(rt.profiles))
    if not path.exists():
        raise EkyaError(f"runtime.profiles={path}: no such file or directory; pass a profile set written by "
                        "`python -m ekya runtime=profile` or the original's profile directory")
    if rt.get("format", "ekya") == "original":
        from ekya.profiles.original import read_original

        return read_original(path)
    from ekya.profiles.io import read_profiles

    return read_profiles(path)


class SimulateRuntime(Runtime):
    """Plays profile sets: thousands of camera-windows per second, no torch."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.budget = budget_from_config(OmegaConf.to_container(cfg.cluster, resolve=True),
                                         window=float(cfg.window.seconds), label_delay=float(cfg.window.label_delay))
        self.scheduler: Scheduler = instantiate(cfg.scheduler)
        space = load_configspace(OmegaConf.to_container(cfg.configspace, resolve=True))
        self.profile_set = load_profile_set(cfg.runtime, int(cfg.seed), {n: dict(c.params) for n, c in space.items()})
        names = {c.config for p in self.profile_set.truth[0] for c in p.configs}
        wanted = getattr(self.scheduler, "config", None)
        if wanted is not None and wanted not in names:
            raise EkyaError(f"scheduler.config={wanted!r} is not in the profile set's configs {sorted(names)}; "
                            "pick one of them (scheduler.config=NAME)")
        self.streams = list(self.profile_set.streams)
        self.windows = list(range(self.profile_set.n_windows))
        self.use_predictions = bool(cfg.runtime.use_predictions)

    def describe(self) -> dict[str, str]:
        """Tags for the tracking store."""
        return {"scheduler": self.scheduler.name, "accelerators": str(self.budget.accelerators)}

    def setup(self, saved: Any | None) -> None:
        """Nothing carries between windows: each window starts from its profiled start accuracy."""

    def snapshot(self) -> Any:
        """No state to keep."""
        return None

    def play(self, window: int) -> list[WindowRecord]:
        """Schedule on predictions, score on the truth, and compare with no retraining."""
        checks = segment_boundaries(self.budget.window, int(self.cfg.window.get("segments", 1)))
        df = simulate(self.profile_set, self.scheduler, self.budget, [window], self.use_predictions, checks)
        ref = simulate(self.profile_set, NoRetrainScheduler(), self.budget, [window], False)
        ref_acc = dict(zip(ref["stream"], ref["accuracy"]))
        truth = {p.stream: p for p in self.profile_set.truth[window]}
        told = {p.stream: p for p in self.profile_set.predicted[window]}
        out = []
        for row in df.itertuples(index=False):
            t = truth[row.stream]
            done = not math.isnan(row.completion_time)
            cfg_true = t.config(row.config) if row.config != "none" else None
            cfg_told = told[row.stream].config(row.config) if row.config != "none" else None
            out.append(WindowRecord(
                window=window, stream=row.stream, config=row.config, infer_share=row.infer_share,
                train_share=row.train_share, accuracy=row.accuracy, noretrain_accuracy=ref_acc[row.stream],
                predicted_accuracy=row.predicted_acc, start_accuracy=t.start_accuracy,
                end_accuracy=cfg_true.accuracy if (done and cfg_true) else t.start_accuracy,
                retrain_cost=cfg_true.cost if cfg_true else 0.0, completion_time=row.completion_time,
                scheduler_seconds=row.scheduler_seconds, predicted_cost=cfg_told.cost if cfg_told else math.nan,
            ))
        return out
