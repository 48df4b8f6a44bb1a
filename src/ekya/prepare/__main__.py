"""``python -m ekya.prepare video=PATH_OR_GLOB out=DIR ...``: ingest videos (Hydra entry, ekya/conf/prepare.yaml)."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ekya.errors import EkyaError
from ekya.hydra_compose import CONF_DIR, compose_config


def group_options(group: str) -> str:
    """The options of one config group, comma-separated (for --help; files starting with '_' are internal)."""
    return ", ".join(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_")))


# --help lists the labelers from conf/labeler/ rather than the main app's every group (prepare.yaml's hydra.help)
if not OmegaConf.has_resolver("ekya_group_options"):
    OmegaConf.register_new_resolver("ekya_group_options", group_options)


#: what a usage error shows: the command's form and an example
USAGE = ("python -m ekya.prepare video=PATH_OR_GLOB out=DIR [KEY=VALUE ...], "
         "e.g. python -m ekya.prepare video='clips/*.mp4' out=data/mycams")
HELP = "python -m ekya.prepare --help lists the keys"


def _keys(node: Any, prefix: str = "") -> list[str]:
    """Every key of a plain config as a dotted path, groups of keys included."""
    out: list[str] = []
    for key, value in node.items():
        out.append(f"{prefix}{key}")
        if isinstance(value, dict):
            out += _keys(value, f"{prefix}{key}.")
    return out


def _override_error(first_line: str) -> str:
    """Hydra's first line about a bad override, said as a user error: the key, a close match, where keys are listed."""
    if "Could not find '" in first_line:  # a group option that does not exist, e.g. labeler=nope
        group, _, option = first_line.split("Could not find '")[1].split("'")[0].rpartition("/")
        return f"{group}={option}: no such {group}; choose one of {group_options(group)} ({HELP})"
    if not first_line.startswith("Could not override '"):
        return f"{first_line.rstrip('.')} ({HELP})"
    key = first_line.split("'")[1]
    keys = _keys(OmegaConf.to_container(compose_config([], config_name="prepare"), resolve=False))
    close = difflib.get_close_matches(key, keys, n=1)
    return f"{key}: ekya.prepare has no such key{f'; did you mean {close[0]}?' if close else ''} ({HELP})"


def check_args(argv: list[str]) -> None:
    """Compose prepare's overrides up front: a bad key or a missing ``video``/``out`` is one line and exit 2.

    Hydra reports its own composition errors over several lines with exit status 1, and a missing required
    key would surface as a traceback; flags (``--help``, ``--cfg`` ...) are left to Hydra.
    """
    if any(a.startswith("-") for a in argv):
        return
    from hydra.errors import HydraException

    try:
        cfg = compose_config(argv, config_name="prepare")
    except HydraException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.exit(_usage_error(_override_error(first)))
    missing = [key for key in ("video", "out") if OmegaConf.is_missing(cfg, key)]
    if missing:
        sys.exit(_usage_error(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required: {USAGE}"))


def _usage_error(message: str) -> int:
    """Print a user error as ekya.prepare's one line; the exit status of a usage error (2)."""
    print(f"ekya.prepare: error: {message}", file=sys.stderr)
    return 2


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
    truncated = f" ({len(report.truncated)} truncated: see the warnings)" if report.truncated else ""
    print(f"ekya.prepare: {len(report.done)} ingested{truncated}, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed; {report.crops} crops from {report.video_seconds:.0f} s of video -> {cfg.out}")
    for video_path, why in report.failed:
        print(f"  FAILED {video_path}: {why}", file=sys.stderr)
    return 1 if report.failed else 0


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prepare")
def main(cfg: DictConfig) -> None:
    """Hydra entry: user errors print one line and exit 2; failed videos exit 1."""
    from ekya.errors import user_error

    try:
        code = run(cfg)
    except Exception as e:  # user errors become one line; anything else is a bug to show
        message = user_error(e)
        if message is None:
            raise
        sys.exit(_usage_error(message))
    sys.exit(code)


def cli() -> None:
    """Check the arguments (one line and exit 2 for a bad one), then hand over to Hydra."""
    check_args(sys.argv[1:])
    main()


if __name__ == "__main__":
    cli()
