"""iCaRL as a learner (``learner=icarl``): rehearsal from a per-camera exemplar memory, distillation, NME serving.

A job trains a copy of the camera's model on the window's training pool plus the exemplars the
model carries (``ekya.learners.icarl_model``), with the loss ``icarl.loss`` and the starting model
as a frozen teacher (its logits computed once per job, in eval mode). After fit, with BatchNorm in
eval mode: one feature pass over the pool (none with a frozen backbone: the cached features are
reused), herding picks the next memory (``ekya.learners.herding``), one pass over the memory's
horizontally flipped crops (with a frozen backbone only over the exemplars that are new: the model
keeps its exemplars' flipped features, computed with the weights the frozen job keeps), and each
class mean is the renormalised average of the mean normalised feature of its exemplars and of their
flipped copies (as the original). The model then classifies by the nearest mean of exemplars.

Every pass is charged in ``TrainReport.train_flops``: teacher targets, training, validation,
the herding feature pass and its selection products, the flipped class-mean pass, and scoring the
returned model by NME on the validation set (``TrainReport.val_accuracy``: what it serves, and so
what a scheduler is told). The report also splits that work the way the micro-profiler scales it
(the memory as extra samples per epoch, per-pool-sample and per-job passes). A model with
no trained lineage (a fresh base model) has no teacher: its job is plain classification, as the
first increment of the original.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ekya.errors import EkyaError
from ekya.learners.backbones import build_head
from ekya.learners.base import TrainReport
from ekya.learners.finetune import Batches, fit
from ekya.learners.flops import sample_flops
from ekya.learners.herding import normalise, pick_memory
from ekya.learners.icarl_model import (
    CROP_KEY,
    ICaRLModel,
    as_memory,
    icarl_model_from_state,
    icarl_model_state,
)
from ekya.learners.icarl_module import LOSSES, ICaRLModule, bce_targets
from ekya.learners.learner import FinetuneLearner, _batched, _camera_of, _labelled
from ekya.learners.model import EdgeModel
from ekya.profiles.types import RetrainConfig
from ekya.seeds import derive_seed
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window, subsample

log = logging.getLogger(__name__)

#: ``icarl:`` keys and their defaults (conf/learner/icarl.yaml documents each)
ICARL_DEFAULTS: dict[str, Any] = {"memory": 200, "loss": "ce_kd", "kd_weight": 1.0, "temperature": 2.0}


def _head_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The training-time output of a model: an ICaRLModel's head, any other model's forward."""
    return model.logits(x) if isinstance(model, ICaRLModel) else model(x)


class ICaRLLearner(FinetuneLearner):
    """iCaRL on per-camera edge models (see the module doc); every other key is the fine-tuner's."""

    def __init__(self, icarl: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # iCaRL has its own memory and distillation; the fine-tuner's would be silently unused here.
        if getattr(self, "replay_buffer", "none") != "none" or getattr(self, "lwf_weight", 0.0) != 0:
            raise EkyaError("learner=icarl: learner.replay.buffer must be none and learner.lwf.weight 0 (iCaRL "
                            "has its own exemplar memory and distillation: set learner.icarl.memory / kd_weight)")
        opts = dict(icarl or {})
        unknown = sorted(set(opts) - set(ICARL_DEFAULTS))
        if unknown:
            raise EkyaError(f"learner.icarl: unknown key(s) {unknown}; it takes {sorted(ICARL_DEFAULTS)}")
        opts = {**ICARL_DEFAULTS, **opts}
        try:
            self.memory, self.kd_weight, self.temperature = (int(opts["memory"]), float(opts["kd_weight"]),
                                                             float(opts["temperature"]))
        except (TypeError, ValueError):
            raise EkyaError(f"learner.icarl: memory must be an integer and kd_weight, temperature numbers; "
                            f"got {opts}") from None
        self.loss = str(opts["loss"])
        if self.loss not in LOSSES:
            raise EkyaError(f"learner.icarl.loss={self.loss!r}: choose one of {list(LOSSES)}")
        if self.memory < 1:
            raise EkyaError(f"learner.icarl.memory={self.memory}: the exemplar budget must be at least 1 sample")
        if self.kd_weight < 0:
            raise EkyaError(f"learner.icarl.kd_weight={self.kd_weight}: must be >= 0")
        if not self.temperature > 0:
            raise EkyaError(f"learner.icarl.temperature={self.temperature}: must be > 0")
        self._warned_bce = False

    # -- models --------------------------------------------------------------------------------

    def new_model(self, num_classes: int, seed: int, backbone: str | None = None,
                  hidden: int | None = None) -> ICaRLModel:
        """A freshly initialised iCaRL model (empty memory) on the CPU, deterministic given the seed."""
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            return ICaRLModel(backbone or self.backbone, hidden or self.hidden, num_classes, self.image_size)

    def model_state(self, model: nn.Module) -> dict[str, Any]:
        """Architecture, weights, class means and the exemplar table (plain types only)."""
        if not isinstance(model, ICaRLModel):
            model = ICaRLModel.from_edge(model)
        return icarl_model_state(model)

    def load_model_state(self, state: dict[str, Any]) -> ICaRLModel:
        """The ICaRLModel a ``model_state`` dict describes (memory and means identical), eval mode, CPU."""
        if "memory" not in state:  # a fine-tuner's state: the weights, no memory yet
            with torch.random.fork_rng(devices=[]):
                edge = EdgeModel(**{k: state["arch"][k] for k in ("backbone", "hidden", "num_classes", "image_size")})
            edge.load_state_dict(state["state_dict"])
            return ICaRLModel.from_edge(edge).eval()
        return icarl_model_from_state(state)

    def forward_flops(self, model: nn.Module) -> float:
        """One inference pass over one sample: the backbone, then the NME distances (or the head before any mean)."""
        f = sample_flops(model.backbone_name, model.hidden, model.num_classes, model.image_size)
        if isinstance(model, ICaRLModel) and bool(model.has_mean.any()):
            return f.backbone_forward + 2.0 * model.feature_dim * model.num_classes
        return f.forward

    def fit_base(self, stream_set: StreamSet, bootstrap: Window | pd.DataFrame,
                 seed: int) -> tuple[ICaRLModel, TrainReport | None]:
        """``FinetuneLearner.fit_base`` with an iCaRL job; a checkpoint's model gets its memory from bootstrap data."""
        model, report = super().fit_base(stream_set, bootstrap, seed)
        if report is not None:
            return model, report
        if isinstance(bootstrap, Window):
            train_df = bootstrap.train
        else:
            train_df = self._split(bootstrap, derive_seed(seed, "base-split", _camera_of(bootstrap)))[0]
        icarl = ICaRLModel.from_edge(model).to(self.device).eval()
        pool = as_memory(_labelled(train_df).assign(round=1))
        x_pool = self.crops(stream_set).images(pool).to(self.device)
        with torch.no_grad():
            feats = _batched(icarl.features, x_pool, self.eval_batch_size)
        self._remember(icarl, pool, x_pool, feats, np.zeros(len(pool), dtype=bool),
                       set(pool["teacher_label"].tolist()))
        icarl.rounds.fill_(1)
        return icarl.cpu().eval(), None

    # -- retraining ----------------------------------------------------------------------------

    def _start(self, model: ICaRLModel, backbone: str, hidden: int, num_classes: int,
               job_seed: int) -> tuple[ICaRLModel, bool]:
        """The model a job trains (a copy, or a fresh one of another backbone) and whether it is fresh."""
        from_scratch = model.backbone_name != backbone
        if from_scratch:
            new = self.new_model(num_classes, job_seed, backbone, hidden)
            new.memory = model.memory.copy()
            if model.num_classes == num_classes:
                new.trained_counts.copy_(model.trained_counts)
            new.rounds.copy_(model.rounds)
            return new, True
        new = copy.deepcopy(model).cpu()
        if new.hidden != hidden or new.num_classes != num_classes:
            with torch.random.fork_rng():
                torch.manual_seed(job_seed)
                new.head = build_head(new.feature_dim, hidden, num_classes)
            if new.num_classes != num_classes:
                new.class_means = torch.zeros(num_classes, new.feature_dim)
                new.has_mean = torch.zeros(num_classes, dtype=torch.bool)
                new.trained_counts = torch.zeros(num_classes, dtype=torch.int64)
            new.hidden, new.num_classes = hidden, num_classes
        return new, False

    def job_rows(self, model: nn.Module, train_df: pd.DataFrame, val_df: pd.DataFrame) -> pd.DataFrame:
        """The pool and the model's exemplars: every sample whose crop a ``retrain`` of ``model`` reads."""
        rows = super().job_rows(model, train_df, val_df)
        if isinstance(model, ICaRLModel) and len(model.memory):
            rows = pd.concat([rows, model.memory[["path", "x0", "y0", "x1", "y1"]]], ignore_index=True)
        return rows

    def retrain(self, model: nn.Module, config: RetrainConfig, train_df: pd.DataFrame,  # noqa: PLR0915 - to be split
                val_df: pd.DataFrame, stream_set: StreamSet, seed: int,
                distill: bool = True) -> tuple[ICaRLModel, TrainReport]:
        """Train a copy of ``model`` on the pool plus its exemplars, then herd its next memory; ``model`` is untouched.

        ``distill``: use ``model`` as the teacher (False for an untrained start; a fresh model never is one).
        """
        t0 = time.perf_counter()
        job = self.params(config)
        camera = _camera_of(train_df)
        train_df, val_df = _labelled(train_df), _labelled(val_df)
        if train_df.empty:
            raise EkyaError(f"retraining camera {camera!r} with {config.name!r}: no teacher-labelled training "
                            "samples; check the labeler and the window's training pool")
        start = model if isinstance(model, ICaRLModel) else ICaRLModel.from_edge(model)
        in_memory = set(_keys(start.memory))
        # How much of the window's whole pool the memory already holds: free to count, and what the
        # micro-profiler needs to size a job at another data fraction from this one.
        overlap = float(np.mean([k in in_memory for k in _keys(train_df)])) if in_memory else 0.0
        train_df = subsample(train_df, job.data_fraction, derive_seed(seed, "fraction", camera, config.name),
                             key=f"configspace config {config.name!r}: data_fraction")
        num_classes = len(stream_set.classes)
        job_seed = derive_seed(seed, "job", camera, config.name)
        # A fresh model (the base job) has nothing to distil; any other model is a trained teacher.
        trained = not isinstance(model, ICaRLModel) or model.trained
        teacher_model = model if (distill and trained) else None

        # The pool: old exemplars first (their stored order is their herding rank), then new samples.
        old = start.memory
        new_rows = train_df[np.array([k not in in_memory for k in _keys(train_df)], dtype=bool)]
        pool = pd.concat([old, as_memory(new_rows.assign(round=int(start.rounds) + 1))], ignore_index=True)
        from_old = np.arange(len(pool)) < len(old)

        new, from_scratch = self._start(start, job.backbone, job.hidden, num_classes, job_seed)
        new.to(self.device)
        x_pool, y_pool = self._tensors(pool, stream_set, "teacher_label")
        x_va, y_va = self._tensors(val_df, stream_set, "teacher_label")
        flops = sample_flops(new.backbone_name, new.hidden, num_classes, new.image_size)
        nme = 2.0 * new.feature_dim * num_classes  # one sample's distances to every class mean
        pool_once = 0.0  # FLOPs over the pool paid once per job beyond feature caching

        with torch.random.fork_rng():
            torch.manual_seed(job_seed)
            if job.frozen:
                f_pool, f_va = self.frozen_features(new, x_pool, x_va)
                inputs, val_inputs, net = f_pool, f_va, new.head
                passes = (flops.backbone_forward, flops.head_train, flops.head_forward)
                once = passes[0] * (len(x_pool) + len(x_va))
            else:
                new.requires_grad_(True)
                f_pool = None
                inputs, val_inputs, net = x_pool, x_va, new
                passes = (0.0, flops.full_train, flops.forward)
                once = 0.0
            # Under a frozen backbone the teacher's backbone is the student's, so only its head runs.
            t_logits, pool_once = self._teacher_logits(teacher_model, x_pool, f_pool if not from_scratch else None)
            targets = None
            if self.loss != "ce_kd":
                targets = self._bce_targets(teacher_model, y_pool, t_logits, num_classes)
            train = Batches(inputs, torch.arange(len(pool), device=self.device), job.batch_size, seed=job_seed)
            val = Batches(val_inputs, y_va, self.eval_batch_size)
            module = ICaRLModule(net, job.frozen, self.loss, y_pool, t_logits if self.loss == "ce_kd" else None,
                                 targets, self.kd_weight, self.temperature, job.lr, job.optimizer, job.momentum,
                                 job.weight_decay)
            module = fit(module, train, val, job.epochs, self.device)
            per_epoch = passes[1] * train.samples + passes[2] * val.samples

            new.to(self.device).eval()
            with torch.no_grad():
                if f_pool is None:  # the backbone trained: herding needs the pool's features anew
                    f_pool = _batched(new.features, x_pool, self.eval_batch_size)
                    pool_once += flops.backbone_forward * len(x_pool)
                # A frozen backbone is the starting model's, with which its exemplars' flipped
                # features were computed: those it keeps need no second pass.
                same = job.frozen and not from_scratch and start.flipped is not None and len(start.flipped) == len(old)
                herding, flipped = self._remember(new, pool, x_pool, f_pool, from_old,
                                                  set(train_df["teacher_label"].tolist()),
                                                  start.flipped if same else None)
                pool_once += herding
                # The model serves by its class means, so that is the validation accuracy it reports,
                # on features already computed: cached (frozen backbone) or kept from the validation
                # of the restored epoch; only without one (no validation ran) is there a pass to pay.
                f_served = f_va if job.frozen else module.best_val_features
                val_once = nme
                if f_served is None:
                    f_served = _batched(new.features, x_va, self.eval_batch_size)
                    val_once += flops.backbone_forward
                served = (int((new.nme_scores(f_served).argmax(dim=1) == y_va).sum()) / len(y_va)
                          if len(y_va) else float("nan"))
        new.cpu()
        new.trained_counts += torch.bincount(y_pool.cpu(), minlength=num_classes)[:num_classes]
        new.rounds += 1
        new.requires_grad_(True)
        new.eval()
        report = TrainReport(
            epochs=job.epochs, samples_seen=train.samples * job.epochs,
            train_flops=float(flipped + once + pool_once + val_once * len(x_va) + per_epoch * job.epochs),
            val_acc=list(module.val_acc), wall_seconds=time.perf_counter() - t0, train_samples=len(train_df),
            val_samples=len(x_va), from_scratch=from_scratch, pass_flops=passes, extra_train_samples=len(old),
            extra_overlap=overlap, train_once_flops=pool_once / len(pool), val_once_flops=val_once,
            fixed_flops=flipped, val_accuracy=served,
        )
        return new, report

    def _teacher_logits(self, teacher: nn.Module | None, x_pool: torch.Tensor,
                        same_backbone_features: torch.Tensor | None) -> tuple[torch.Tensor | None, float]:
        """The old model's logits on the pool (once per job) and their FLOPs; (None, 0) without a teacher.

        ``same_backbone_features``: the pool's features under a frozen backbone the teacher shares,
        so only the teacher's head runs.
        """
        if teacher is None or (self.loss == "ce_kd" and self.kd_weight == 0):
            return None, 0.0
        t = self._on_device(teacher)
        was_training = t.training
        t.eval()
        tf = sample_flops(t.backbone_name, t.hidden, t.num_classes, t.image_size)
        try:
            with torch.no_grad():
                if same_backbone_features is not None:
                    return _batched(t.head, same_backbone_features, self.eval_batch_size), tf.head_forward * len(x_pool)
                return (_batched(lambda x: _head_logits(t, x), x_pool, self.eval_batch_size),
                        tf.forward * len(x_pool))
        finally:
            t.train(was_training)

    def _bce_targets(self, teacher: nn.Module | None, labels: torch.Tensor, t_logits: torch.Tensor | None,
                     num_classes: int) -> torch.Tensor:
        """BCE targets of the pool for ``bce`` / ``bce_adaptive`` (one-hot without a teacher)."""
        if isinstance(teacher, ICaRLModel) and teacher.num_classes == num_classes:
            old = teacher.has_mean.cpu().clone()
            n_old = teacher.trained_counts.cpu().to(torch.float64)
        else:  # a plain trained model: every output counts as old, its training counts are unknown
            old = torch.ones(num_classes, dtype=torch.bool)
            n_old = torch.zeros(num_classes, dtype=torch.float64)
        if self.loss == "bce":
            weight = torch.ones(num_classes, dtype=torch.float64)
            if t_logits is not None and bool(old.all()) and not self._warned_bce:
                log.warning("learner.icarl.loss=bce: every class is already old, so every target is the old "
                            "model's output and the labels no longer act; use ce_kd or bce_adaptive for classes "
                            "that recur")
                self._warned_bce = True
        else:
            n_new = torch.bincount(labels.cpu(), minlength=num_classes)[:num_classes].to(torch.float64)
            total = n_old + n_new
            weight = torch.where(total > 0, n_old / total.clamp(min=1), torch.ones_like(total))
        return bce_targets(labels, num_classes, t_logits, old.to(labels.device), weight.to(labels.device))

    def _remember(self, model: ICaRLModel, pool: pd.DataFrame, x_pool: torch.Tensor, f_pool: torch.Tensor,
                  from_old: np.ndarray, present: set[int],
                  old_flipped: torch.Tensor | None = None) -> tuple[float, float]:
        """Herd the next memory from ``pool``, set the class means; (herding, flipped pass) FLOPs beyond ``f_pool``.

        Called before this job's counts are added, so ``trained_counts`` names the classes of earlier jobs.
        ``old_flipped``: the old exemplars' (the first pool rows') flipped features, when ``model``'s
        backbone is still the one they were computed with; only the other exemplars get a flipped pass.
        """
        fhat = normalise(f_pool)
        labels = pool["teacher_label"].to_numpy()
        known = set(torch.nonzero(model.trained_counts > 0).flatten().tolist())
        pick = pick_memory(labels, from_old, present, fhat, self.memory, known)
        rows = torch.as_tensor(pick.rows, dtype=torch.long, device=x_pool.device)
        reuse = (rows < len(old_flipped)) if old_flipped is not None else torch.zeros_like(rows, dtype=torch.bool)
        fresh = rows[~reuse]
        flipped = torch.empty(len(rows), model.feature_dim, dtype=fhat.dtype, device=fhat.device)
        if len(fresh):
            x_fresh = torch.flip(x_pool.index_select(0, fresh), dims=[3])
            flipped[~reuse] = normalise(_batched(model.features, x_fresh, self.eval_batch_size))
        if bool(reuse.any()):
            flipped[reuse] = old_flipped.to(fhat.device, fhat.dtype).index_select(0, rows[reuse])
        kept = fhat.index_select(0, rows)
        mem_labels = torch.as_tensor(labels[pick.rows], dtype=torch.long, device=fhat.device)
        means = torch.zeros(model.num_classes, model.feature_dim, device=fhat.device)
        has = torch.zeros(model.num_classes, dtype=torch.bool, device=fhat.device)
        for c in sorted(set(labels[pick.rows].tolist())):
            sel = mem_labels == c
            mean = (kept[sel].mean(0) + flipped[sel].mean(0)) / 2
            means[c] = normalise(mean[None])[0]
            has[c] = True
        model.class_means = means.to(model.class_means.device)
        model.has_mean = has.to(model.has_mean.device)
        model.memory = as_memory(pool.iloc[pick.rows])
        model.flipped = flipped.cpu()
        fl = sample_flops(model.backbone_name, model.hidden, model.num_classes, model.image_size)
        return pick.flops, fl.backbone_forward * len(fresh)


def _keys(df: pd.DataFrame) -> list[tuple]:
    """Each row's crop key (equal keys are the same sample)."""
    return list(zip(*(df[c].tolist() for c in CROP_KEY)))


__all__ = ["ICaRLLearner"]
