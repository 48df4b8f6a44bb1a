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

A job follows the fine-tuner's template (``ekya.learners.job``): iCaRL supplies the job's pool and
teacher (``prepare_job``), the lineage a started model keeps (``start_model``), the fit with its
loss (``fit_job``), herding and the class means (``after_fit``) and the report's extra passes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.learners.base import TrainReport
from ekya.learners.finetune import FinetuneLearner
from ekya.learners.flops import SampleFlops, sample_flops
from ekya.learners.herding import normalise, pick_memory
from ekya.learners.icarl_model import ICaRLModel, as_memory, icarl_model_from_state, icarl_model_state
from ekya.learners.icarl_module import ICaRLModule, bce_targets
from ekya.learners.inference import batched, serving
from ekya.learners.job import Fitted, Job
from ekya.learners.model import EdgeModel
from ekya.learners.settings import ICaRLSettings
from ekya.learners.tables import camera_of, crop_keys, crop_rows, labelled
from ekya.learners.training import Batches, fit
from ekya.seeds import derive_seed
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window

log = logging.getLogger(__name__)


def _head_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The training-time output of a model: an ICaRLModel's head, any other model's forward."""
    return model.logits(x) if isinstance(model, ICaRLModel) else model(x)


@dataclass
class ICaRLJob(Job):
    """An iCaRL job: ``model`` is the starting model as an ICaRLModel; plus its teacher and the pool it trains on."""

    #: the model distilled from: ``model`` when it is trained and the job may distil, else None
    teacher: nn.Module | None = None
    #: fraction of ``labelled_train`` already in the starting memory (free to count; the micro-profiler
    #: sizes a job at another data fraction from it)
    overlap: float = 0.0
    #: the rows trained on: old exemplars first (their stored order is their herding rank), then new samples
    pool: pd.DataFrame | None = None
    #: which pool rows are old exemplars
    from_old: np.ndarray | None = None


@dataclass
class ICaRLFit(Fitted):
    """The fit of an iCaRL job, and what herding and NME scoring after it add to its cost and report."""

    flops: SampleFlops | None = None
    x_pool: torch.Tensor | None = None
    y_pool: torch.Tensor | None = None
    #: the pool's features under the trained backbone (the cached ones when it is frozen; None: not yet)
    f_pool: torch.Tensor | None = None
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    #: the validation features the returned model serves with, when the fit already has them
    f_val: torch.Tensor | None = None
    #: FLOPs over the pool paid once per job beyond feature caching (teacher, herding's pass and selection)
    pool_once: float = 0.0
    #: FLOPs per validation sample of scoring the returned model by its class means
    val_once: float = 0.0
    #: FLOPs of the flipped-crop pass over the new memory
    flipped: float = 0.0
    #: the returned model's validation accuracy by its class means
    served: float = float("nan")


class ICaRLLearner(FinetuneLearner):
    """iCaRL on per-camera edge models (see the module doc); every other key is the fine-tuner's."""

    def __init__(self, icarl: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # iCaRL has its own memory and distillation; the fine-tuner's would be silently unused here.
        if self.replay.on or self.lwf.weight != 0:
            raise EkyaError("learner=icarl: learner.replay.buffer must be none and learner.lwf.weight 0 (iCaRL "
                            "has its own exemplar memory and distillation: set learner.icarl.memory / kd_weight)")
        self.icarl = ICaRLSettings.of(icarl)
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
            train_df = self._split(bootstrap, derive_seed(seed, "base-split", camera_of(bootstrap)))[0]
        icarl = ICaRLModel.from_edge(model).to(self.device).eval()
        pool = as_memory(labelled(train_df).assign(round=1))
        x_pool = self.crops(stream_set).images(pool).to(self.device)
        with torch.no_grad():
            feats = batched(icarl.features, x_pool, self.eval_batch_size)
        self._remember(icarl, pool, x_pool, feats, np.zeros(len(pool), dtype=bool),
                       set(pool["teacher_label"].tolist()))
        icarl.rounds.fill_(1)
        return icarl.cpu().eval(), None

    def job_rows(self, model: nn.Module, train_df: pd.DataFrame, val_df: pd.DataFrame) -> pd.DataFrame:
        """The pool and the model's exemplars: every sample whose crop a ``retrain`` of ``model`` reads."""
        rows = super().job_rows(model, train_df, val_df)
        if isinstance(model, ICaRLModel) and len(model.memory):
            rows = crop_rows(rows, model.memory)
        return rows

    # -- retraining (the steps of JobLearner.retrain) --------------------------------------------

    def prepare_job(self, model: nn.Module, config: RetrainConfig, train_df: pd.DataFrame, val_df: pd.DataFrame,
                    stream_set: StreamSet, seed: int, distill: bool) -> ICaRLJob:
        """The template's job, starting from ``model`` as an ICaRLModel, with its teacher and its pool."""
        job = super().prepare_job(model, config, train_df, val_df, stream_set, seed, distill)
        start = model if isinstance(model, ICaRLModel) else ICaRLModel.from_edge(model)
        in_memory = set(crop_keys(start.memory))
        overlap = float(np.mean([k in in_memory for k in crop_keys(job.labelled_train)])) if in_memory else 0.0
        # A fresh model (the base job) has nothing to distil; any other model is a trained teacher.
        trained = not isinstance(model, ICaRLModel) or model.trained
        new_rows = job.train[np.array([k not in in_memory for k in crop_keys(job.train)], dtype=bool)]
        pool = pd.concat([start.memory, as_memory(new_rows.assign(round=int(start.rounds) + 1))], ignore_index=True)
        common = {f.name: getattr(job, f.name) for f in fields(Job)}
        return ICaRLJob(**{**common, "model": start}, teacher=model if (distill and trained) else None,
                        overlap=overlap, pool=pool, from_old=np.arange(len(pool)) < len(start.memory))

    def start_model(self, job: Job) -> tuple[ICaRLModel, bool]:
        """The fine-tuner's start, keeping the lineage: a fresh model takes over the memory and counts, a copy with
        another class count starts its class means and counts afresh."""
        start = job.model
        new, fresh = super().start_model(job)
        if fresh:
            new.memory = start.memory.copy()
            if start.num_classes == job.num_classes:
                new.trained_counts.copy_(start.trained_counts)
            new.rounds.copy_(start.rounds)
        elif start.num_classes != job.num_classes:
            new.class_means = torch.zeros(job.num_classes, new.feature_dim)
            new.has_mean = torch.zeros(job.num_classes, dtype=torch.bool)
            new.trained_counts = torch.zeros(job.num_classes, dtype=torch.int64)
        return new, fresh

    def fit_job(self, job: Job, new: nn.Module) -> ICaRLFit:
        """Train ``new`` on the pool (old exemplars and new samples) with the iCaRL loss against the teacher."""
        assert isinstance(job, ICaRLJob)
        p, loss = job.params, self.icarl.loss
        new.to(self.device)
        x_pool, y_pool = self.tensors(job.pool, job.stream_set, "teacher_label")
        x_va, y_va = self.tensors(job.val, job.stream_set, "teacher_label")
        flops = sample_flops(new.backbone_name, new.hidden, job.num_classes, new.image_size)
        with torch.random.fork_rng():
            torch.manual_seed(job.seed)
            (inputs, val_inputs), net, passes, once = self.job_inputs(new, p.frozen, flops, x_pool, x_va)
            f_pool = inputs if p.frozen else None
            # Under a frozen backbone the teacher's backbone is the student's, so only its head runs.
            t_logits, pool_once = self._teacher_logits(job.teacher, x_pool, f_pool if not job.from_scratch else None)
            targets = None if loss == "ce_kd" else self._bce_targets(job.teacher, y_pool, t_logits, job.num_classes)
            train = Batches(inputs, torch.arange(len(job.pool), device=self.device), p.batch_size, seed=job.seed)
            val = Batches(val_inputs, y_va, self.eval_batch_size)
            module = ICaRLModule(net, p.frozen, loss, y_pool, t_logits if loss == "ce_kd" else None, targets,
                                 self.icarl.kd_weight, self.icarl.temperature, p.lr, p.optimizer, p.momentum,
                                 p.weight_decay)
            module = fit(module, train, val, p.epochs, self.device)
            per_epoch = passes[1] * train.samples + passes[2] * val.samples
        # The validation features the returned model serves with: cached (frozen backbone) or kept
        # from the validation of the restored epoch.
        f_val = val_inputs if p.frozen else module.best_val_features
        return ICaRLFit(module, train, val, passes, once, per_epoch, len(job.train), len(x_va), flops=flops,
                        x_pool=x_pool, y_pool=y_pool, f_pool=f_pool, x_val=x_va, y_val=y_va, f_val=f_val,
                        pool_once=pool_once)

    def after_fit(self, job: Job, new: nn.Module, fitted: Fitted) -> None:
        """Herd the next memory, set the class means, score the model as it serves (by them); count the lineage."""
        assert isinstance(job, ICaRLJob) and isinstance(fitted, ICaRLFit)
        start = job.model
        new.to(self.device).eval()
        with torch.no_grad():
            if fitted.f_pool is None:  # the backbone trained: herding needs the pool's features anew
                fitted.f_pool = batched(new.features, fitted.x_pool, self.eval_batch_size)
                fitted.pool_once += fitted.flops.backbone_forward * len(fitted.x_pool)
            # A frozen backbone is the starting model's, with which its exemplars' flipped
            # features were computed: those it keeps need no second pass.
            same = (job.params.frozen and not job.from_scratch and start.flipped is not None
                    and len(start.flipped) == len(start.memory))
            herding, fitted.flipped = self._remember(new, job.pool, fitted.x_pool, fitted.f_pool, job.from_old,
                                                     set(job.train["teacher_label"].tolist()),
                                                     start.flipped if same else None)
            fitted.pool_once += herding
            fitted.served, fitted.val_once = self._served(new, fitted, job.num_classes)
        new.cpu()
        new.trained_counts += torch.bincount(fitted.y_pool.cpu(), minlength=job.num_classes)[:job.num_classes]
        new.rounds += 1

    def _served(self, new: ICaRLModel, fitted: ICaRLFit, num_classes: int) -> tuple[float, float]:
        """The model's validation accuracy by its class means, and its FLOPs per validation sample.

        The features are the fit's when it has them; only without (no validation ran) is there a pass to pay.
        """
        f_served, val_once = fitted.f_val, 2.0 * new.feature_dim * num_classes  # distances to every class mean
        if f_served is None:
            f_served = batched(new.features, fitted.x_val, self.eval_batch_size)
            val_once += fitted.flops.backbone_forward
        y_va = fitted.y_val
        served = int((new.nme_scores(f_served).argmax(dim=1) == y_va).sum()) / len(y_va) if len(y_va) else float("nan")
        return served, val_once

    def report(self, job: Job, fitted: Fitted) -> TrainReport:
        """The template's report plus every iCaRL pass (teacher, herding, flipped crops, NME scoring) and its split."""
        assert isinstance(job, ICaRLJob) and isinstance(fitted, ICaRLFit)
        train_flops = float(fitted.flipped + fitted.once + fitted.pool_once + fitted.val_once * fitted.val_samples
                            + fitted.per_epoch * job.params.epochs)
        return replace(super().report(job, fitted), train_flops=train_flops,
                       extra_train_samples=len(job.model.memory), extra_overlap=job.overlap,
                       train_once_flops=fitted.pool_once / len(job.pool), val_once_flops=fitted.val_once,
                       fixed_flops=fitted.flipped, val_accuracy=fitted.served)

    def _teacher_logits(self, teacher: nn.Module | None, x_pool: torch.Tensor,
                        same_backbone_features: torch.Tensor | None) -> tuple[torch.Tensor | None, float]:
        """The old model's logits on the pool (once per job) and their FLOPs; (None, 0) without a teacher.

        ``same_backbone_features``: the pool's features under a frozen backbone the teacher shares,
        so only the teacher's head runs.
        """
        if teacher is None or (self.icarl.loss == "ce_kd" and self.icarl.kd_weight == 0):
            return None, 0.0
        t = self._on_device(teacher)
        tf = sample_flops(t.backbone_name, t.hidden, t.num_classes, t.image_size)
        with serving(t):
            if same_backbone_features is not None:
                return batched(t.head, same_backbone_features, self.eval_batch_size), tf.head_forward * len(x_pool)
            return batched(lambda x: _head_logits(t, x), x_pool, self.eval_batch_size), tf.forward * len(x_pool)

    def _bce_targets(self, teacher: nn.Module | None, labels: torch.Tensor, t_logits: torch.Tensor | None,
                     num_classes: int) -> torch.Tensor:
        """BCE targets of the pool for ``bce`` / ``bce_adaptive`` (one-hot without a teacher)."""
        if isinstance(teacher, ICaRLModel) and teacher.num_classes == num_classes:
            old = teacher.has_mean.cpu().clone()
            n_old = teacher.trained_counts.cpu().to(torch.float64)
        else:  # a plain trained model: every output counts as old, its training counts are unknown
            old = torch.ones(num_classes, dtype=torch.bool)
            n_old = torch.zeros(num_classes, dtype=torch.float64)
        if self.icarl.loss == "bce":
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
        pick = pick_memory(labels, from_old, present, fhat, self.icarl.memory, known)
        rows = torch.as_tensor(pick.rows, dtype=torch.long, device=x_pool.device)
        reuse = (rows < len(old_flipped)) if old_flipped is not None else torch.zeros_like(rows, dtype=torch.bool)
        fresh = rows[~reuse]
        flipped = torch.empty(len(rows), model.feature_dim, dtype=fhat.dtype, device=fhat.device)
        if len(fresh):
            x_fresh = torch.flip(x_pool.index_select(0, fresh), dims=[3])
            flipped[~reuse] = normalise(batched(model.features, x_fresh, self.eval_batch_size))
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


__all__ = ["ICaRLLearner"]
