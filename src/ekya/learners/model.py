"""The edge model: backbone + head, with the input normalisation inside so callers pass uint8 crops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ekya.learners.backbones import build_backbone, build_head

if TYPE_CHECKING:
    from ekya.learners.replay import ReplayBuffer

# Crops are scaled to [0, 1] then centred; fixed constants (no ImageNet statistics: nothing is pretrained).
_MEAN, _STD = 0.5, 0.25


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, 3, S, S) crops -> the float batch a backbone takes."""
    return images.float().mul_(1.0 / (255.0 * _STD)).sub_(_MEAN / _STD)


class EdgeModel(nn.Module):
    """A camera's classifier: ``backbone`` features -> ``head`` logits; forward takes uint8 crops."""

    def __init__(self, backbone: str, hidden: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.backbone_name = str(backbone)
        self.hidden = int(hidden)
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        self.backbone, self.feature_dim = build_backbone(self.backbone_name, self.image_size)
        self.head = build_head(self.feature_dim, self.hidden, self.num_classes)
        #: the camera's replay buffer (learner.replay), kept with the model it trained; None without replay
        self.replay: ReplayBuffer | None = None

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features of uint8 crops."""
        return self.backbone(to_input(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of uint8 crops."""
        return self.head(self.features(images))

    def describe(self) -> dict[str, int | str]:
        """What rebuilds this architecture (stored with checkpoints)."""
        return {"backbone": self.backbone_name, "hidden": self.hidden, "num_classes": self.num_classes,
                "image_size": self.image_size}
