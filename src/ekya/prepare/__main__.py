"""``python -m ekya.prepare video=PATH_OR_GLOB out=DIR ...``: ingest videos (Hydra entry, ekya/conf/prepare.yaml)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ekya.configs import CONF_DIR
from ekya.errors import EkyaError


def group_options(group: str) -> str:
    """The options of one config group, comma-separated (for --help; files starting with '_' are internal)."""
    return ", ".join(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_")))


# --help lists the labelers from conf/labeler/ rather than the main app's every group (prepare.yaml's hydra.help)
if not OmegaConf.has_resolver("ekya_group_options"):
    OmegaConf.register_new_resolver("ekya_group_options", group_options)


def run(cfg: DictConfig) -> int:
    """Ingest the configured videos; print a summary; 0 if all succeeded, 1 if any failed."""
    from ekya.prepare.detectors import make_detector
    from ekya.prepare.ingest import IngestSettings, find_videos, ingest_videos

    det_cfg = OmegaConf.to_container(cfg.detector, resolve=True)
    kind = det_cfg["kind"]
    if kind not in ("bgsub", "torchvision"):
        raise EkyaError(f"detector.kind={kind!r}; use bgsub or torchvision")
    detector = make_detector(kind, **det_cfg[kind])
    teacher = instantiate(cfg.labeler) if cfg.get("labeler") is not None else None
    labeler_desc = json.dumps(OmegaConf.to_container(cfg.labeler, resolve=True), sort_keys=True) if teacher else ""
    settings = IngestSettings(fps=float(cfg.fps), min_size=int(cfg.min_size), min_score=float(cfg.min_score),
                              jpeg_quality=int(cfg.jpeg_quality), write_crops=bool(cfg.write_crops),
                              detector=json.dumps({"kind": kind, **det_cfg[kind]}, sort_keys=True),
                              labeler=labeler_desc)
    video = OmegaConf.to_container(cfg.video) if OmegaConf.is_list(cfg.video) else str(cfg.video)
    videos = find_videos(video)
    report = ingest_videos(videos, Path(cfg.out), detector, settings, teacher, progress=bool(cfg.progress),
                           log=lambda m: print(m, file=sys.stderr))
    print(f"ekya.prepare: {len(report.done)} ingested, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed; {report.crops} crops from {report.video_seconds:.0f} s of video -> {cfg.out}")
    for video_path, why in report.failed:
        print(f"  FAILED {video_path}: {why}", file=sys.stderr)
    return 1 if report.failed else 0


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prepare")
def main(cfg: DictConfig) -> None:
    """Hydra entry: user errors print one line and exit 2; failed videos exit 1."""
    try:
        code = run(cfg)
    except EkyaError as e:
        print(f"ekya.prepare: error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code)


if __name__ == "__main__":
    main()
