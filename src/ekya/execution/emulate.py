"""The emulate runtime: real retraining and real inference accuracy, on a virtual clock.

Per window: the scheduler plans from what it may know at the window start (teacher-labelled
validation accuracy; micro-profiled predictions when it needs them, whose own cost delays the
window's retraining and takes accelerator share from inference while the trials run); the chosen
configs are retrained for real; a job's duration is the FLOPs it really computed divided by the
emulated accelerator's rate and the throughput curve at its share, times a seeded noise factor
(``runtime.cost_noise``) as real hardware is never predicted exactly; ``plans.simulate.play_window``
then plays the window with the measured accuracies (re-planning at every completion and at every
segment boundary), so emulate and simulate share one accuracy model. Each model is scored on the
live samples of the time it serves: the window is cut into ``window.segments`` equal segments.
Re-planning learns only what a deployed system knows: the new model's validation accuracy. Nothing
depends on wall time, so the same seed gives the same numbers on any machine.

With ``runtime.profile_all`` every config is also trained fully on every camera and window, and
the run writes the simulator's profile format (truth and micro-profiled predictions) plus
``profiling.csv``: per (window, camera, config) the prediction next to what full training reached,
on held-out data of the pool it trained on (what the micro-profiler estimates) and on live data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from ekya.errors import EkyaError
from ekya.execution.runtime import Runtime
from ekya.execution.scoring import segment_accuracies
from ekya.learners.learner import load_checkpoint, save_checkpoint
from ekya.seeds import derive_seed
from ekya.plans.budget import budget_from_config
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.simulate import play_window, segment_boundaries
from ekya.plans.types import Budget
from ekya.profiles.configspace import check_config_name, load_configspace
from ekya.profiles.types import ConfigProfile, ProfileSet, StreamProfile
from ekya.results.records import WindowRecord
from ekya.streams.windows import cut_windows

log = logging.getLogger("ekya.emulate")


def accelerator_seconds(train_flops: float, gflops: float) -> float:
    """Accelerator-seconds at a full share for the FLOPs a job computed on the emulated accelerator."""
    return float(train_flops) / (float(gflops) * 1e9)


class EmulateRuntime(Runtime):
    """Continuous learning with real models on the virtual clock."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.seed = int(cfg.seed)
        self.gflops = float(cfg.runtime.accelerator_gflops)
        if self.gflops <= 0:
            raise EkyaError(f"runtime.accelerator_gflops must be > 0, got {cfg.runtime.accelerator_gflops}")
        self.cost_noise = float(cfg.runtime.get("cost_noise", 0.0))
        if not (self.cost_noise >= 0 and math.isfinite(self.cost_noise)):
            raise EkyaError(f"runtime.cost_noise must be a number >= 0 (0 = costs exactly as measured), "
                            f"got {cfg.runtime.cost_noise}")
        self.segments = int(cfg.window.get("segments", 1))
        if self.segments < 1:
            raise EkyaError(f"window.segments must be an integer >= 1 (1 = score each model on the whole "
                            f"window), got {cfg.window.segments}")
        self.budget = budget_from_config(OmegaConf.to_container(cfg.cluster, resolve=True),
                                         window=float(cfg.window.seconds), label_delay=float(cfg.window.label_delay))
        self.space = load_configspace(OmegaConf.to_container(cfg.configspace, resolve=True))
        self.scheduler: Scheduler = instantiate(cfg.scheduler)
        check_config_name(getattr(self.scheduler, "config", None), self.space, "scheduler.config")
        self.profile_all = bool(cfg.runtime.get("profile_all", False))
        self.profiler = instantiate(cfg.profiler) if (self.scheduler.needs_profiles or self.profile_all) else None
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
        # profile_all: per window, (truth, predicted) stream profiles of every config, and the
        # fully trained configs' accuracy on held-out data of their training pool
        self.profiled: dict[int, tuple[list[StreamProfile], list[StreamProfile]]] = {}
        self.profiled_val: dict[int, dict[tuple[str, str], float]] = {}

    def describe(self) -> dict[str, str]:
        """Tags for the tracking store."""
        return {"scheduler": self.scheduler.name, "accelerators": str(self.budget.accelerators)}

    def setup(self, saved: Any | None) -> None:
        """Train (or restore) each camera's base model on its bootstrap window."""
        if saved is not None:
            self.models, self.base = saved["models"], saved["base"]
            self.profiled = saved.get("profiled", {})
            self.profiled_val = saved.get("profiled_val", {})
            if self.profiler is not None:
                self.profiler.restore(saved.get("profiler"))
            return
        for cam in tqdm(self.streams, desc="base models", unit="camera", leave=False):
            model = self._base_model(cam)
            self.base[cam] = model
            self.models[cam] = model

    def _base_model(self, cam: str) -> torch.nn.Module:
        """Train a camera's base model, or load it from ``runtime.base_cache`` where the same one was trained.

        The cache key covers everything that shapes the base model (dataset, teacher, learner,
        windows, seed), so runs that differ only in scheduler, cluster or profiler share it; a
        loaded model has exactly the trained one's weights, so the numbers do not change.
        """
        path = self._base_cache_path(cam)
        if path is not None and path.is_file():
            return load_checkpoint(path, len(self.stream_set.classes))
        model = self.learner.base_model(self.stream_set, self.windows_of[cam][0], derive_seed(self.seed, "base", cam))
        if path is not None:
            save_checkpoint(model, path)
        return model

    def _base_cache_path(self, cam: str) -> Path | None:
        root = self.cfg.runtime.get("base_cache")
        if not root:
            return None
        shaping = {key: OmegaConf.to_container(self.cfg[key], resolve=True) for key in ("dataset", "learner", "window")}
        blob = json.dumps({**shaping, "seed": self.seed, "camera": cam}, sort_keys=True, default=str)
        return Path(str(root)) / f"{cam}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"

    def snapshot(self) -> Any:
        """Current and base models of every camera, the profiler's pruning state, profiles so far."""
        return {"models": dict(self.models), "base": dict(self.base), "profiled": dict(self.profiled),
                "profiled_val": dict(self.profiled_val),
                "profiler": self.profiler.state() if self.profiler is not None else None}

    # -- what the scheduler is told --------------------------------------------------------------

    def _told(self, k: int) -> tuple[list[StreamProfile], dict[str, float]]:
        """Profiles the scheduler plans with, and the micro-profiling cost spent per stream."""
        out, spent, notes = [], {}, []
        for cam in self.streams:
            w = self.windows_of[cam][k]
            if self.scheduler.needs_profiles:
                pred = self.profiler.profile(cam, self.learner, self.models[cam], w, self.stream_set, self.space,
                                             derive_seed(self.seed, "micro", k, cam), self.gflops)
                out.append(pred.profile)
                spent[cam] = pred.cost
                notes += pred.notes
            else:
                start = self.learner.evaluate(self.models[cam], w.val, self.stream_set, teacher=True)
                out.append(StreamProfile(cam, start, tuple(ConfigProfile(n, math.nan, math.nan) for n in self.space)))
                spent[cam] = 0.0
        if notes:
            n = sum(len(p.configs) for p in out)
            log.warning("window %d: %d of %d micro-profiling fits fell back to the conservative estimate "
                        "(best accuracy observed); e.g. %s", k, len(notes), n, notes[0])
        return out, spent

    def _window_budget(self, profiling_cost: float) -> Budget:
        """The budget left after micro-profiling: retraining waits for it, inference shares with it."""
        if profiling_cost <= 0:
            return self.budget
        t = self.profiler.wall_seconds(profiling_cost, self.budget.accelerators, self.budget.train_rate)
        delay = min(self.budget.window, self.budget.label_delay + t)
        if delay >= self.budget.window:
            log.warning("micro-profiling takes %.1f s of the %.0f s window: no time is left to retrain",
                        t, self.budget.window)
        return dataclasses.replace(self.budget, label_delay=delay, profiling_seconds=delay - self.budget.label_delay,
                                   profiling_fraction=self.profiler.held_fraction(self.budget.accelerators))

    # -- one window --------------------------------------------------------------------------------

    def _live(self, cam: str, model: torch.nn.Module, k: int) -> tuple[float, tuple[float, ...]]:
        """A model's accuracy on window k's live samples, overall and per time segment."""
        test = self.windows_of[cam][k].test
        correct, keep = self.learner.hits(model, test, self.stream_set)
        T = self.budget.window
        return segment_accuracies(correct, test["timestamp"].to_numpy()[keep], k * T, T, self.segments)

    def _cost_factor(self, k: int, cam: str, config: str) -> float:
        """Realised over measured cost of one job: seeded lognormal noise with mean 1 (1.0 without noise)."""
        if self.cost_noise <= 0:
            return 1.0
        z = np.random.default_rng(derive_seed(self.seed, "cost_noise", k, cam, config)).standard_normal()
        return float(math.exp(self.cost_noise * z - self.cost_noise ** 2 / 2))

    def _retrain(self, cam: str, config: str, k: int, start: torch.nn.Module) -> tuple[torch.nn.Module, ConfigProfile]:
        """Retrain a camera's model with one config: the model and what really happened (live, val, cost)."""
        w = self.windows_of[cam][k]
        model, report = self.learner.retrain(start, self.space[config], w.train, w.val,
                                             self.stream_set, derive_seed(self.seed, "retrain", k, cam, config))
        acc, segs = self._live(cam, model, k)
        cost = accelerator_seconds(report.train_flops, self.gflops) * self._cost_factor(k, cam, config)
        # the best epoch's validation accuracy is the model's own (its weights were restored)
        seen = max(report.val_acc) if report.val_acc else math.nan
        return model, ConfigProfile(config, acc, cost, segs, seen)

    def play(self, window: int) -> list[WindowRecord]:
        """Plan, retrain for real, and play one window on the virtual clock."""
        k = window
        self.models_at_start = dict(self.models)
        told, spent = self._told(k)
        budget = self._window_budget(sum(spent.values()))
        self.scheduler.start_window(k)
        t0 = time.perf_counter()
        plan = self.scheduler.plan(told, budget)
        sched_s = time.perf_counter() - t0

        truths, new_models, done_jobs, starts = [], {}, {}, {}
        for sp in tqdm(plan.streams, desc=f"window {k}", unit="job", leave=False):
            cam = sp.stream
            starts[cam], segs = self._live(cam, self.models[cam], k)
            if sp.config is None:
                truths.append(StreamProfile(cam, starts[cam], (), segs))
                continue
            new_models[cam], done_jobs[cam] = self._retrain(cam, sp.config, k, self.models[cam])
            truths.append(StreamProfile(cam, starts[cam], (done_jobs[cam],), segs))
        outcome = play_window(plan, truths, budget, self.scheduler, predicted=told,
                              checks=segment_boundaries(self.budget.window, self.segments))

        # The reference: base models, no retraining, an even split of the accelerators.
        base_truth = []
        for cam in self.streams:
            acc, segs = self._live(cam, self.base[cam], k)
            base_truth.append(StreamProfile(cam, acc, (), segs))
        ref = NoRetrainScheduler()
        ref_outcome = play_window(ref.plan(base_truth, self.budget), base_truth, self.budget, ref)

        if self.profile_all:
            self._profile_all(k, starts, told if self.scheduler.needs_profiles else None)

        records = []
        by_plan, told_of = plan.by_stream(), {p.stream: p for p in told}
        for cam in self.streams:
            sp, res = by_plan[cam], outcome.streams[cam]
            done = res.completion_time is not None
            if done:
                self.models[cam] = new_models[cam]
            end_acc = done_jobs[cam].accuracy if done else starts[cam]
            if not bool(self.cfg.window.carry_over):
                self.models[cam] = self.base[cam]
            pred_cost = told_of[cam].config(sp.config).cost if sp.config else math.nan
            records.append(WindowRecord(
                window=k, stream=cam, config=sp.config or "none", infer_share=sp.infer_share,
                train_share=sp.train_share, accuracy=res.accuracy,
                noretrain_accuracy=ref_outcome.streams[cam].accuracy, predicted_accuracy=sp.predicted_accuracy,
                start_accuracy=starts[cam], end_accuracy=end_acc,
                retrain_cost=done_jobs[cam].cost if cam in done_jobs else 0.0,
                completion_time=res.completion_time if done else math.nan, scheduler_seconds=sched_s,
                predicted_cost=pred_cost, profiling_cost=spent[cam],
            ))
        return records

    # -- profiling mode ------------------------------------------------------------------------------

    def _profile_all(self, k: int, starts: dict[str, float], told: list[StreamProfile] | None) -> None:
        """Train every config fully on every camera (truth) next to the micro-profiled predictions."""
        truth, predicted, val = [], [], {}
        pred_of = {p.stream: p for p in told} if told is not None else {}
        for cam in tqdm(self.streams, desc=f"profiling window {k}", unit="camera", leave=False):
            configs = []
            for name in self.space:
                model, job = self._retrain(cam, name, k, self.models_at_start[cam])
                configs.append(ConfigProfile(name, job.accuracy, job.cost))
                val[(cam, name)] = self.learner.evaluate(model, self.windows_of[cam][k].val, self.stream_set,
                                                         teacher=True)
            truth.append(StreamProfile(cam, starts[cam], tuple(configs)))
            pred = pred_of.get(cam)
            if pred is None or len(pred.configs) < len(self.space):
                pred = self.profiler.profile(cam, self.learner, self.models_at_start[cam], self.windows_of[cam][k],
                                             self.stream_set, self.space, derive_seed(self.seed, "micro", k, cam),
                                             self.gflops, every_config=True).profile
            predicted.append(pred)
        self.profiled[k] = (truth, predicted)
        self.profiled_val[k] = val

    def finish(self, run_dir: Path) -> list[Path]:
        """In profiling mode, write the profile set (simulator format) and the prediction-vs-truth table."""
        if not self.profile_all or not self.profiled:
            return []
        import pandas as pd

        from ekya.profiles.io import write_profiles

        ks = sorted(self.profiled)
        ps = ProfileSet(truth=tuple(tuple(self.profiled[k][0]) for k in ks),
                        predicted=tuple(tuple(self.profiled[k][1]) for k in ks),
                        window_ids=tuple(str(k) for k in ks),
                        config_params={n: dict(c.params) for n, c in self.space.items()})
        path = Path(run_dir) / "profiles.json"
        write_profiles(path, ps)
        rows = []
        for k in ks:
            truth, predicted = self.profiled[k]
            for t, p in zip(truth, predicted):
                for tc in t.configs:
                    pc = p.config(tc.config)
                    rows.append({"window": k, "stream": t.stream, "config": tc.config,
                                 "predicted_accuracy": pc.accuracy,
                                 "val_accuracy": self.profiled_val[k][(t.stream, tc.config)],
                                 "live_accuracy": tc.accuracy, "predicted_cost": pc.cost, "cost": tc.cost,
                                 "start_val_accuracy": p.start_accuracy, "start_live_accuracy": t.start_accuracy})
        table = Path(run_dir) / "profiling.csv"
        tmp = table.with_name(table.name + ".tmp")
        pd.DataFrame(rows).to_csv(tmp, index=False)
        tmp.replace(table)
        return [path, table]
