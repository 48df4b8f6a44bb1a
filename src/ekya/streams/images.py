"""One sample's crop as a uint8 array: its box cut from its image and resized (bilinear, PIL).

Torch-free: the learners keep decoded crops as tensors (``ekya.learners.data.CropCache``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ekya.errors import EkyaError


def load_crop(path: Path, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """One crop as a (size, size, 3) uint8 array; an unreadable image raises EkyaError naming the file."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            x0, y0, x1, y1 = box
            if x1 > im.width or y1 > im.height:
                raise EkyaError(f"{path}: box {box} lies outside the {im.width}x{im.height} image; "
                                "fix the samplelist row or the image")
            crop = im.crop((x0, y0, x1, y1)).resize((size, size), Image.BILINEAR)
            return np.array(crop, dtype=np.uint8)  # a writable copy, so torch.from_numpy may share it
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise EkyaError(f"{path}: cannot read the image ({e}); {_how_to_restore(Path(path))}") from None


def _how_to_restore(image: Path) -> str:
    """The fix for an unreadable image: a generated (synthetic) dataset is made again once its folder is gone."""
    for folder in image.parents:
        if folder.name.startswith("synthetic-") and (folder / "meta.json").is_file():
            return f"delete {folder} (the generated synthetic dataset): the next run generates it again"
    return "restore the file or regenerate the dataset"
