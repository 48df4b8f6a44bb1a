"""The fine-tuning learner the runtimes call: base models, retraining jobs, and accuracy on a sample table.

``FinetuneLearner`` (``conf/learner/finetune.yaml``) trains a camera's base model from scratch on
its bootstrap window (or loads it from a checkpoint), retrains a copy of a given model with one
RetrainConfig (frozen backbone + head on cached features, or every layer), and scores a model on a
table's labels. Jobs are deterministic given their seed; their cost is reported in FLOPs actually
computed (see ``ekya.learners.flops``), never in wall time. Training and inference run on
``accelerator``; models are built, and handed back, on the CPU.

Two opt-in guards against forgetting: ``replay`` mixes samples of a bounded per-camera buffer
(``ekya.learners.replay``, carried by the model) into every training batch, and ``lwf`` adds the
distillation term of learning without forgetting against the model the job starts from (the one
serving), its logits computed once per job. Their extra passes are counted in the job's FLOPs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ekya.errors import EkyaError
from ekya.learners.accelerator import resolve_accelerator
from ekya.learners.backbones import BACKBONES, build_head
from ekya.learners.base import Learner, TrainReport
from ekya.learners.checkpoint import edge_model_from_state, edge_model_state, load_checkpoint
from ekya.learners.data import CropCache
from ekya.learners.finetune import Batches, FinetuneModule, fit
from ekya.learners.flops import sample_flops
from ekya.learners.model import EdgeModel
from ekya.learners.params import JobParams, job_params
from ekya.learners.replay import BUFFERS, ReplayBuffer, update_buffer
from ekya.profiles.types import RetrainConfig
from ekya.seeds import derive_seed
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window, subsample

__all__ = ["FinetuneLearner", "TrainReport"]  # TrainReport: re-exported from its old home


def _camera_of(df: pd.DataFrame) -> str:
    cams = df["camera"].unique() if "camera" in df.columns and len(df) else []
    return str(cams[0]) if len(cams) == 1 else "+".join(sorted(map(str, cams)))


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Rows the teacher labelled (teacher_label -1 means no label, so no training target)."""
    return df[df["teacher_label"].to_numpy() >= 0]


def _replay_settings(replay: Mapping[str, Any] | None) -> tuple[str, int, float]:
    """(buffer, memory, ratio) of ``learner.replay``; EkyaError names the bad key."""
    r = {"buffer": "none", "memory": 200, "ratio": 0.5, **dict(replay or {})}
    unknown = sorted(set(r) - {"buffer", "memory", "ratio"})
    if unknown:
        raise EkyaError(f"learner.replay: unknown key(s) {unknown}; it takes buffer, memory and ratio")
    buffer = str(r["buffer"])
    if buffer not in BUFFERS:
        raise EkyaError(f"learner.replay.buffer={buffer!r}: choose one of {list(BUFFERS)}")
    try:
        memory, ratio = int(r["memory"]), float(r["ratio"])
    except (TypeError, ValueError):
        raise EkyaError(f"learner.replay: memory={r['memory']!r} must be an integer and ratio={r['ratio']!r} "
                        "a number") from None
    if memory < 1:
        raise EkyaError(f"learner.replay.memory={memory}: must be at least 1 sample")
    if not 0.0 < ratio < 1.0:
        raise EkyaError(f"learner.replay.ratio={ratio}: the buffer's share of each batch must be in (0, 1); "
                        "0.5 mixes 1:1")
    return buffer, memory, ratio


def _lwf_settings(lwf: Mapping[str, Any] | None) -> tuple[float, float]:
    """(weight, temperature) of ``learner.lwf``; EkyaError names the bad key."""
    d = {"weight": 0.0, "temperature": 2.0, **dict(lwf or {})}
    unknown = sorted(set(d) - {"weight", "temperature"})
    if unknown:
        raise EkyaError(f"learner.lwf: unknown key(s) {unknown}; it takes weight and temperature")
    try:
        weight, temperature = float(d["weight"]), float(d["temperature"])
    except (TypeError, ValueError):
        raise EkyaError(f"learner.lwf: weight={d['weight']!r} and temperature={d['temperature']!r} must be "
                        "numbers") from None
    if not (weight >= 0 and np.isfinite(weight)):
        raise EkyaError(f"learner.lwf.weight={weight}: must be >= 0 (0 turns distillation off)")
    if not (temperature > 0 and np.isfinite(temperature)):
        raise EkyaError(f"learner.lwf.temperature={temperature}: must be > 0")
    return weight, temperature


class FinetuneLearner(Learner):
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
        self.replay_buffer, self.replay_memory, self.replay_ratio = _replay_settings(replay)
        self.lwf_weight, self.lwf_temperature = _lwf_settings(lwf)
        self.defaults: dict[str, Any] = {"backbone": self.backbone, "frozen": False, "hidden": self.hidden,
                                         "epochs": 5, "data_fraction": 1.0, "batch_size": 32, "lr": 1e-3,
                                         "optimizer": "adam", "momentum": 0.9, "weight_decay": 0.0}
        self.defaults.update(dict(config_defaults or {}))
        # One crop cache per dataset: decoding is paid once per run, not once per job. The
        # StreamSet is kept with its cache so its id cannot be reused by another object.
        self._caches: dict[int, tuple[StreamSet, CropCache]] = {}

    # -- parameters ----------------------------------------------------------------------------

    def params(self, config: RetrainConfig) -> JobParams:
        """The config's params completed with defaults; EkyaError names the config and bad key."""
        return job_params(config, self.defaults)

    def check_config(self, config: RetrainConfig) -> None:
        """Raise EkyaError naming the config and key when ``config`` is not a job this learner can run."""
        self.params(config)

    # -- data ----------------------------------------------------------------------------------

    def crops(self, stream_set: StreamSet) -> CropCache:
        """The learner's crop cache for a dataset (created on first use)."""
        hit = self._caches.get(id(stream_set))
        if hit is None:
            hit = (stream_set, CropCache(stream_set, self.image_size))
            self._caches[id(stream_set)] = hit
        return hit[1]

    def job_rows(self, model: nn.Module, train_df: pd.DataFrame, val_df: pd.DataFrame) -> pd.DataFrame:
        """Every sample whose crop a ``retrain`` of ``model`` on this pool reads: the pool and the model's memory."""
        parts = [train_df, val_df]
        buffer = self._buffer_of(model)
        if buffer is not None and len(buffer):
            parts.append(buffer.rows)
        return pd.concat([p[["path", "x0", "y0", "x1", "y1"]] for p in parts], ignore_index=True)

    def _tensors(self, df: pd.DataFrame, stream_set: StreamSet, target: str) -> tuple[torch.Tensor, torch.Tensor]:
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
        """A freshly initialised edge model on the CPU (deterministic given the seed)."""
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            return EdgeModel(backbone or self.backbone, hidden or self.hidden, num_classes, self.image_size)

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
            camera = _camera_of(bootstrap)
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

    # -- retraining ----------------------------------------------------------------------------

    def retrain(self, model: nn.Module, config: RetrainConfig, train_df: pd.DataFrame,  # noqa: PLR0915 - to be split
                val_df: pd.DataFrame, stream_set: StreamSet, seed: int,
                distill: bool = True) -> tuple[EdgeModel, TrainReport]:
        """Train a copy of ``model`` with ``config`` on the teacher labels of ``train_df``; ``model`` is untouched.

        ``distill``: with ``lwf.weight`` > 0, distil from ``model`` (False for an untrained start).
        """
        t0 = time.perf_counter()
        job = self.params(config)
        camera = _camera_of(train_df)
        train_df = _labelled(train_df)
        val_df = _labelled(val_df)
        if train_df.empty:
            raise EkyaError(f"retraining camera {camera!r} with {config.name!r}: no teacher-labelled training "
                            "samples; check the labeler and the window's training pool")
        train_df = subsample(train_df, job.data_fraction, derive_seed(seed, "fraction", camera, config.name),
                             key=f"configspace config {config.name!r}: data_fraction")
        num_classes = len(stream_set.classes)
        job_seed = derive_seed(seed, "job", camera, config.name)

        # The starting model is built on the CPU, so its initial weights do not depend on the device.
        from_scratch = getattr(model, "backbone_name", None) != job.backbone
        if from_scratch:
            new = self.new_model(num_classes, job_seed, job.backbone, job.hidden)
        else:
            new = copy.deepcopy(model).cpu()
            if new.hidden != job.hidden or new.num_classes != num_classes:
                with torch.random.fork_rng():
                    torch.manual_seed(job_seed)
                    new.head = build_head(new.feature_dim, job.hidden, num_classes)
                new.hidden, new.num_classes = job.hidden, num_classes
        new.to(self.device)
        x_tr, y_tr = self._tensors(train_df, stream_set, "teacher_label")
        x_va, y_va = self._tensors(val_df, stream_set, "teacher_label")
        flops = sample_flops(new.backbone_name, new.hidden, num_classes, new.image_size)
        buffer = self._buffer_of(model)
        x_mem = y_mem = None
        if buffer is not None and len(buffer):
            x_mem, y_mem = self._tensors(buffer.rows, stream_set, "teacher_label")
        n_mem = 0 if y_mem is None else len(y_mem)
        soft_tr = soft_mem = None
        teacher_flops = 0.0
        if distill and self.lwf_weight > 0:
            # The teacher is the starting model as it serves: eval mode, no augmentation, so its
            # logits are computed once per job (one forward pass per pool and memory sample).
            soft_tr = self._logits(model, x_tr)
            soft_mem = self._logits(model, x_mem) if x_mem is not None else None
            teacher_flops = self.forward_flops(model) * (len(x_tr) + n_mem)

        with torch.random.fork_rng():
            torch.manual_seed(job_seed)
            if job.frozen:
                f_tr, f_va, f_mem = self.frozen_features(new, x_tr, x_va, x_mem if n_mem else None)
                memory = (f_mem, y_mem, soft_mem) if n_mem else None
                train = Batches(f_tr, y_tr, job.batch_size, seed=job_seed, soft=soft_tr, memory=memory,
                                ratio=self.replay_ratio)
                val = Batches(f_va, y_va, self.eval_batch_size)
                net: nn.Module = new.head
                passes = (flops.backbone_forward, flops.head_train, flops.head_forward)
                once = passes[0] * (len(x_tr) + len(x_va) + n_mem)
                per_epoch = passes[1] * train.samples + passes[2] * val.samples
            else:
                new.requires_grad_(True)
                memory = (x_mem, y_mem, soft_mem) if n_mem else None
                train = Batches(x_tr, y_tr, job.batch_size, seed=job_seed, soft=soft_tr, memory=memory,
                                ratio=self.replay_ratio)
                val = Batches(x_va, y_va, self.eval_batch_size)
                net = new
                passes = (0.0, flops.full_train, flops.forward)
                once = 0.0
                per_epoch = passes[1] * train.samples + passes[2] * val.samples
            once += teacher_flops
            module = fit(FinetuneModule(net, job.lr, job.optimizer, job.momentum, job.weight_decay,
                                        kd_weight=self.lwf_weight if soft_tr is not None else 0.0,
                                        temperature=self.lwf_temperature),
                         train, val, job.epochs, self.device)
        new.cpu()
        new.requires_grad_(True)
        new.eval()
        if self.replay_buffer != "none":
            # The buffer learns the pool this job trained on; it travels with the retrained model.
            start = buffer if buffer is not None else ReplayBuffer(self.replay_buffer, self.replay_memory)
            new.replay = update_buffer(start, train_df, derive_seed(job_seed, "replay"))
        if n_mem or teacher_flops:
            # Per pool sample, so the micro-profiler's cost model (see TrainReport.pass_flops) still
            # adds up to this job's FLOPs: memory samples and teacher passes ride on the pool's.
            passes = (once / max(len(x_tr) + len(x_va), 1),
                      (per_epoch - passes[2] * val.samples) / max(len(x_tr), 1), passes[2])
        report = TrainReport(
            epochs=job.epochs, samples_seen=train.samples * job.epochs,
            train_flops=float(once + per_epoch * job.epochs), val_acc=list(module.val_acc),
            wall_seconds=time.perf_counter() - t0, train_samples=len(x_tr), val_samples=len(x_va),
            from_scratch=from_scratch, pass_flops=passes,
        )
        return new, report

    def _buffer_of(self, model: nn.Module) -> ReplayBuffer | None:
        """The starting model's replay buffer when replay is on and the buffer is of the configured kind and size."""
        if self.replay_buffer == "none":
            return None
        buffer = getattr(model, "replay", None)
        if buffer is None or buffer.kind != self.replay_buffer or buffer.memory != self.replay_memory:
            return None
        return buffer

    def _logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``model``'s logits on ``x`` in eval mode without gradients; the model's own mode is left as it was."""
        net = self._on_device(model)
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                return _batched(net, x, self.eval_batch_size)
        finally:
            net.train(was_training)

    def frozen_features(self, model: nn.Module, *inputs: torch.Tensor | None) -> list[torch.Tensor | None]:
        """Freeze ``model``'s backbone and compute each input's features once (None stays None).

        BatchNorm keeps its running statistics (eval mode); only the head trains, on these features.
        """
        model.backbone.eval()
        model.backbone.requires_grad_(False)
        with torch.no_grad():
            return [None if x is None else _batched(model.features, x, self.eval_batch_size) for x in inputs]

    # -- inference -----------------------------------------------------------------------------

    def predict(self, model: nn.Module, df: pd.DataFrame, stream_set: StreamSet) -> np.ndarray:
        """Predicted class per row of ``df``."""
        if df.empty:
            return np.zeros(0, dtype=np.int64)
        images = self.crops(stream_set).images(df).to(self.device)
        net = self._on_device(model)
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                logits = _batched(net, images, self.eval_batch_size)
        finally:
            net.train(was_training)
        return logits.argmax(dim=1).cpu().numpy()

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


def _batched(fn: nn.Module | Any, x: torch.Tensor, batch: int) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in chunks of ``batch`` and concatenate (bounded memory on large tables)."""
    if len(x) == 0:
        with torch.no_grad():
            return fn(torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device))[:0]
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])
