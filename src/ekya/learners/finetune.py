"""The fine-tuning learner the runtimes call: base models, retraining jobs, and accuracy on a sample table.

``FinetuneLearner`` (``conf/learner/finetune.yaml``) trains a camera's base model from scratch on
its bootstrap window (or loads it from a checkpoint), retrains a copy of a given model with one
RetrainConfig (frozen backbone + head on cached features, or every layer), and scores a model on a
table's labels. Jobs are deterministic given their seed; their cost is reported in FLOPs actually
computed (see ``ekya.learners.flops``), never in wall time. Training and inference run on
``accelerator``; models are built, and handed back, on the CPU.

A job follows the shared template (``ekya.learners.job``). Two opt-in guards against forgetting
are parts of it (``ekya.learners.parts``): ``replay`` mixes samples of a bounded per-camera buffer
(``ekya.learners.replay``, carried by the model) into every training batch, and ``lwf`` adds the
distillation term of learning without forgetting against the model the job starts from (the one
serving), its logits computed once per job. Their extra passes are counted in the job's FLOPs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.learners.accelerator import resolve_accelerator
from ekya.learners.backbones import BACKBONES, build_head
from ekya.learners.base import TrainReport
from ekya.learners.flops import SampleFlops, sample_flops
from ekya.learners.inference import batched, serving
from ekya.learners.job import Fitted, Job, JobLearner
from ekya.learners.model import EdgeModel
from ekya.learners.model_state import edge_model_from_state, edge_model_state, load_checkpoint
from ekya.learners.parts import JobData, JobPart, Lwf, Replay
from ekya.learners.settings import LwfSettings, ReplaySettings
from ekya.learners.tables import camera_of, crop_rows
from ekya.learners.training import Batches, FinetuneModule, fit
from ekya.seeds import derive_seed
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window

__all__ = ["FinetuneLearner"]


class FinetuneLearner(JobLearner):
    """Continuous fine-tuning of per-camera edge models (see the module doc)."""

    def __init__(
        self,
        backbone: str = "resnet10_w16",
        hidden: int = 256,
        image_size: int = 32,
        base_epochs: int = 20,
        base_lr: float = 2e-3,
        base_batch_size: int = 32,
        val_fraction: float = 0.2,
        checkpoint: str | None = None,
        config_defaults: Mapping[str, Any] | None = None,
        accelerator: str = "auto",
        eval_batch_size: int = 256,
        replay: Mapping[str, Any] | None = None,
        lwf: Mapping[str, Any] | None = None,
    ) -> None:
        if backbone not in BACKBONES:
            raise EkyaError(f"learner.backbone={backbone!r} is not known; choose one of {sorted(BACKBONES)}")
        if int(image_size) < 8:
            raise EkyaError(f"learner.image_size={image_size}: must be at least 8")
        if int(eval_batch_size) < 1:
            raise EkyaError(f"learner.eval_batch_size={eval_batch_size}: must be at least 1")
        self.backbone, self.hidden, self.image_size = str(backbone), int(hidden), int(image_size)
        self.base_epochs, self.base_lr, self.base_batch_size = int(base_epochs), float(base_lr), int(base_batch_size)
        self.val_fraction = float(val_fraction)
        self.checkpoint = checkpoint
        self.device = resolve_accelerator(accelerator)
        self.eval_batch_size = int(eval_batch_size)
        self.replay, self.lwf = ReplaySettings.of(replay), LwfSettings.of(lwf)
        #: the job's parts, in order (replay first: LwF's teacher also scores the memory samples)
        self.parts: list[JobPart] = [*([Replay(self.replay)] if self.replay.on else []),
                                     *([Lwf(self.lwf)] if self.lwf.on else [])]
        self.defaults: dict[str, Any] = {"backbone": self.backbone, "frozen": False, "hidden": self.hidden,
                                         "epochs": 5, "data_fraction": 1.0, "batch_size": 32, "lr": 1e-3,
                                         "optimizer": "adam", "momentum": 0.9, "weight_decay": 0.0}
        self.defaults.update(dict(config_defaults or {}))

    # -- data ----------------------------------------------------------------------------------

    def job_rows(self, model: nn.Module, train_df: pd.DataFrame, val_df: pd.DataFrame) -> pd.DataFrame:
        """Every sample whose crop a ``retrain`` of ``model`` on this pool reads: the pool and the model's memory."""
        memory = [rows for part in self.parts if (rows := part.memory_rows(model)) is not None]
        return crop_rows(train_df, val_df, *memory)

    def tensors(self, df: pd.DataFrame, stream_set: StreamSet, target: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The table's crops and its ``target`` column as tensors on the learner's device."""
        images = self.crops(stream_set).images(df)
        targets = torch.tensor(df[target].to_numpy(dtype=np.int64))
        return images.to(self.device), targets.to(self.device)

    def _on_device(self, model: nn.Module) -> nn.Module:
        """``model`` itself when it lives on the learner's device, else a copy there (the caller's stays put)."""
        first = next(model.parameters(), None)
        if first is None or first.device == self.device:
            return model
        return copy.deepcopy(model).to(self.device)

    # -- models --------------------------------------------------------------------------------

    def new_model(self, num_classes: int, seed: int, backbone: str | None = None,
                  hidden: int | None = None) -> EdgeModel:
        """A freshly initialised edge model on the CPU; ``backbone``/``hidden`` default to the learner's own."""
        return super().new_model(num_classes, seed, backbone or self.backbone, hidden or self.hidden)

    def model_state(self, model: nn.Module) -> dict[str, Any]:
        """The model's architecture and a CPU copy of its weights (the checkpoint format)."""
        return edge_model_state(model)

    def load_model_state(self, state: dict[str, Any]) -> EdgeModel:
        """The EdgeModel a ``model_state`` dict describes, in eval mode on the CPU."""
        return edge_model_from_state(state)

    def base_model(self, stream_set: StreamSet, bootstrap: Window | pd.DataFrame, seed: int) -> EdgeModel:
        """A camera's base model: loaded from ``checkpoint`` if set, else trained from scratch on the bootstrap data."""
        return self.fit_base(stream_set, bootstrap, seed)[0]

    def fit_base(self, stream_set: StreamSet, bootstrap: Window | pd.DataFrame,
                 seed: int) -> tuple[EdgeModel, TrainReport | None]:
        """``base_model`` plus the training report (None when loaded from a checkpoint)."""
        if isinstance(bootstrap, Window):
            camera, train_df, val_df = bootstrap.camera, bootstrap.train, bootstrap.val
        else:
            camera = camera_of(bootstrap)
            train_df, val_df = self._split(bootstrap, derive_seed(seed, "base-split", camera))
        if self.checkpoint:
            model = load_checkpoint(str(self.checkpoint).format(camera=camera), len(stream_set.classes))
            if model.image_size != self.image_size:
                raise EkyaError(f"learner.checkpoint: the model was built for {model.image_size} px crops but "
                                f"learner.image_size={self.image_size}; set them equal")
            return model, None
        model = self.new_model(len(stream_set.classes), derive_seed(seed, "base-init", camera))
        config = RetrainConfig("base", {"frozen": False, "epochs": self.base_epochs, "lr": self.base_lr,
                                        "batch_size": self.base_batch_size, "data_fraction": 1.0})
        # A fresh model has nothing to keep, so the base job does not distil from it.
        return self.retrain(model, config, train_df, val_df, stream_set, seed, distill=False)

    def _split(self, df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        perm = np.random.default_rng(seed).permutation(len(df))
        n_val = int(round(self.val_fraction * len(df))) if len(df) > 1 else 0
        return df.iloc[np.sort(perm[n_val:])], df.iloc[np.sort(perm[:n_val])]

    # -- retraining (the steps of JobLearner.retrain) --------------------------------------------

    def start_model(self, job: Job) -> tuple[EdgeModel, bool]:
        """A CPU copy of the job's model with the job's head, or a fresh model when the config names another backbone.

        Built on the CPU, so its initial weights do not depend on the device.
        """
        p = job.params
        if getattr(job.model, "backbone_name", None) != p.backbone:
            return self.new_model(job.num_classes, job.seed, p.backbone, p.hidden), True
        new = copy.deepcopy(job.model).cpu()
        if new.hidden != p.hidden or new.num_classes != job.num_classes:
            with torch.random.fork_rng():
                torch.manual_seed(job.seed)
                new.head = build_head(new.feature_dim, p.hidden, job.num_classes)
            new.hidden, new.num_classes = p.hidden, job.num_classes
        return new, False

    def fit_job(self, job: Job, new: nn.Module) -> Fitted:
        """Train ``new`` on the pool (and the parts' memory and teacher logits) with cross-entropy (+ KD)."""
        p = job.params
        new.to(self.device)
        data = JobData(*self.tensors(job.train, job.stream_set, "teacher_label"),
                       *self.tensors(job.val, job.stream_set, "teacher_label"))
        flops = sample_flops(new.backbone_name, new.hidden, job.num_classes, new.image_size)
        for part in self.parts:
            part.before_fit(self, job, data)
        n_mem = data.memory_samples
        with torch.random.fork_rng():
            torch.manual_seed(job.seed)
            (x_tr, x_va, x_mem), net, passes, once = self.job_inputs(
                new, p.frozen, flops, data.x_train, data.x_val, data.x_memory if n_mem else None)
            memory = (x_mem, data.y_memory, data.soft_memory) if n_mem else None
            train = Batches(x_tr, data.y_train, p.batch_size, seed=job.seed, soft=data.soft_train, memory=memory,
                            ratio=self.replay.ratio)
            val = Batches(x_va, data.y_val, self.eval_batch_size)
            per_epoch = passes[1] * train.samples + passes[2] * val.samples
            once += data.teacher_flops
            module = fit(FinetuneModule(net, p.lr, p.optimizer, p.momentum, p.weight_decay,
                                        kd_weight=self.lwf.weight if data.soft_train is not None else 0.0,
                                        temperature=self.lwf.temperature),
                         train, val, p.epochs, self.device)
        n_train, n_val = len(data.x_train), len(data.x_val)
        if n_mem or data.teacher_flops:
            # Per pool sample, so the micro-profiler's cost model (see TrainReport.pass_flops) still
            # adds up to this job's FLOPs: memory samples and teacher passes ride on the pool's.
            passes = (once / max(n_train + n_val, 1), (per_epoch - passes[2] * val.samples) / max(n_train, 1),
                      passes[2])
        return Fitted(module, train, val, passes, once, per_epoch, n_train, n_val)

    def after_fit(self, job: Job, new: nn.Module, fitted: Fitted) -> None:
        """Each part keeps what it needs on the trained model (replay: the next buffer)."""
        for part in self.parts:
            part.after_fit(job, new)

    def job_inputs(self, new: nn.Module, frozen: bool, flops: SampleFlops, *inputs: torch.Tensor | None,
                   ) -> tuple[list[torch.Tensor | None], nn.Module, tuple[float, float, float], float]:
        """What a job trains on, and the FLOPs of each pass: (inputs, net, passes, FLOPs of feature caching).

        A frozen backbone: each input's features, computed once, and the head alone. Otherwise the
        crops themselves and the whole model, every layer trainable.
        """
        if frozen:
            passes = (flops.backbone_forward, flops.head_train, flops.head_forward)
            return (self.frozen_features(new, *inputs), new.head, passes,
                    passes[0] * sum(len(x) for x in inputs if x is not None))
        new.requires_grad_(True)
        return list(inputs), new, (0.0, flops.full_train, flops.forward), 0.0

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``model``'s logits on ``x`` in eval mode without gradients; the model's own mode is left as it was."""
        with serving(self._on_device(model)) as net:
            return batched(net, x, self.eval_batch_size)

    def frozen_features(self, model: nn.Module, *inputs: torch.Tensor | None) -> list[torch.Tensor | None]:
        """Freeze ``model``'s backbone and compute each input's features once (None stays None).

        BatchNorm keeps its running statistics (eval mode); only the head trains, on these features.
        """
        model.backbone.eval()
        model.backbone.requires_grad_(False)
        with torch.no_grad():
            return [None if x is None else batched(model.features, x, self.eval_batch_size) for x in inputs]

    # -- inference -----------------------------------------------------------------------------

    def predict(self, model: nn.Module, df: pd.DataFrame, stream_set: StreamSet) -> np.ndarray:
        """Predicted class per row of ``df``."""
        if df.empty:
            return np.zeros(0, dtype=np.int64)
        images = self.crops(stream_set).images(df).to(self.device)
        return self.logits(model, images).argmax(dim=1).cpu().numpy()

    def hits(self, model: nn.Module, df: pd.DataFrame, stream_set: StreamSet,
             teacher: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(correct, keep): per row with a target (``keep``), whether the model's top-1 class is right.

        The target is ``label`` (teacher_label where label is -1), or teacher_label when ``teacher``.
        """
        if teacher:
            target = df["teacher_label"].to_numpy()
        else:
            target = np.where(df["label"].to_numpy() >= 0, df["label"].to_numpy(), df["teacher_label"].to_numpy())
        keep = target >= 0
        if not keep.any():
            return np.zeros(0, dtype=bool), keep
        return self.predict(model, df[keep], stream_set) == target[keep], keep

    def forward_flops(self, model: nn.Module) -> float:
        """FLOPs of one inference pass of ``model`` over one sample (what evaluating a sample costs)."""
        return sample_flops(model.backbone_name, model.hidden, model.num_classes, model.image_size).forward
