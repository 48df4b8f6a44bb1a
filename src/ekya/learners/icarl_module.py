"""iCaRL's training step as a Lightning module: classification on teacher labels plus distillation from the old model.

Training batches carry pool row indices instead of labels (``Batches(x, arange(n))``), so the
per-row targets computed once per job (teacher labels, the old model's logits, mixed BCE targets)
are looked up, not recomputed. Losses (``icarl.loss``):

- ``ce_kd``: cross-entropy on the teacher labels + kd_weight * KD(T) over all outputs (PyCIL's
  form): the labels always act, which suits classes that recur;
- ``bce`` (the original): BCE-with-logits, target = one-hot with the old-class columns replaced by
  the old model's sigmoid outputs;
- ``bce_adaptive`` (the Ekya fork): old-class columns get w_c * sigmoid(old) + (1 - w_c) * one-hot,
  w_c = n_old / (n_old + n_new).

Epoch selection and the validation curve use the head's logits (cheap; the class means are
computed once, after fit, and the learner reports the served NME accuracy beside the curve).
Training the whole model, validation keeps the features of the epoch whose weights are restored,
so scoring the returned model by its class means needs no second pass over the validation set. The
network trains in whatever mode ``FinetuneModule`` trains it in, so iCaRL and fine-tuning compare
like for like.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ekya.learners.distill import kd_loss
from ekya.learners.training import FinetuneModule


class ICaRLModule(FinetuneModule):
    """Training of ``net`` (the whole ICaRLModel, or its head on cached features) with an iCaRL loss."""

    def __init__(self, net: nn.Module, head_only: bool, loss: str, labels: torch.Tensor,
                 teacher_logits: torch.Tensor | None, bce_targets: torch.Tensor | None, kd_weight: float,
                 temperature: float, lr: float, optimizer: str = "adam", momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        super().__init__(net, lr, optimizer, momentum, weight_decay)
        self.head_only = bool(head_only)
        self.loss_name = str(loss)
        self.labels, self.teacher_logits, self.bce_targets = labels, teacher_logits, bce_targets
        self.kd_weight, self.temperature = float(kd_weight), float(temperature)
        #: validation features of the restored epoch (whole-model training only; None before any)
        self.best_val_features: torch.Tensor | None = None
        self._val_features: list[torch.Tensor] = []

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Head logits of a batch (features when head-only, else uint8 crops)."""
        return self.net(x) if self.head_only else self.net.logits(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, rows = batch
        z = self.logits(x)
        if self.loss_name == "ce_kd":
            loss = F.cross_entropy(z, self.labels.index_select(0, rows))
            if self.teacher_logits is not None and self.kd_weight > 0:
                loss = loss + self.kd_weight * kd_loss(z, self.teacher_logits.index_select(0, rows), self.temperature)
            return loss
        return F.binary_cross_entropy_with_logits(z, self.bce_targets.index_select(0, rows))

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._val_features = []

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        if self.head_only:
            z = self.net(x)
        else:
            f = self.net.features(x)
            self._val_features.append(f.detach())
            z = self.net.head(f)
        self._correct += int((z.argmax(dim=1) == y).sum())
        self._total += len(y)

    def on_validation_epoch_end(self) -> None:
        kept = self.best_state
        super().on_validation_epoch_end()
        if self.best_state is not kept and self._val_features:  # this epoch's weights are the ones restored
            self.best_val_features = torch.cat(self._val_features)
        self._val_features = []


def bce_targets(labels: torch.Tensor, num_classes: int, teacher_logits: torch.Tensor | None,
                old: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-row BCE targets: one-hot, old-class columns mixed ``weight * sigmoid(teacher) + (1 - weight) * one-hot``."""
    onehot = F.one_hot(labels, num_classes).to(torch.float32)
    if teacher_logits is None or not bool(old.any()):
        return onehot
    w = torch.where(old, weight.to(torch.float32), torch.zeros_like(weight, dtype=torch.float32)).to(onehot.device)
    return w * torch.sigmoid(teacher_logits.to(torch.float32)) + (1.0 - w) * onehot
