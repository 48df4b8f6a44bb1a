"""Profiling mode: train every config fully on every camera and window, next to the micro-profiled predictions.

The run then writes the simulator's profile format (``profiles.json``: truth and predictions, so
``runtime=simulate runtime.profiles=<that file>`` replays the deployment without training) and
``profiling.csv``: per (window, camera, config) the prediction next to what full training reached,
on held-out data of the pool it trained on (what the micro-profiler estimates) and on live data.
It needs a runtime that trains for real (``runtime=emulate``): it runs every job through the run's
retraining service (``runtime.retraining``, ``ekya.execution.retraining``), from each camera's model at
the window's start, with the seed the run's own job would use. Enable it with ``callbacks=[default,profile_all]``.

When the run's scheduler keeps a model cache (scheduler=model_cache, or the thief with
cached_models=true), the cached models offered in each window are recorded too, as configs
``cache:...`` with cost 0, their live accuracy, their measured validation accuracy (which is also
what a scheduler is told) and their observables, next to the window's own observables; so
simulate can play model_cache and the thief with cached models from the profile set.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm.auto import tqdm

from ekya.atomic import atomic_write
from ekya.configspace import is_cached
from ekya.errors import EkyaError
from ekya.execution.hooks import Callback, RunContext
from ekya.execution.runtime import WindowResult
from ekya.profiles.io import write_profiles
from ekya.profiles.types import ConfigProfile, MeasuredUnder, ProfileSet, StreamProfile

if TYPE_CHECKING:  # annotations only: importing the callback loads no torch
    from ekya.execution.model_store import ModelStore
    from ekya.execution.retraining import RetrainingService


class ProfileAll(Callback):
    """After each window, every config's full training (truth) beside the profiler's predictions."""

    def __init__(self, profiles_file: str = "profiles.json", table_file: str = "profiling.csv") -> None:
        self.profiles_file, self.table_file = str(profiles_file), str(table_file)
        #: window -> (truth, predicted) stream profiles of every config
        self.profiled: dict[int, tuple[list[StreamProfile], list[StreamProfile]]] = {}
        #: window -> (camera, config) -> the fully trained model's accuracy on held-out data of its pool
        self.profiled_val: dict[int, dict[tuple[str, str], float]] = {}

    def on_run_start(self, run: RunContext) -> None:
        """Profiling mode trains for real: refuse runtimes that do not."""
        self._service(run)

    @staticmethod
    def _service(run: RunContext) -> RetrainingService:
        """The run's retraining service; EkyaError (one line) when its runtime trains nothing."""
        service = run.runtime.retraining
        if service is None:
            raise EkyaError("callbacks.profile_all trains every config for real: it needs runtime=emulate "
                            "(this run's runtime has no training); drop profile_all from callbacks")
        return service

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """Train every config from each camera's window-start model; predict every config where the plan did not."""
        service, store, k = self._service(run), run.runtime.model_store, result.window
        starts = {r.stream: r.start_accuracy for r in result.records}
        pred_of = {p.stream: p for p in result.told}
        truth, predicted, val = [], [], {}
        for cam in tqdm(service.cameras, desc=f"profiling window {k}", unit="camera", leave=False, disable=None):
            start_model = service.window_start[cam]
            configs = []
            for name in service.space:
                done = service.retrain(cam, name, k, start_model)
                configs.append(ConfigProfile(name, done.profile.accuracy, done.cost))
                val[(cam, name)] = service.val_accuracy(cam, done.model, k)
            pred = pred_of.get(cam)
            if pred is not None:  # the cached configs told are recorded below, from the store itself
                pred = replace(pred, configs=tuple(c for c in pred.configs if not is_cached(c.config)))
            if pred is None or len(pred.configs) < len(service.space):
                pred = service.micro_profile(cam, k, start_model, every_config=True).profile
            obs: dict[str, Any] = {}
            if store is not None:
                obs = store.observables(cam, k)
                cached_truth, cached_pred = self._cached(store, cam, val)
                configs += cached_truth
                pred = replace(pred, configs=pred.configs + tuple(cached_pred), observables=obs)
            truth.append(StreamProfile(cam, starts[cam], tuple(configs), observables=obs))
            predicted.append(pred)
        self.profiled[k] = (truth, predicted)
        self.profiled_val[k] = val

    @staticmethod
    def _cached(store: ModelStore, cam: str,
                val: dict[tuple[str, str], float]) -> tuple[list[ConfigProfile], list[ConfigProfile]]:
        """The truth and the prediction of every cached model offered to ``cam``; ``val`` gets their val accuracy."""
        cached_truth, cached_pred = [], []
        for c in store.offered[cam]:
            val[(cam, c.name)] = store.val_accuracy(cam, c)
            cached_truth.append(replace(store.truth(cam, c), segments=(), val_accuracy=val[(cam, c.name)]))
            cached_pred.append(ConfigProfile(c.name, val[(cam, c.name)], 0.0, observables=cached_truth[-1].observables))
        return cached_truth, cached_pred

    def on_run_end(self, run: RunContext) -> None:
        """Write the profile set (simulator format) and the prediction-vs-truth table; attach both."""
        if not self.profiled:
            return
        ks = sorted(self.profiled)
        ps = ProfileSet(truth=tuple(tuple(self.profiled[k][0]) for k in ks),
                        predicted=tuple(tuple(self.profiled[k][1]) for k in ks),
                        window_ids=tuple(str(k) for k in ks),
                        config_params={n: dict(c.params) for n, c in self._service(run).space.items()},
                        measured_under=MeasuredUnder(run.runtime.budget.window, run.runtime.budget.accelerators,
                                                     run.runtime.budget.delta))
        path = Path(run.run_dir) / self.profiles_file
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
        table = Path(run.run_dir) / self.table_file
        atomic_write(table, lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))
        run.artifacts += [path, table]

    def state(self) -> Any:
        """The profiles of the windows played so far."""
        return {"profiled": dict(self.profiled), "profiled_val": dict(self.profiled_val)}

    def restore(self, state: Any) -> None:
        """Take back the profiles of the windows played before the restart."""
        state = state or {}
        self.profiled = dict(state.get("profiled", {}))
        self.profiled_val = dict(state.get("profiled_val", {}))
