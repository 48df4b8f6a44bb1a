"""The ``trained`` teacher: a larger classifier trained here on the stream set's labelled bootstrap data.

Bootstrap data: ``meta['pretrain']`` when the dataset has pretraining cameras, otherwise the first
``bootstrap_fraction`` of every camera (in time order) - the data a deployment has labelled by hand
before it starts. The model (a torchvision architecture, random init: nothing is downloaded) is
trained once per teacher object and then labels every sample. Seeded and single-process, so the
same seed gives the same labels.

Training is the project's own learner when one is given (``learner``: an object with
``base_model(stream_set, bootstrap_table, seed)`` and ``predict(model, table, stream_set)``, e.g.
``ekya.learners.finetune.FinetuneLearner`` with a bigger backbone than the edge models), else a
plain torchvision training loop here (``arch``, ``epochs``, ``lr``...).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torchvision

from ekya.errors import EkyaError
from ekya.labels.crops import crop_array
from ekya.labels.teachers import classify, torch_threads
from ekya.streams.samples import StreamSet


def bootstrap_rows(stream_set: StreamSet, fraction: float) -> np.ndarray:
    """Row positions of the first ``fraction`` of every camera's samples that have a label."""
    df = stream_set.samples
    rows = []
    for cam in sorted(df["camera"].unique()):
        cam_rows = np.flatnonzero((df["camera"] == cam).to_numpy())
        cam_rows = cam_rows[np.argsort(df["idx"].to_numpy()[cam_rows], kind="stable")]
        rows.extend(cam_rows[: int(np.ceil(fraction * len(cam_rows)))])
    rows = np.asarray(rows, np.int64)
    return rows[df["label"].to_numpy()[rows] >= 0]


class TrainedTeacher:
    """A classifier trained on the labelled bootstrap data, then used as the golden model."""

    def __init__(self, arch: str = "resnet18", epochs: int = 10, lr: float = 1e-3, batch_size: int = 32,
                 image_size: int = 64, bootstrap_fraction: float = 0.2, seed: int = 0, device: str = "cpu",
                 num_threads: int | None = None, learner: Any = None) -> None:
        if not 0 < float(bootstrap_fraction) <= 1:
            raise EkyaError(f"labeler.bootstrap_fraction must be in (0, 1], got {bootstrap_fraction}")
        self.arch, self.epochs, self.lr, self.batch_size = arch, int(epochs), float(lr), int(batch_size)
        self.image_size, self.fraction, self.seed = int(image_size), float(bootstrap_fraction), int(seed)
        self.device = device
        self.num_threads, self.learner = num_threads, learner
        self.name = f"trained({getattr(learner, 'backbone', None) or arch})"
        self.model: torch.nn.Module | None = None
        self.trained_on: int = 0

    def fit(self, stream_set: StreamSet, rows: np.ndarray) -> torch.nn.Module:
        """Train the teacher on the given rows' crops and ground-truth labels."""
        labels = stream_set.samples["label"].to_numpy()[rows]
        if len(rows) == 0:
            raise EkyaError(f"the trained teacher has no labelled bootstrap samples in {stream_set.name!r}; "
                            "use a dataset with labels, pretraining cameras, or another labeler")
        torch.manual_seed(self.seed)
        try:
            model = torchvision.models.get_model(self.arch, weights=None, num_classes=len(stream_set.classes))
        except (ValueError, TypeError) as e:
            raise EkyaError(f"labeler.arch={self.arch!r} is not a torchvision classifier ({e})") from None
        model = model.to(self.device)
        x_all = torch.from_numpy(np.stack([crop_array(stream_set, int(r), self.image_size) for r in rows]))
        y_all = torch.from_numpy(labels.astype(np.int64))
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        model.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(rows), generator=gen)
            for start in range(0, len(rows), self.batch_size):
                b = order[start:start + self.batch_size]
                if len(b) < 2 and len(rows) >= 2:
                    continue  # batch norm needs two samples; the sample is seen in other epochs
                x, y = x_all[b].to(self.device), y_all[b].to(self.device)
                # Flips double the few bootstrap crops cheaply; objects are left/right symmetric.
                flip = torch.rand(len(b), generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None].to(x.device), x.flip(3), x)
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.trained_on = len(rows)
        return model.eval()

    def _fit_with_learner(self, stream_set: StreamSet, rows: np.ndarray) -> Any:
        """Train with the project's learner on the rows' ground truth (it trains on teacher_label)."""
        if len(rows) == 0:
            raise EkyaError(f"the trained teacher has no labelled bootstrap samples in {stream_set.name!r}; "
                            "use a dataset with labels, pretraining cameras, or another labeler")
        boot = stream_set.samples.iloc[rows]
        self.trained_on = len(rows)
        return self.learner.base_model(stream_set, boot.assign(teacher_label=boot["label"]), self.seed)

    def label(self, stream_set: StreamSet) -> np.ndarray:
        """Train on first use (pretraining data, else each camera's first fraction), then classify every crop."""
        with torch_threads(self.num_threads):
            return self._label(stream_set)

    def _label(self, stream_set: StreamSet) -> np.ndarray:
        if self.model is None:
            pre = stream_set.meta.get("pretrain")
            if isinstance(pre, StreamSet):
                data, rows = pre, np.flatnonzero(pre.samples["label"].to_numpy() >= 0)
            else:
                data, rows = stream_set, bootstrap_rows(stream_set, self.fraction)
            self.model = self.fit(data, rows) if self.learner is None else self._fit_with_learner(data, rows)
        if self.learner is not None:
            return np.asarray(self.learner.predict(self.model, stream_set.samples, stream_set), np.int64)
        logits = classify(self.model, stream_set, self.image_size, self.batch_size, self.device)
        return logits.argmax(1)
