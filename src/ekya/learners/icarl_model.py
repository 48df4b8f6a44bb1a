"""The iCaRL edge model: an EdgeModel that carries its exemplar memory and classifies by the nearest mean of exemplars.

The memory travels with the model (one model per camera, so one memory per camera): a small table
of the exemplar samples (enough columns for ``CropCache.images`` to load their crops again, their
teacher label and the lineage's job that admitted them) plus the class means, a buffer. ``forward``
returns negative squared distances from the normalised feature to each normalised class mean, so
its argmax is the nearest mean and ``predict``/``hits``/``evaluate`` work unchanged. A class with no
exemplars scores -inf: NME can only predict what it remembers, and such a class was never in any
training pool of the lineage. A model with no class mean at all (freshly initialised) falls back to
the head's logits. ``logits`` is always the head, the training-time output.

The model also keeps its exemplars' normalised flipped-crop features (``flipped``), computed with
its own final weights when its memory was chosen: a later job that keeps the backbone frozen keeps
those weights, so the exemplars it retains need no second flipped pass.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from ekya.learners.herding import normalise
from ekya.learners.model import EdgeModel

#: The exemplar table's columns and their dtypes (fixed, so a saved memory loads back identical).
MEMORY_SCHEMA: dict[str, str] = {"camera": "str", "idx": "int64", "timestamp": "float64", "path": "str",
                                 "x0": "int64", "y0": "int64", "x1": "int64", "y1": "int64", "label": "int64",
                                 "teacher_label": "int64", "round": "int64"}
#: Columns that identify a crop (the CropCache key): equal keys are the same sample.
CROP_KEY = ("path", "x0", "y0", "x1", "y1")


def empty_memory() -> pd.DataFrame:
    """An exemplar table with no rows."""
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in MEMORY_SCHEMA.items()})


def as_memory(df: pd.DataFrame) -> pd.DataFrame:
    """``df``'s memory columns with the memory dtypes and a fresh 0..n-1 index."""
    return df[list(MEMORY_SCHEMA)].astype(MEMORY_SCHEMA).reset_index(drop=True)


class ICaRLModel(EdgeModel):
    """An EdgeModel plus exemplar memory, class means and the lineage's per-class training counts."""

    def __init__(self, backbone: str, hidden: int, num_classes: int, image_size: int) -> None:
        super().__init__(backbone, hidden, num_classes, image_size)
        self.register_buffer("class_means", torch.zeros(self.num_classes, self.feature_dim))
        self.register_buffer("has_mean", torch.zeros(self.num_classes, dtype=torch.bool))
        #: samples per class in the pools of every iCaRL job of this lineage (the adaptive BCE's n_old)
        self.register_buffer("trained_counts", torch.zeros(self.num_classes, dtype=torch.int64))
        #: iCaRL jobs in this lineage (the base model's job is 1)
        self.register_buffer("rounds", torch.zeros((), dtype=torch.int64))
        self.memory: pd.DataFrame = empty_memory()
        #: normalised features of each exemplar's flipped crop under this model's backbone, row i for
        #: memory row i (None: not computed with these weights, e.g. a model built from an EdgeModel)
        self.flipped: torch.Tensor | None = None

    @classmethod
    def from_edge(cls, model: EdgeModel) -> ICaRLModel:
        """An ICaRLModel with ``model``'s weights and an empty memory (on the CPU)."""
        with torch.random.fork_rng(devices=[]):  # the weights are overwritten at once
            new = cls(model.backbone_name, model.hidden, model.num_classes, model.image_size)
        missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
        if unexpected or not set(missing) <= {"class_means", "has_mean", "trained_counts", "rounds"}:
            raise ValueError(f"not an EdgeModel's weights: unexpected {unexpected}, missing {missing}")
        return new.train(model.training)

    @property
    def trained(self) -> bool:
        """Whether any iCaRL job (or a loaded checkpoint) has given this model class means."""
        return bool(self.has_mean.any()) or int(self.rounds) > 0

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The head's logits of uint8 crops (what training and epoch selection use)."""
        return self.head(self.features(images))

    def nme_scores(self, features: torch.Tensor) -> torch.Tensor:
        """-||normalised feature - class mean||^2 per class; -inf for classes without exemplars."""
        f = normalise(features)
        means = self.class_means.to(f.dtype)
        d = (f * f).sum(1, keepdim=True) - 2.0 * f @ means.T + (means * means).sum(1)
        return torch.where(self.has_mean, -d, torch.full_like(d, -torch.inf))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """NME scores of uint8 crops (head logits while no class has a mean)."""
        if not bool(self.has_mean.any()):
            return self.logits(images)
        return self.nme_scores(self.features(images))


def memory_state(memory: pd.DataFrame) -> dict[str, list[Any]]:
    """The exemplar table as plain lists per column (loads with ``torch.load(weights_only=True)``)."""
    return {c: as_memory(memory)[c].tolist() for c in MEMORY_SCHEMA}


def memory_from_state(state: dict[str, list[Any]]) -> pd.DataFrame:
    """The exemplar table ``memory_state`` wrote."""
    return as_memory(pd.DataFrame({c: state[c] for c in MEMORY_SCHEMA}))


def icarl_model_state(model: ICaRLModel) -> dict[str, Any]:
    """Architecture, a CPU copy of the weights and buffers, and the exemplar table."""
    state = model.state_dict()
    for key, value in state.items():
        state[key] = value.detach().to("cpu", copy=True)
    flipped = None if model.flipped is None else model.flipped.detach().to("cpu", copy=True)
    return {"arch": {**model.describe(), "model": "icarl"}, "state_dict": state, "memory": memory_state(model.memory),
            "flipped": flipped}


def icarl_model_from_state(state: dict[str, Any]) -> ICaRLModel:
    """The ICaRLModel an ``icarl_model_state`` dict describes (memory and means included), eval mode, CPU."""
    arch = dict(state["arch"])
    with torch.random.fork_rng(devices=[]):
        model = ICaRLModel(arch["backbone"], arch["hidden"], arch["num_classes"], arch["image_size"])
    model.load_state_dict(state["state_dict"])
    model.memory = memory_from_state(state["memory"])
    model.flipped = state.get("flipped")  # absent in states written before it was kept: computed anew
    return model.eval()
