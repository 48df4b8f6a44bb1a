"""The embedded default dataset (``dataset=synthetic``): a seeded, drawn multi-camera stream with real drift.

Generated once into a cache directory (``ekya.streams.synthetic_dataset``, drawn by
``ekya.streams.synthetic_render``) and always read back through
:func:`ekya.streams.samplelist.read_frame_samplelist`, so the loader the real datasets use is the
one every default run and test exercises.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ekya.errors import EkyaError
from ekya.streams.build import build_stream_set
from ekya.streams.classes import SIX_CLASSES
from ekya.streams.samplelist import read_frame_samplelist, samplelist_path
from ekya.streams.samples import StreamSet
from ekya.streams.synthetic_dataset import SyntheticSpec, write_dataset

DEFAULT_ROOT = ".ekya/data"


def load_synthetic(
    root: str | Path = DEFAULT_ROOT,
    seed: int = SyntheticSpec.seed,
    cameras: int = SyntheticSpec.cameras,
    chunks: int = SyntheticSpec.chunks,
    chunk_seconds: float = SyntheticSpec.chunk_seconds,
    samples_per_chunk: int = SyntheticSpec.samples_per_chunk,
    image_size: int = SyntheticSpec.image_size,
    drift_max: float = SyntheticSpec.drift_max,
    drift_min: float = SyntheticSpec.drift_min,
    name: str = "synthetic",
    recur: bool = SyntheticSpec.recur,
) -> StreamSet:
    """Generate (once, cached under ``root``) and load the synthetic multi-camera stream, unlabelled.

    The generator's parameters are :class:`SyntheticSpec`'s (see ``conf/dataset/synthetic.yaml``).
    """
    spec = SyntheticSpec(int(seed), int(cameras), int(chunks), float(chunk_seconds), int(samples_per_chunk),
                         int(image_size), float(drift_max), float(drift_min), bool(recur))
    spec.check()  # a bad size first: nothing made on disk for it
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where the cache folder (or one above it) should be
        raise EkyaError(f"dataset.root={root} (EKYA_DATA, when set, gives it): cannot hold the synthetic data cache "
                        f"({e.strerror}); point EKYA_DATA or dataset.root at a folder you can write to") from None
    where = write_dataset(Path(root), spec)
    meta_file = json.loads((where / "meta.json").read_text())
    cams = [c["camera"] for c in meta_file["cameras"]]
    df = pd.concat([read_frame_samplelist(samplelist_path(where, c), camera=c) for c in cams], ignore_index=True)
    meta = {"synthetic": meta_file, "drift": {c["camera"]: c["strength"] for c in meta_file["cameras"]}}
    # The generator wrote every box inside its own frame, so the per-image check is skipped for speed.
    return build_stream_set(name, where, df, SIX_CLASSES, meta, check_images=False)
