"""Teachers ("golden models"): fill a StreamSet's ``teacher_label`` column.

A teacher is any object with a ``name`` and ``label(stream_set) -> np.ndarray`` (one class id per
sample row, -1 for "no label"). ``apply_teacher`` is the one place the column is written: loaders
return unlabelled StreamSets, and the run applies the teacher its top-level ``labeler`` config group
names (``conf/labeler/*.yaml``):

- ``ground_truth``: the dataset's own labels.
- ``noisy``: the ground truth with a seeded fraction (1 - accuracy) flipped to another class,
  to emulate the paper's 84-87%-accurate golden models without their cost.
- ``classifier``: a torchvision classifier checkpoint the user names (e.g. a COCO-trained one,
  mapped through ``ekya.streams.classes``), run on the crops.
- ``trained``: a larger model trained here on the labelled bootstrap data (``ekya.labels.trained``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.labels.weights import load_torchvision_checkpoint
from ekya.streams.classes import DATASET_CLASSES, class_map
from ekya.streams.samples import StreamSet

if TYPE_CHECKING:
    import torch


@runtime_checkable
class Teacher(Protocol):
    """Anything that labels every sample of a StreamSet."""

    name: str

    def label(self, stream_set: StreamSet) -> np.ndarray:
        """One class id per row of ``stream_set.samples`` (-1: no label)."""
        ...


def apply_teacher(stream_set: StreamSet, teacher: Teacher) -> StreamSet:
    """A copy of ``stream_set`` (and of ``meta['pretrain']``) whose ``teacher_label`` is the teacher's labels.

    A camera the teacher leaves without any label cannot be trained on, so it is an error.
    """
    labels = np.asarray(teacher.label(stream_set))
    n, k = len(stream_set.samples), len(stream_set.classes)
    if labels.shape != (n,):
        raise EkyaError(f"teacher {teacher.name!r} gave {labels.shape} labels for {n} samples of {stream_set.name!r}")
    if bool(((labels < -1) | (labels >= k)).any()):
        raise EkyaError(f"teacher {teacher.name!r} gave a label outside -1..{k - 1} for {stream_set.name!r}")
    labelled = pd.Series(labels >= 0).groupby(stream_set.samples["camera"].to_numpy(), sort=True).any()
    if not bool(labelled.all()):
        cam = str(labelled.index[~labelled.to_numpy()][0])
        raise EkyaError(f"camera {cam!r} of {stream_set.name!r}: no sample has a teacher label (teacher "
                        f"{teacher.name!r} gave each -1, as for a video ingested without classes); set a labeler "
                        "that classifies crops, e.g. labeler=classifier labeler.weights=PATH, or re-ingest with "
                        "a labeler or a torchvision detector")
    samples = stream_set.samples.copy()
    samples["teacher_label"] = labels.astype(np.int64)
    meta = dict(stream_set.meta, teacher=teacher.name)
    # Pretraining data (kept apart from the streams) is labelled by the same teacher, after the
    # streams, so that a teacher fitted on it (``trained``) is fitted once.
    if isinstance(meta.get("pretrain"), StreamSet):
        meta["pretrain"] = apply_teacher(meta["pretrain"], teacher)
    return replace(stream_set, samples=samples, meta=meta)


class GroundTruthTeacher:
    """The dataset's own labels (human labels, or the labels written when the dataset was prepared)."""

    name = "ground_truth"

    def label(self, stream_set: StreamSet) -> np.ndarray:
        """Copy the ``label`` column."""
        return stream_set.samples["label"].to_numpy(np.int64)


class NoisyTeacher:
    """Ground truth with a seeded fraction (1 - accuracy) of labels flipped uniformly to another class."""

    def __init__(self, accuracy: float = 0.85, seed: int = 0) -> None:
        if not 0.0 <= float(accuracy) <= 1.0:
            raise EkyaError(f"labeler.accuracy must be in [0, 1], got {accuracy}")
        self.accuracy, self.seed = float(accuracy), int(seed)
        self.name = f"noisy({self.accuracy:g})"

    def label(self, stream_set: StreamSet) -> np.ndarray:
        """Flip labels per camera with a generator seeded by (seed, camera): adding a camera changes no other."""
        df = stream_set.samples
        out = df["label"].to_numpy(np.int64).copy()
        k = len(stream_set.classes)
        for cam in sorted(df["camera"].unique()):
            rows = np.flatnonzero((df["camera"] == cam).to_numpy())
            rows = rows[np.argsort(df["idx"].to_numpy()[rows], kind="stable")]
            rng = np.random.default_rng([self.seed, zlib.crc32(str(cam).encode())])
            flip = rng.random(len(rows)) >= self.accuracy
            shift = rng.integers(1, k, len(rows)) if k > 1 else np.zeros(len(rows), np.int64)
            known = out[rows] >= 0
            sel = rows[flip & known]
            out[sel] = (out[sel] + shift[flip & known]) % k  # a shift of 1..k-1 never lands on the true class
        return out


def output_to_dataset(logits: np.ndarray, output: str, classes: tuple[str, ...]) -> np.ndarray:
    """Map classifier logits to dataset class ids.

    ``output='dataset'``: the classifier already predicts the dataset's classes. ``coco80``/``coco91``:
    its output i is COCO id i + 1 (coco80) or i (coco91, index 0 the background); each dataset class
    scores the best logit among its COCO ids, so the answer is always one of the dataset's classes.
    """
    if output == "dataset":
        if logits.shape[1] != len(classes):
            raise EkyaError(f"labeler.output=dataset but the classifier has {logits.shape[1]} outputs for "
                            f"{len(classes)} classes; set labeler.output=coco80|coco91 for a COCO model")
        return logits.argmax(1)
    target = next((n for n, c in DATASET_CLASSES.items() if tuple(c) == tuple(classes)), None)
    if target is None:
        raise EkyaError(f"no COCO mapping for classes {classes}; use labeler.output=dataset")
    if output not in ("coco80", "coco91"):
        raise EkyaError(f"labeler.output={output!r}; use dataset, coco80 or coco91")
    cmap = class_map(output, target)  # type: ignore[arg-type]
    offset = 1 if output == "coco80" else 0
    scores = np.full((len(logits), len(classes)), -np.inf)
    for cid, cls in cmap.items():
        col = cid - offset
        if col < logits.shape[1]:
            scores[:, cls] = np.maximum(scores[:, cls], logits[:, col])
    if np.isinf(scores).all(axis=0).any():
        raise EkyaError(f"the classifier's {logits.shape[1]} outputs do not cover every class of {classes} "
                        f"in {output} numbering; is labeler.output right?")
    return scores.argmax(1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None: leave as is), restoring the previous count after.

    On a shared or small CPU, fewer threads than cores avoids OpenMP threads spinning against other
    processes, which can make training many times slower.
    """
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def classify(model: torch.nn.Module, stream_set: StreamSet, image_size: int, batch_size: int,
             device: str = "cpu") -> np.ndarray:
    """Logits of ``model`` for every sample's crop, in row order."""
    import torch

    from ekya.labels.crops import iter_crop_batches

    rows = np.arange(len(stream_set.samples))
    out = []
    model = model.to(device)
    with torch.inference_mode():
        for _, x in iter_crop_batches(stream_set, rows, image_size, batch_size):
            out.append(model(x.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


class ClassifierTeacher:
    """A torchvision classifier checkpoint the user names, run on every crop."""

    def __init__(self, weights: str, arch: str = "resnet18", output: str = "dataset", num_outputs: int | None = None,
                 image_size: int = 224, batch_size: int = 64, device: str = "cpu",
                 num_threads: int | None = None) -> None:
        self.weights, self.arch, self.output, self.num_threads = weights, arch, output, num_threads
        self.num_outputs, self.image_size, self.batch_size = num_outputs, int(image_size), int(batch_size)
        self.device = device
        self.name = f"classifier({arch}:{Path(weights).name})"

    def label(self, stream_set: StreamSet) -> np.ndarray:
        """Classify every crop and map the outputs to the dataset's classes."""
        n_out = self.num_outputs or {"dataset": len(stream_set.classes), "coco80": 80, "coco91": 91}.get(self.output)
        if n_out is None:
            raise EkyaError(f"labeler.output={self.output!r}; use dataset, coco80 or coco91")
        model = load_torchvision_checkpoint(self.arch, self.weights, n_out, "labeler", count_key="num_outputs")
        with torch_threads(self.num_threads):
            logits = classify(model, stream_set, self.image_size, self.batch_size, self.device)
        return output_to_dataset(logits, self.output, stream_set.classes)


def teacher_agreement(samples: pd.DataFrame) -> float:
    """Fraction of rows with a known label where teacher_label equals label (the golden model's accuracy)."""
    known = samples["label"] >= 0
    if not known.any():
        return float("nan")
    return float((samples.loc[known, "teacher_label"] == samples.loc[known, "label"]).mean())
