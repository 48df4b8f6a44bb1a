"""Object detectors for video ingestion: boxes (full-frame pixels), a score and, if known, a COCO class.

- ``BackgroundSubtractor`` (default, no weights): OpenCV MOG2 or KNN background model for fixed
  cameras; foreground mask -> morphological open/close -> connected components -> boxes; score =
  the fraction of the box that is foreground. It names no class (label -1).
  The background model runs on small frames (``width`` px wide) and learns from frames at
  ``learn_fps`` (default 5/s, fed by the decoder between the sampled frames) so that sampling at
  1 fps still sees a background learned at a steady rate; ``history`` counts those learning frames.
  Detections start once ``warmup`` learning frames have been seen (before that everything is "new").
- ``TorchvisionDetector``: a torchvision detection model built with ``weights=None,
  weights_backbone=None`` and loaded from a weights file the user names (``ekya.labels.weights``);
  it emits coco91 ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from ekya.errors import EkyaError
from ekya.labels.weights import load_torchvision_checkpoint

if TYPE_CHECKING:
    import av


@dataclass(frozen=True)
class Detection:
    """One object: box in full-frame pixels (x1, y1 exclusive), score in [0, 1], coco91 id or -1."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float
    coco91: int = -1


class Detector(Protocol):
    """What ingestion needs of a detector."""

    name: str
    learn_fps: float  # frames per second it wants to see between samples (0: none)

    def learn(self, frame: av.VideoFrame) -> None:
        """Update internal state from a frame that is not sampled (an ``av.VideoFrame``)."""
        ...

    def detect(self, frame: av.VideoFrame, rgb: np.ndarray) -> list[Detection]:
        """Detections on a sampled frame (``av.VideoFrame`` and its full-size RGB array)."""
        ...


class BackgroundSubtractor:
    """MOG2/KNN background subtraction for fixed cameras (see module doc)."""

    def __init__(self, method: str = "mog2", width: int = 320, learn_fps: float = 5.0, history: int = 100,
                 threshold: float = 16.0, warmup: int = 5, open_px: int = 3, close_px: int = 7,
                 min_area_px: int = 30) -> None:
        if method not in ("mog2", "knn"):
            raise EkyaError(f"detector.method={method!r}; use mog2 or knn")
        self.method, self.width, self.learn_fps = method, int(width), float(learn_fps)
        self.history, self.threshold, self.warmup = int(history), float(threshold), int(warmup)
        self.open_k = np.ones((open_px, open_px), np.uint8) if open_px > 1 else None
        self.close_k = np.ones((close_px, close_px), np.uint8) if close_px > 1 else None
        self.min_area = int(min_area_px)
        self.name = f"bgsub-{method}"
        self.reset()

    def reset(self) -> None:
        """Forget the background (a new video)."""
        if self.method == "mog2":
            self.model = cv2.createBackgroundSubtractorMOG2(self.history, self.threshold, detectShadows=True)
        else:
            self.model = cv2.createBackgroundSubtractorKNN(self.history, self.threshold * 25, detectShadows=True)
        self.seen = 0

    def _small(self, frame: av.VideoFrame) -> tuple[np.ndarray, float]:
        # Downscale inside the decoder's converter (swscale): no full-size array is ever made here.
        h = max(2, int(round(frame.height * self.width / frame.width / 2)) * 2)
        return frame.to_ndarray(width=self.width, height=h, format="bgr24"), frame.width / self.width

    def learn(self, frame: av.VideoFrame) -> None:
        """Update the background model from a non-sampled frame."""
        self.model.apply(self._small(frame)[0])
        self.seen += 1

    def detect(self, frame: av.VideoFrame, rgb: np.ndarray) -> list[Detection]:
        """Update the model with the sampled frame and return its foreground blobs as boxes."""
        small, scale = self._small(frame)
        mask = self.model.apply(small)
        self.seen += 1
        if self.seen <= self.warmup:
            return []
        fg = (mask > 200).astype(np.uint8)  # 255 = foreground, 127 = shadow: shadows are not objects
        if self.open_k is not None:
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self.open_k)
        if self.close_k is not None:
            fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self.close_k)
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        H, W = rgb.shape[:2]
        out = []
        for x, y, w, h, area in stats[1:]:
            if area < self.min_area:
                continue
            score = float(area) / float(w * h)
            x0, y0 = int(np.floor(x * scale)), int(np.floor(y * scale))
            x1, y1 = min(W, int(np.ceil((x + w) * scale))), min(H, int(np.ceil((y + h) * scale)))
            out.append(Detection(x0, y0, x1, y1, score))
        return out


class TorchvisionDetector:
    """A torchvision detection model with user-supplied weights (no download); coco91 labels."""

    learn_fps = 0.0

    def __init__(self, weights: str, arch: str = "fasterrcnn_mobilenet_v3_large_fpn", num_classes: int = 91,
                 device: str = "cpu", min_score: float = 0.05) -> None:
        import torch

        model = load_torchvision_checkpoint(arch, weights, num_classes, "detector", what="detection model",
                                            weights_backbone=None)
        # Keep low-score boxes: the real threshold is ingestion's min_score, applied to every detector.
        if hasattr(model, "roi_heads"):
            model.roi_heads.score_thresh = float(min_score)
        elif hasattr(model, "score_thresh"):
            model.score_thresh = float(min_score)
        self.model, self.device, self.torch = model.to(device), device, torch
        self.name = f"torchvision-{arch}"

    def learn(self, frame: av.VideoFrame) -> None:
        """Nothing to learn between samples."""

    def detect(self, frame: av.VideoFrame, rgb: np.ndarray) -> list[Detection]:
        """Run the model on the full-size frame."""
        torch = self.torch
        x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255).to(self.device)
        with torch.inference_mode():
            out = self.model([x])[0]
        H, W = rgb.shape[:2]
        dets = []
        for (x0, y0, x1, y1), s, lab in zip(out["boxes"].cpu().numpy(), out["scores"].cpu().numpy(),
                                            out["labels"].cpu().numpy()):
            dets.append(Detection(max(0, int(np.floor(x0))), max(0, int(np.floor(y0))), min(W, int(np.ceil(x1))),
                                  min(H, int(np.ceil(y1))), float(s), int(lab)))
        return dets


def make_detector(kind: str = "bgsub", **kwargs: Any) -> Detector:
    """Build the detector named by ``detector.kind`` (bgsub | torchvision) with its options."""
    if kind == "bgsub":
        return BackgroundSubtractor(**kwargs)
    if kind == "torchvision":
        if not kwargs.get("weights"):
            raise EkyaError("detector.kind=torchvision needs detector.weights=PATH (a state_dict file)")
        return TorchvisionDetector(**kwargs)
    raise EkyaError(f"detector.kind={kind!r}; use bgsub (no weights) or torchvision (with detector.weights)")
