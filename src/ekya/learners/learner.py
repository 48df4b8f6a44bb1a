"""The learner the runtimes call: base models, retraining jobs, and accuracy on a sample table.

``FinetuneLearner`` (``conf/learner/finetune.yaml``) trains a camera's base model from scratch on
its bootstrap window (or loads it from a checkpoint), retrains a copy of a given model with one
RetrainConfig (frozen backbone + head on cached features, or every layer), and scores a model on a
table's labels. Jobs are deterministic given their seed; their cost is reported in FLOPs actually
computed (see ``ekya.learners.flops``), never in wall time.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from ekya.errors import EkyaError
from ekya.seeds import derive_seed
from ekya.learners.backbones import BACKBONES, build_head
from ekya.learners.finetune import Batches, FinetuneModule, fit
from ekya.learners.flops import sample_flops
from ekya.learners.model import EdgeModel
from ekya.profiles.types import RetrainConfig
from ekya.streams.images import CropCache
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window, subsample

#: The knobs a RetrainConfig may set; a missing one falls back to the learner's default.
PARAM_KEYS = ("backbone", "frozen", "hidden", "epochs", "data_fraction", "batch_size", "lr", "optimizer",
              "momentum", "weight_decay")
_EVAL_BATCH = 256


@dataclass
class TrainReport:
    """What one training job did: epochs, sample-passes, FLOPs computed, validation curve, wall time."""

    epochs: int
    samples_seen: int
    train_flops: float
    val_acc: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    train_samples: int = 0
    val_samples: int = 0
    #: the config asked for a backbone other than the given model's, so training started from a
    #: freshly initialised model of that backbone (nothing pretrained exists to start from)
    from_scratch: bool = False
    #: FLOPs per sample of each pass this job ran, as measured on its architecture: (once per
    #: train+val sample (feature caching), per train sample and epoch, per val sample and epoch);
    #: train_flops = once*(train+val) + epochs*(train*per_train + val*per_val)
    pass_flops: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class JobParams:
    """A RetrainConfig's params, completed with the learner's defaults and checked."""

    backbone: str
    frozen: bool
    hidden: int
    epochs: int
    data_fraction: float
    batch_size: int
    lr: float
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0


def _camera_of(df: pd.DataFrame) -> str:
    cams = df["camera"].unique() if "camera" in df.columns and len(df) else []
    return str(cams[0]) if len(cams) == 1 else "+".join(sorted(map(str, cams)))


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Rows the teacher labelled (teacher_label -1 means no label, so no training target)."""
    return df[df["teacher_label"].to_numpy() >= 0]


class FinetuneLearner:
    """Continuous fine-tuning of per-camera edge models (see the module doc)."""

    def __init__(
        self,
        backbone: str = "resnet10_w16",
        hidden: int = 256,
        image_size: int = 32,
        num_threads: int = 2,
        base_epochs: int = 20,
        base_lr: float = 2e-3,
        base_batch_size: int = 32,
        val_fraction: float = 0.2,
        checkpoint: str | None = None,
        config_defaults: Mapping[str, Any] | None = None,
        name: str = "finetune",
    ) -> None:
        if backbone not in BACKBONES:
            raise EkyaError(f"learner.backbone={backbone!r} is not known; choose one of {sorted(BACKBONES)}")
        if int(image_size) < 8:
            raise EkyaError(f"learner.image_size={image_size}: must be at least 8")
        self.name = name
        self.backbone, self.hidden, self.image_size = str(backbone), int(hidden), int(image_size)
        self.num_threads = int(num_threads)
        self.base_epochs, self.base_lr, self.base_batch_size = int(base_epochs), float(base_lr), int(base_batch_size)
        self.val_fraction = float(val_fraction)
        self.checkpoint = checkpoint
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
        unknown = sorted(set(config.params) - set(PARAM_KEYS))
        if unknown:
            raise EkyaError(f"configspace config {config.name!r}: unknown key(s) {unknown}; "
                            f"a config may set {list(PARAM_KEYS)}")
        p = {**self.defaults, **dict(config.params)}
        try:
            job = JobParams(backbone=str(p["backbone"]), frozen=bool(p["frozen"]), hidden=int(p["hidden"]),
                            epochs=int(p["epochs"]), data_fraction=float(p["data_fraction"]),
                            batch_size=int(p["batch_size"]), lr=float(p["lr"]), optimizer=str(p["optimizer"]),
                            momentum=float(p["momentum"]), weight_decay=float(p["weight_decay"]))
        except (TypeError, ValueError) as e:
            raise EkyaError(f"configspace config {config.name!r}: a value has the wrong type ({e})") from None
        checks = [
            (job.backbone in BACKBONES, "backbone", f"one of {sorted(BACKBONES)}"),
            (job.hidden >= 1, "hidden", ">= 1"), (job.epochs >= 1, "epochs", ">= 1"),
            (0 < job.data_fraction <= 1, "data_fraction", "in (0, 1]"), (job.batch_size >= 1, "batch_size", ">= 1"),
            (job.lr > 0, "lr", "> 0"), (job.optimizer in ("adam", "sgd"), "optimizer", "'adam' or 'sgd'"),
        ]
        for ok, key, want in checks:
            if not ok:
                raise EkyaError(f"configspace config {config.name!r}: {key}={p[key]!r} must be {want}")
        return job

    # -- data ----------------------------------------------------------------------------------

    def crops(self, stream_set: StreamSet) -> CropCache:
        """The learner's crop cache for a dataset (created on first use)."""
        hit = self._caches.get(id(stream_set))
        if hit is None:
            hit = (stream_set, CropCache(stream_set, self.image_size))
            self._caches[id(stream_set)] = hit
        return hit[1]

    def _tensors(self, df: pd.DataFrame, stream_set: StreamSet, target: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.crops(stream_set).images(df), torch.tensor(df[target].to_numpy(dtype=np.int64))

    # -- the API the runtimes call ---------------------------------------------------------------

    def new_model(self, num_classes: int, seed: int, backbone: str | None = None, hidden: int | None = None) -> EdgeModel:
        """A freshly initialised edge model (deterministic given the seed)."""
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            return EdgeModel(backbone or self.backbone, hidden or self.hidden, num_classes, self.image_size)

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
        return self.retrain(model, config, train_df, val_df, stream_set, seed)

    def _split(self, df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        perm = np.random.default_rng(seed).permutation(len(df))
        n_val = int(round(self.val_fraction * len(df))) if len(df) > 1 else 0
        return df.iloc[np.sort(perm[n_val:])], df.iloc[np.sort(perm[:n_val])]

    def retrain(self, model: nn.Module, config: RetrainConfig, train_df: pd.DataFrame, val_df: pd.DataFrame,
                stream_set: StreamSet, seed: int) -> tuple[EdgeModel, TrainReport]:
        """Train a copy of ``model`` with ``config`` on the teacher labels of ``train_df``; ``model`` is untouched."""
        t0 = time.perf_counter()
        job = self.params(config)
        torch.set_num_threads(self.num_threads)
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

        from_scratch = getattr(model, "backbone_name", None) != job.backbone
        if from_scratch:
            new = self.new_model(num_classes, job_seed, job.backbone, job.hidden)
        else:
            new = copy.deepcopy(model)
            if new.hidden != job.hidden or new.num_classes != num_classes:
                with torch.random.fork_rng():
                    torch.manual_seed(job_seed)
                    new.head = build_head(new.feature_dim, job.hidden, num_classes)
                new.hidden, new.num_classes = job.hidden, num_classes
        x_tr, y_tr = self._tensors(train_df, stream_set, "teacher_label")
        x_va, y_va = self._tensors(val_df, stream_set, "teacher_label")
        flops = sample_flops(new.backbone_name, new.hidden, num_classes, new.image_size)

        with torch.random.fork_rng():
            torch.manual_seed(job_seed)
            if job.frozen:
                # Frozen backbone: BatchNorm keeps its running statistics (eval mode) and the
                # features are computed once; only the head trains, on the cached features.
                new.backbone.eval()
                new.backbone.requires_grad_(False)
                with torch.no_grad():
                    f_tr = _batched(new.features, x_tr)
                    f_va = _batched(new.features, x_va)
                train = Batches(f_tr, y_tr, job.batch_size, seed=job_seed)
                val = Batches(f_va, y_va, _EVAL_BATCH)
                net: nn.Module = new.head
                passes = (flops.backbone_forward, flops.head_train, flops.head_forward)
                once = passes[0] * (len(x_tr) + len(x_va))
                per_epoch = passes[1] * train.samples + passes[2] * val.samples
            else:
                new.requires_grad_(True)
                train = Batches(x_tr, y_tr, job.batch_size, seed=job_seed)
                val = Batches(x_va, y_va, _EVAL_BATCH)
                net = new
                passes = (0.0, flops.full_train, flops.forward)
                once = 0.0
                per_epoch = passes[1] * train.samples + passes[2] * val.samples
            module = fit(FinetuneModule(net, job.lr, job.optimizer, job.momentum, job.weight_decay),
                         train, val, job.epochs)
        new.requires_grad_(True)
        new.eval()
        report = TrainReport(
            epochs=job.epochs, samples_seen=train.samples * job.epochs,
            train_flops=float(once + per_epoch * job.epochs), val_acc=list(module.val_acc),
            wall_seconds=time.perf_counter() - t0, train_samples=len(x_tr), val_samples=len(x_va),
            from_scratch=from_scratch, pass_flops=passes,
        )
        return new, report

    def predict(self, model: nn.Module, df: pd.DataFrame, stream_set: StreamSet) -> np.ndarray:
        """Predicted class per row of ``df``."""
        if df.empty:
            return np.zeros(0, dtype=np.int64)
        torch.set_num_threads(self.num_threads)
        images = self.crops(stream_set).images(df)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = _batched(model, images)
        finally:
            model.train(was_training)
        return logits.argmax(dim=1).numpy()

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

    def evaluate(self, model: nn.Module, df: pd.DataFrame, stream_set: StreamSet, teacher: bool = False) -> float:
        """Top-1 accuracy on ``label`` (teacher_label where label is -1), or on teacher_label when ``teacher``; NaN if no row has one."""
        correct, _ = self.hits(model, df, stream_set, teacher)
        return float(correct.mean()) if correct.size else float("nan")

    def forward_flops(self, model: nn.Module) -> float:
        """FLOPs of one inference pass of ``model`` over one sample (what evaluating a sample costs)."""
        return sample_flops(model.backbone_name, model.hidden, model.num_classes, model.image_size).forward


def _batched(fn: nn.Module | Any, x: torch.Tensor, batch: int = _EVAL_BATCH) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in chunks and concatenate (bounded memory on large tables)."""
    if len(x) == 0:
        with torch.no_grad():
            return fn(torch.zeros((1, *x.shape[1:]), dtype=x.dtype))[:0]
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


def save_checkpoint(model: EdgeModel, path: str | Path) -> None:
    """Write a model (architecture + weights) that ``learner.checkpoint`` can name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"arch": model.describe(), "state_dict": model.state_dict()}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, num_classes: int | None = None) -> EdgeModel:
    """Read a model written by ``save_checkpoint``; EkyaError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise EkyaError(f"learner.checkpoint: {path} does not exist; train a base model first or fix the path "
                        "(it may contain {camera})")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        arch = dict(blob["arch"])
        model = EdgeModel(arch["backbone"], arch["hidden"], arch["num_classes"], arch["image_size"])
        model.load_state_dict(blob["state_dict"])
    except Exception as e:  # any unreadable or foreign file: one clear message, not a pickle traceback
        raise EkyaError(f"learner.checkpoint: {path} is not an ekya model checkpoint ({e}); "
                        "write it with ekya.learners.save_checkpoint") from None
    if num_classes is not None and model.num_classes != num_classes:
        raise EkyaError(f"learner.checkpoint: {path} predicts {model.num_classes} classes, the dataset has {num_classes}")
    return model.eval()
