"""Each camera's base and serving model in a run that trains for real, and what is kept and measured on them.

``runtime=emulate`` and ``runtime=ray`` each hold one ``CameraModels``: it trains (or loads from
``runtime.base_cache``) every camera's base model on its bootstrap window, keeps the model serving
now, carries it over to the next window (or goes back to the base model, ``window.carry_over``),
scores the forgetting probes (``window.forgetting``), prices inference keep-up at the accelerator's
rate, and takes the snapshot a resumed run restores. Training, scoring and pricing go through the
run's ``RetrainingService``.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ekya.atomic import atomic_write
from ekya.execution.continual_eval import ProbeEvaluator
from ekya.execution.keep_up import keep_up_share, sample_rate, with_keep_up
from ekya.execution.retraining import RetrainingService
from ekya.plans.types import Budget
from ekya.results.continual import AccuracyMatrix
from ekya.seeds import derive_seed

log = logging.getLogger("ekya.models")


@dataclass
class CameraModels:
    """Every camera's base model and serving model, the base-model cache and the forgetting probes."""

    service: RetrainingService
    #: folder of trained base models (``runtime.base_cache``), None: train every one
    base_cache: Path | None
    #: everything that shapes a base model but the seed and the camera (the cache key)
    base_key: str
    #: forgetting measured (``window.forgetting``): every served model scored on every window's probe
    probes: ProbeEvaluator | None
    #: camera -> the model serving now
    serving: dict[str, torch.nn.Module] = field(default_factory=dict)
    #: camera -> its base model (trained on window 0)
    base: dict[str, torch.nn.Module] = field(default_factory=dict)

    @classmethod
    def for_service(cls, service: RetrainingService, base_cache: str | None = None,
                    base_key: str = "") -> CameraModels:
        """The models of a run trained by ``service`` (none trained yet: ``setup`` does it)."""
        probes = ProbeEvaluator(service.learner, service.stream_set, service.windows_of) \
            if service.settings.forgetting else None
        return cls(service, Path(str(base_cache)) if base_cache else None, str(base_key), probes)

    @property
    def cameras(self) -> list[str]:
        """The cameras, in the stream set's fixed order."""
        return self.service.cameras

    # -- start and resume -------------------------------------------------------------------------

    def setup(self, saved: Mapping[str, Any] | None) -> None:
        """Train (or load) each camera's base model on its bootstrap window; or restore a snapshot's models."""
        if saved is not None:
            self._restore(saved)
            return
        for cam in tqdm(self.cameras, desc="base models", unit="camera", leave=False, disable=None):
            model = self._base_model(cam)
            self.base[cam] = model
            self.serving[cam] = model
        if self.probes is not None:
            self.probes.add_row(0, self.base)

    def _restore(self, saved: Mapping[str, Any]) -> None:
        """The models, the profiler's state and what was served, as ``snapshot`` saved them."""
        svc = self.service
        self.serving = {cam: svc.learner.load_model_state(s) for cam, s in saved["models"].items()}
        self.base = {cam: svc.learner.load_model_state(s) for cam, s in saved["base"].items()}
        svc.profiler.restore(saved.get("profiler"))
        svc.served_since = {cam: (float(t), bool(ok)) for cam, (t, ok) in saved.get("served_since", {}).items()}
        if self.probes is not None and saved.get("probes") is None:
            log.warning("the checkpoint holds no accuracy matrices (saved without window.forgetting): "
                        "forgetting is not measured in this resumed run")
            self.probes = None
        elif self.probes is not None:
            self.probes.restore(saved["probes"])

    def snapshot(self) -> dict[str, Any]:
        """Every camera's current and base models (state dicts), the profiler's state, the matrices, what served."""
        svc = self.service
        return {"models": {cam: svc.learner.model_state(m) for cam, m in self.serving.items()},
                "base": {cam: svc.learner.model_state(m) for cam, m in self.base.items()},
                "profiler": svc.profiler.state(),
                "probes": self.probes.state() if self.probes is not None else None,
                "served_since": dict(svc.served_since)}

    def _base_model(self, cam: str) -> torch.nn.Module:
        """Train a camera's base model, or load it from ``runtime.base_cache`` where the same one was trained.

        The cache key (``base_key``: dataset, teacher, learner, windows, seed) covers everything
        that shapes the base model, so runs that differ only in scheduler, cluster or profiler share
        it; a loaded model has exactly the trained one's weights, so the numbers do not change.
        """
        path, svc = self._base_cache_path(cam), self.service
        if path is not None and path.is_file():
            return svc.learner.load_model_state(torch.load(path, map_location="cpu", weights_only=True))
        model = svc.learner.base_model(svc.stream_set, svc.windows_of[cam][0], derive_seed(svc.seed, "base", cam))
        if path is not None:
            buf = io.BytesIO()
            torch.save(svc.learner.model_state(model), buf)
            atomic_write(path, buf.getvalue())
        return model

    def cached_base_models(self) -> list[str]:
        """The cameras whose base model ``runtime.base_cache`` holds already (setup loads these, trains the rest)."""
        return [cam for cam in self.cameras if (path := self._base_cache_path(cam)) is not None and path.is_file()]

    def _base_cache_path(self, cam: str) -> Path | None:
        if self.base_cache is None:
            return None
        digest = hashlib.sha256(f"{self.base_key}|seed={self.service.seed}|camera={cam}".encode()).hexdigest()[:16]
        return self.base_cache / f"{cam}-{digest}.pt"

    def keep_up_budget(self, budget: Budget) -> Budget:
        """``budget`` with each camera's inference keep-up share priced at the accelerator's one rate."""
        if not budget.derive_keep_up:
            return budget
        svc = self.service
        n = len(next(iter(svc.windows_of.values())))
        return with_keep_up(budget, {
            cam: keep_up_share(sample_rate(svc.stream_set.camera(cam), svc.settings.seconds, n),
                               svc.learner.forward_flops(self.serving[cam]), svc.gflops)
            for cam in self.cameras})

    # -- the end of a window ----------------------------------------------------------------------------

    def carry_over(self, cam: str) -> None:
        """Without ``window.carry_over`` the camera starts the next window from its base model."""
        if not self.service.settings.carry_over:
            self.serving[cam] = self.base[cam]

    def score_probes(self, k: int, end_models: Mapping[str, torch.nn.Module]) -> None:
        """Forgetting: the models serving at the end of window k (before carry-over resets them) on every probe."""
        if self.probes is not None:
            self.probes.add_row(k, dict(end_models))

    def accuracy_matrices(self) -> dict[str, AccuracyMatrix] | None:
        """Each camera's probe-accuracy matrix so far; None with ``window.forgetting=false``."""
        return self.probes.matrices() if self.probes is not None else None
