"""A seeded synthetic fixed-camera video: coloured rectangles moving over a static textured background.

Used by the tests and the ingestion benchmark (nothing binary is committed); written with PyAV (H.264).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np


def synthetic_frames(seconds: float, width: int, height: int, fps: int, objects: int,
                     seed: int) -> Iterator[tuple[int, np.ndarray, list[tuple[int, int, int, int]]]]:
    """Yield (frame index, RGB uint8 array, object boxes [(x0, y0, x1, y1)]) of the synthetic scene."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    # A smooth gradient plus fixed texture: something for the background model to learn.
    bg = np.stack([60 + 40 * xx / width, 70 + 30 * yy / height, 80 + 0 * xx], -1)
    bg = np.clip(bg + rng.normal(0, 6, (height, width, 1)), 0, 255).astype(np.uint8)
    size = rng.uniform(0.12, 0.25, (objects, 2)) * [width, height]
    pos = rng.uniform(0, 1, (objects, 2)) * ([width, height] - size)
    vel = rng.uniform(0.15, 0.4, (objects, 2)) * [width, height] * rng.choice([-1, 1], (objects, 2))
    colours = rng.integers(150, 256, (objects, 3)) * (rng.random((objects, 3)) < 0.7)
    for i in range(int(round(seconds * fps))):
        frame = bg.copy()
        boxes = []
        for k in range(objects):
            x0, y0 = pos[k].astype(int)
            w, h = size[k].astype(int)
            frame[y0:y0 + h, x0:x0 + w] = colours[k]
            boxes.append((x0, y0, x0 + w, y0 + h))
        yield i, frame, boxes
        pos += vel / fps
        for ax in range(2):  # bounce off the borders
            lim = [width, height][ax] - size[:, ax]
            over = (pos[:, ax] < 0) | (pos[:, ax] > lim)
            vel[over, ax] *= -1
            pos[:, ax] = np.clip(pos[:, ax], 0, lim)


def write_synthetic_video(path: Path, seconds: float = 10.0, width: int = 320, height: int = 240, fps: int = 10,
                          objects: int = 3, seed: int = 0) -> Path:
    """Write the synthetic scene as an H.264 MP4 and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for _, arr, _ in synthetic_frames(seconds, width, height, fps, objects, seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
