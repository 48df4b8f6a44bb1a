"""The emulate runtime: real retraining and real inference accuracy, on a virtual clock.

Per window: every stream's current model is measured on the window's live data; the scheduler
plans from what it may know (teacher-labelled validation accuracy, predicted costs); the chosen
configs are retrained for real; a job's duration is the FLOPs it really computed divided by the
emulated accelerator's rate and the throughput curve at its share; ``plans.simulate.play_window``
then plays the window with the measured accuracies, so emulate and simulate share one accuracy model.
Nothing depends on wall time, so the same seed gives the same numbers on any machine.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from ekya.errors import EkyaError
from ekya.execution.runtime import Runtime
from ekya.execution.seeds import derive_seed
from ekya.plans.budget import budget_from_config
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.simulate import play_window
from ekya.profiles.configspace import check_config_name, load_configspace
from ekya.profiles.types import ConfigProfile, StreamProfile
from ekya.results.records import WindowRecord
from ekya.streams.windows import cut_windows


def accelerator_seconds(train_flops: float, gflops: float) -> float:
    """Accelerator-seconds at a full share for the FLOPs a job computed on the emulated accelerator."""
    return float(train_flops) / (float(gflops) * 1e9)


class EmulateRuntime(Runtime):
    """Continuous learning with real models on the virtual clock."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.seed = int(cfg.seed)
        if float(cfg.runtime.accelerator_gflops) <= 0:
            raise EkyaError(f"runtime.accelerator_gflops must be > 0, got {cfg.runtime.accelerator_gflops}")
        self.budget = budget_from_config(OmegaConf.to_container(cfg.cluster, resolve=True),
                                         window=float(cfg.window.seconds), label_delay=float(cfg.window.label_delay))
        self.space = load_configspace(OmegaConf.to_container(cfg.configspace, resolve=True))
        self.scheduler: Scheduler = instantiate(cfg.scheduler)
        check_config_name(getattr(self.scheduler, "config", None), self.space, "scheduler.config")
        torch.set_num_threads(int(cfg.runtime.num_threads))
        self.stream_set = instantiate(cfg.dataset)
        self.learner = instantiate(cfg.learner)
        self.streams = self.stream_set.cameras
        self.windows_of = {
            cam: cut_windows(self.stream_set.camera(cam), cfg.dataset.windows, float(cfg.window.seconds),
                             history_weight=float(cfg.window.history_weight),
                             val_fraction=float(cfg.window.val_fraction), seed=derive_seed(self.seed, "split", cam))
            for cam in self.streams
        }
        self.windows = list(range(1, len(next(iter(self.windows_of.values())))))
        self.models: dict[str, torch.nn.Module] = {}
        self.base: dict[str, torch.nn.Module] = {}

    def describe(self) -> dict[str, str]:
        """Tags for the tracking store."""
        return {"scheduler": self.scheduler.name, "accelerators": str(self.budget.accelerators)}

    def setup(self, saved: Any | None) -> None:
        """Train (or restore) each camera's base model on its bootstrap window."""
        if saved is not None:
            self.models, self.base = saved["models"], saved["base"]
            return
        for cam in tqdm(self.streams, desc="base models", unit="camera", leave=False):
            model = self.learner.base_model(self.stream_set, self.windows_of[cam][0], derive_seed(self.seed, "base", cam))
            self.base[cam] = model
            self.models[cam] = model

    def snapshot(self) -> Any:
        """Current and base models of every camera."""
        return {"models": dict(self.models), "base": dict(self.base)}

    def _profiles(self, k: int) -> list[StreamProfile]:
        """What the scheduler may know at the window start: validation accuracy (teacher labels)."""
        out = []
        for cam in self.streams:
            w = self.windows_of[cam][k]
            start = self.learner.evaluate(self.models[cam], w.val, self.stream_set, teacher=True)
            configs = tuple(ConfigProfile(name, math.nan, math.nan) for name in self.space)
            out.append(StreamProfile(cam, start, configs))
        return out

    def play(self, window: int) -> list[WindowRecord]:
        """Plan, retrain for real, and play one window on the virtual clock."""
        k = window
        profiles = self._profiles(k)
        self.scheduler.start_window(k)
        t0 = time.perf_counter()
        plan = self.scheduler.plan(profiles, self.budget)
        sched_s = time.perf_counter() - t0

        truths, new_models, costs, starts, finals = [], {}, {}, {}, {}
        jobs = tqdm(plan.streams, desc=f"window {k}", unit="job", leave=False)
        for sp in jobs:
            cam = sp.stream
            w = self.windows_of[cam][k]
            starts[cam] = self.learner.evaluate(self.models[cam], w.test, self.stream_set)
            if sp.config is None:
                truths.append(StreamProfile(cam, starts[cam], ()))
                continue
            model, report = self.learner.retrain(self.models[cam], self.space[sp.config], w.train, w.val,
                                                 self.stream_set, derive_seed(self.seed, "retrain", k, cam))
            new_models[cam] = model
            costs[cam] = accelerator_seconds(report.train_flops, float(self.cfg.runtime.accelerator_gflops))
            finals[cam] = self.learner.evaluate(model, w.test, self.stream_set)
            truths.append(StreamProfile(cam, starts[cam], (ConfigProfile(sp.config, finals[cam], costs[cam]),)))
        outcome = play_window(plan, truths, self.budget, self.scheduler)

        # The reference: base models, no retraining, an even split of the accelerators.
        base_truth = [StreamProfile(cam, self.learner.evaluate(self.base[cam], self.windows_of[cam][k].test,
                                                               self.stream_set), ()) for cam in self.streams]
        ref = NoRetrainScheduler()
        ref_outcome = play_window(ref.plan(base_truth, self.budget), base_truth, self.budget, ref)

        records = []
        by_plan = plan.by_stream()
        for cam in self.streams:
            sp, res = by_plan[cam], outcome.streams[cam]
            done = res.completion_time is not None
            if done:
                self.models[cam] = new_models[cam]
            end_acc = finals[cam] if done else starts[cam]
            if not bool(self.cfg.window.carry_over):
                self.models[cam] = self.base[cam]
            records.append(WindowRecord(
                window=k, stream=cam, config=sp.config or "none", infer_share=sp.infer_share,
                train_share=sp.train_share, accuracy=res.accuracy,
                noretrain_accuracy=ref_outcome.streams[cam].accuracy, predicted_accuracy=sp.predicted_accuracy,
                start_accuracy=starts[cam], end_accuracy=end_acc, retrain_cost=costs.get(cam, 0.0),
                completion_time=res.completion_time if done else math.nan, scheduler_seconds=sched_s,
            ))
        return records
