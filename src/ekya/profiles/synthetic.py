"""Seeded generator of realistic synthetic profile sets (for the simulator, benchmarks and tests).

The config space mirrors the original's: {last layer only, all layers} x data fraction
{0.1, 0.5, 1.0} x epochs {5, 15, 30} = 18 configs. Shapes that matter to scheduling:

* cost = (init + seconds per epoch x data fraction x epochs) x the stream's data volume, with
  full fine-tuning ~2x the per-epoch cost of head-only training: costs span > 100x.
* accuracy rises with epochs with diminishing returns (1 - exp(-epochs / tau)); full fine-tuning
  reaches higher but needs more epochs; less data lowers the ceiling, and full fine-tuning on 10%
  of the data over-fits (it can end below the start accuracy): some configs are simply worse.
* drift is heterogeneous: each camera has its own drift level, and each window's start accuracy
  falls below the camera's attainable accuracy by a random part of it.

``pred_noise`` > 0 adds Gaussian noise (sd in accuracy points) to the predicted accuracies and
log-normal noise to the predicted costs; the truth is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ekya.errors import EkyaError
from ekya.profiles.types import ConfigProfile, ProfileSet, StreamProfile

EPOCHS = (5, 15, 30)
FRACTIONS = (0.1, 0.5, 1.0)
# (seconds per epoch on the full window's data at a full share, ceiling factor by fraction, tau in epochs)
_MODES = {
    "head": (5.0, {0.1: 0.55, 0.5: 0.8, 1.0: 0.85}, 4.0),
    "full": (10.4, {0.1: 0.35, 0.5: 0.95, 1.0: 1.0}, 9.0),
}
_INIT = 0.4
# Relative cost per sample of bigger backbones (the original's ResNet18/50/101 epoch-time ratios, roughly).
_BACKBONE_COST = {"resnet18": 1.0, "resnet50": 2.3, "resnet101": 4.3}


def config_space() -> dict[str, dict[str, object]]:
    """The 18 config names and their learner params."""
    out: dict[str, dict[str, object]] = {}
    for mode in _MODES:
        for frac in FRACTIONS:
            for e in EPOCHS:
                out[f"{mode}_d{frac:g}_e{e}"] = {"frozen": mode == "head", "data_fraction": frac, "epochs": e}
    return out


def _params(name: str, p: Mapping[str, Any]) -> tuple[str, float, int, float]:
    """(mode, data fraction, epochs, backbone cost factor) of a config, from its learner params."""
    try:
        mode = "head" if bool(p["frozen"]) else "full"
        frac, epochs = float(p["data_fraction"]), int(p["epochs"])
    except KeyError as e:
        raise EkyaError(f"configspace config {name!r}: synthetic profiles need key {e.args[0]!r} "
                        "(frozen, data_fraction, epochs)") from None
    if not 0 < frac <= 1 or epochs < 1:
        raise EkyaError(f"configspace config {name!r}: data_fraction must be in (0, 1] and epochs >= 1")
    return mode, frac, epochs, _BACKBONE_COST.get(str(p.get("backbone", "resnet18")), 1.0)


def _draw_configs(rng: np.random.Generator, noise: np.random.Generator,
                  shapes: Sequence[tuple[str, tuple[str, float, int, float]]], a0: float, gap: float, volume: float,
                  pred_noise: float, cost_noise: float) -> tuple[tuple[ConfigProfile, ...], tuple[ConfigProfile, ...]]:
    """One stream's window: (the true profile of every config, what a scheduler is told about it)."""
    tc, pc = [], []
    for name, (mode, frac, e, factor) in shapes:
        spe, ceil, tau = _MODES[mode]
        cost = (_INIT + spe * frac * e) * factor * volume
        ceiling = float(np.interp(frac, FRACTIONS, [ceil[f] for f in FRACTIONS]))
        reach = a0 + gap * ceiling * 1.05 * (1 - np.exp(-e / tau))
        if mode == "full" and frac <= 0.1:
            reach -= 0.004 * e  # over-fitting on little data
        acc = float(np.clip(reach + rng.normal(0, 0.01), 0.0, 1.0))
        tc.append(ConfigProfile(name, acc, float(cost)))
        pacc = float(np.clip(acc + noise.normal(0, pred_noise), 0.0, 1.0)) if pred_noise > 0 else acc
        pcost = float(cost * noise.lognormal(0.0, cost_noise)) if cost_noise > 0 else float(cost)
        pc.append(ConfigProfile(name, pacc, pcost))
    return tuple(tc), tuple(pc)


def generate_profile_set(
    streams: int = 10,
    windows: int = 5,
    seed: int = 0,
    pred_noise: float = 0.0,
    cost_noise: float = 0.0,
    n_configs: int | None = None,
    space: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProfileSet:
    """A seeded synthetic profile set.

    ``space``: config name -> learner params (frozen, data_fraction, epochs, optional backbone),
    e.g. the configured configspace, so profiles carry its names; default: the 18 configs above.
    ``n_configs`` keeps a random subset of the space.
    """
    rng = np.random.default_rng(seed)
    noise = np.random.default_rng([seed, 1])  # a separate stream: adding noise never changes the truth
    space = {str(k): dict(v) for k, v in (space or config_space()).items()}
    if not space:
        raise EkyaError("synthetic profiles: the config space is empty")
    shape = {n: _params(n, p) for n, p in space.items()}
    names = list(space)
    if n_configs is not None:
        pick = np.random.default_rng([seed, 2])  # own stream: the subset never shifts the truth draws
        keep = sorted(pick.choice(len(names), size=min(n_configs, len(names)), replace=False))
        names = [names[k] for k in keep]
    peak = rng.uniform(0.80, 0.95, streams)  # accuracy a fresh model reaches on the camera
    drift = rng.uniform(0.03, 0.35, streams)  # how hard the camera drifts
    volume = rng.lognormal(0.0, 0.25, streams)  # data volume per window, relative
    truth, pred = [], []
    for _ in range(windows):
        tw, pw = [], []
        for s in range(streams):
            a0 = float(np.clip(peak[s] - drift[s] * rng.uniform(0.3, 1.0), 0.05, 0.99))
            vol = volume[s] * rng.uniform(0.85, 1.15)
            tc, pc = _draw_configs(rng, noise, [(n, shape[n]) for n in names], a0, peak[s] - a0, vol, pred_noise,
                                   cost_noise)
            tw.append(StreamProfile(f"cam{s}", a0, tc))
            pw.append(StreamProfile(f"cam{s}", a0, pc))
        truth.append(tuple(tw))
        pred.append(tuple(pw))
    return ProfileSet(truth=tuple(truth), predicted=tuple(pred), window_ids=tuple(str(w) for w in range(windows)),
                      config_params={n: space[n] for n in names})
