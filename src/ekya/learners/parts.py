"""Composable parts of a fine-tuning job: experience replay and learning without forgetting.

A part adds to a job's data before the fit (memory samples, teacher logits), may name rows of the
starting model's memory that the job reads, and keeps what it must after the fit (the next
buffer). ``FinetuneLearner`` runs its parts in order (replay first: LwF's teacher also scores the
memory samples); a part that is off is not in the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import nn

from ekya.learners.replay import ReplayBuffer, update_buffer
from ekya.learners.settings import LwfSettings, ReplaySettings
from ekya.seeds import derive_seed

if TYPE_CHECKING:
    from ekya.learners.finetune import FinetuneLearner
    from ekya.learners.job import Job


@dataclass
class JobData:
    """A fine-tuning job's tensors on the learner's device: pool, validation, memory and teacher logits."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_memory: torch.Tensor | None = None
    y_memory: torch.Tensor | None = None
    #: the teacher's logits of each pool sample and memory sample (None: no distillation)
    soft_train: torch.Tensor | None = None
    soft_memory: torch.Tensor | None = None
    #: FLOPs the teacher's passes cost, paid once per job
    teacher_flops: float = 0.0

    @property
    def memory_samples(self) -> int:
        """Memory samples mixed into the training batches."""
        return 0 if self.y_memory is None else len(self.y_memory)


class JobPart:
    """One composable piece of a fine-tuning job; each hook does nothing unless the part needs it."""

    def memory_rows(self, model: nn.Module) -> pd.DataFrame | None:
        """Rows of the starting model's memory a job reads beside its pool (None: none)."""
        return None

    def before_fit(self, learner: FinetuneLearner, job: Job, data: JobData) -> None:
        """Add to the job's data before it trains."""

    def after_fit(self, job: Job, new: nn.Module) -> None:
        """Keep what the part needs on the trained model."""


class Replay(JobPart):
    """Experience replay: the starting model's buffer is mixed into every batch, then learns the job's pool."""

    def __init__(self, settings: ReplaySettings) -> None:
        self.settings = settings

    def buffer_of(self, model: nn.Module) -> ReplayBuffer | None:
        """The model's replay buffer when it is of the configured kind and size (else the job starts a new one)."""
        buffer = getattr(model, "replay", None)
        if buffer is None or buffer.kind != self.settings.buffer or buffer.memory != self.settings.memory:
            return None
        return buffer

    def memory_rows(self, model: nn.Module) -> pd.DataFrame | None:
        """The buffer's rows (None when it is empty or of another kind)."""
        buffer = self.buffer_of(model)
        return buffer.rows if buffer is not None and len(buffer) else None

    def before_fit(self, learner: FinetuneLearner, job: Job, data: JobData) -> None:
        """The buffer's samples and teacher labels, as the memory the batches draw from."""
        rows = self.memory_rows(job.model)
        if rows is not None:
            data.x_memory, data.y_memory = learner.tensors(rows, job.stream_set, "teacher_label")

    def after_fit(self, job: Job, new: nn.Module) -> None:
        """The buffer learns the pool this job trained on; it travels with the retrained model."""
        start = self.buffer_of(job.model)
        if start is None:
            start = ReplayBuffer(self.settings.buffer, self.settings.memory)
        new.replay = update_buffer(start, job.train, derive_seed(job.seed, "replay"))


class Lwf(JobPart):
    """Learning without forgetting: the starting model, as it serves, is the teacher of every pool and memory sample."""

    def __init__(self, settings: LwfSettings) -> None:
        self.settings = settings

    def before_fit(self, learner: FinetuneLearner, job: Job, data: JobData) -> None:
        """The teacher's logits, computed once per job (one forward pass per pool and memory sample)."""
        if not job.distill:
            return
        data.soft_train = learner.logits(job.model, data.x_train)
        data.soft_memory = learner.logits(job.model, data.x_memory) if data.x_memory is not None else None
        data.teacher_flops = learner.forward_flops(job.model) * (len(data.x_train) + data.memory_samples)
