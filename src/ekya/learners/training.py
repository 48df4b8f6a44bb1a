"""Continuous fine-tuning as a Lightning module, and the lean fit loop around it.

The same module trains either the whole edge model (inputs: uint8 crops) or the head alone on
cached backbone features (frozen backbone: the features never change, so they are computed once
per job rather than once per epoch). Validation runs after every epoch; the best-validation
weights are restored at the end, and only epochs that really trained are candidates, so a
one-epoch job returns its trained weights (the original kept the initial ones).

Batches come from in-memory tensors through a seeded permutation, so a job is deterministic and
no DataLoader worker, collation or per-sample indexing sits between the tensors and the model. The
tensors may live on the training device already; the permutation is drawn on the CPU either way,
so the batches do not depend on the device.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

from ekya.learners.distill import kd_loss
from ekya.seeds import derive_seed

#: layers that normalise by batch statistics in train mode (and learn running ones for eval mode)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class Batches:
    """Mini-batches of in-memory (x, y) tensors; shuffled with its own generator when ``seed`` is given.

    ``soft``: per-sample teacher logits, yielded as a third tensor. ``memory``: (x, y, soft or None)
    of a replay memory; with a seed, each batch of ``size`` pool samples gets
    ``round(size * ratio / (1 - ratio))`` memory samples (at most all of them), drawn without
    replacement by a second seeded generator, so ``ratio`` is the memory's share of the batch.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int | None = None,
                 soft: torch.Tensor | None = None,
                 memory: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
                 ratio: float = 0.0) -> None:
        self.x, self.y, self.soft = x, y, soft
        self.batch_size = max(1, int(batch_size))
        self.generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        n = len(y)
        # A trailing batch of one sample is skipped when shuffling (training): BatchNorm cannot
        # normalise a single sample. Which sample sits there changes every epoch.
        self.sizes = [min(self.batch_size, n - i) for i in range(0, n, self.batch_size)]
        if self.generator is not None and len(self.sizes) > 1 and self.sizes[-1] == 1:
            self.sizes.pop()
        self.memory = memory if memory is not None and len(memory[1]) > 0 and self.generator is not None else None
        self.memory_sizes = [0] * len(self.sizes)
        self.memory_generator = None
        if self.memory is not None:
            if not 0.0 < float(ratio) < 1.0:
                raise ValueError(f"Batches: ratio must be in (0, 1) with a memory, got {ratio}")
            share = float(ratio) / (1.0 - float(ratio))
            self.memory_sizes = [min(len(self.memory[1]), int(round(s * share))) for s in self.sizes]
            self.memory_generator = torch.Generator().manual_seed(derive_seed(int(seed), "memory"))

    @property
    def largest_batch(self) -> int:
        """Samples in the largest batch a pass yields (memory samples included); 0 when empty."""
        return max((s + m for s, m in zip(self.sizes, self.memory_sizes)), default=0)

    @property
    def samples(self) -> int:
        """Samples one pass yields (memory samples included)."""
        return sum(self.sizes) + sum(self.memory_sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.y)
        order = None
        if self.generator is not None:
            order = torch.randperm(n, generator=self.generator).to(self.x.device)
        start = 0
        for size, extra in zip(self.sizes, self.memory_sizes):
            if order is None:
                batch = [t[start:start + size] for t in self._tensors()]
            else:
                idx = order[start:start + size]
                batch = [t.index_select(0, idx) for t in self._tensors()]
            start += size
            if extra:
                mx, my, msoft = self.memory
                pick = torch.randperm(len(my), generator=self.memory_generator)[:extra].to(mx.device)
                more = [mx, my] + ([msoft] if self.soft is not None else [])
                batch = [torch.cat([b, m.index_select(0, pick)]) for b, m in zip(batch, more)]
            yield tuple(batch)

    def _tensors(self) -> list[torch.Tensor]:
        return [self.x, self.y] + ([self.soft] if self.soft is not None else [])


class FinetuneModule(pl.LightningModule):
    """Cross-entropy fine-tuning of ``net`` (the whole model, or the head on features).

    With ``kd_weight`` > 0 and batches that carry teacher logits, the loss adds
    ``kd_weight * kd_loss(student, teacher, temperature)`` (learning without forgetting).
    """

    def __init__(self, net: nn.Module, lr: float, optimizer: str = "adam", momentum: float = 0.9,
                 weight_decay: float = 0.0, kd_weight: float = 0.0, temperature: float = 2.0) -> None:
        super().__init__()
        self.net = net
        self.lr, self.optimizer_name = float(lr), str(optimizer)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.kd_weight, self.temperature = float(kd_weight), float(temperature)
        self.val_acc: list[float] = []
        self.best_acc = -1.0
        self.best_state: dict[str, torch.Tensor] | None = None
        self._correct = 0
        self._total = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        if self.kd_weight > 0 and len(batch) > 2:
            loss = loss + self.kd_weight * kd_loss(logits, batch[2], self.temperature)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._correct, self._total = 0, 0

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        x, y = batch[0], batch[1]
        self._correct += int((self.net(x).argmax(dim=1) == y).sum())
        self._total += len(y)

    def on_validation_epoch_end(self) -> None:
        if self._total == 0:
            return
        acc = self._correct / self._total
        self.val_acc.append(acc)
        # Ties go to the later epoch: equal validation accuracy after more training.
        if acc >= self.best_acc:
            self.best_acc = acc
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.net.parameters() if p.requires_grad]
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning's own per-fit banners, hints and warnings for this fit only; errors still propagate."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        # Only warnings raised inside Lightning (its hints for a barebones loop without DataLoaders);
        # catch_warnings puts the process's filters back on exit.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"lightning(\.|$)")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def fit(module: FinetuneModule, train: Batches, val: Batches | None, epochs: int,
        device: torch.device = torch.device("cpu")) -> FinetuneModule:
    """Train ``module`` for ``epochs`` on ``device`` with validation after each; restore the best-validation weights.

    ``module.net`` trains in train mode, whatever mode it arrived in (models are handed around in
    eval mode): its BatchNorm layers normalise by batch statistics and learn their running ones.
    Lightning validates in eval mode and puts each submodule's mode back after. The net is handed
    back in eval mode, as it serves. A net that is a head on cached features leaves the backbone,
    and its statistics, as they were. Lightning hands the module back on the CPU.
    ``deterministic`` is left unset: Lightning would switch deterministic algorithms on for the
    whole process; the entry point decides that once.
    """
    module.net.train()
    if train.largest_batch < 2:
        # One sample per batch has no batch statistics (BatchNorm refuses a 1x1 map of one
        # sample): such a job normalises by the running statistics it started from.
        for m in module.net.modules():
            if isinstance(m, _BATCHNORM):
                m.eval()
    has_val = val is not None and len(val) > 0
    devices = [device.index] if device.index is not None else 1
    with _quiet():
        trainer = pl.Trainer(
            accelerator=device.type, devices=devices, max_epochs=int(epochs), barebones=True, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, limit_val_batches=1.0 if has_val else 0,
        )
        trainer.fit(module, train_dataloaders=train, val_dataloaders=val if has_val else None)
    if module.best_state is not None:
        module.net.load_state_dict(module.best_state)
    module.net.eval()
    return module
