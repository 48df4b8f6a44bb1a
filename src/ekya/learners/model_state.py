"""Edge models as plain dicts (architecture + weights) and as checkpoint files of that dict.

The dict is ``{"arch": EdgeModel.describe(), "state_dict": ...}``, plus ``"replay"`` (plain values)
when the model carries a replay buffer: no pickled module, so renaming a class never breaks a saved
run, and a checkpoint file is that dict written by ``torch.save``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.learners.model import EdgeModel
from ekya.learners.replay import buffer_from_state, buffer_state


def edge_model_state(model: EdgeModel) -> dict[str, Any]:
    """The model's architecture and a CPU copy of its weights, independent of the model from now on."""
    state = model.state_dict()
    for key, value in state.items():  # in place, so the state_dict's version metadata stays
        state[key] = value.detach().to("cpu", copy=True)
    out = {"arch": dict(model.describe()), "state_dict": state}
    # Only with a buffer, so models without one keep the dict (and the file bytes) they always had.
    if getattr(model, "replay", None) is not None:
        out["replay"] = buffer_state(model.replay)
    return out


def edge_model_from_state(state: dict[str, Any]) -> EdgeModel:
    """The EdgeModel an ``edge_model_state`` dict describes, in eval mode on the CPU."""
    arch = dict(state["arch"])
    # The weights are overwritten at once; forking keeps the build from drawing on the global RNG.
    with torch.random.fork_rng(devices=[]):
        model = EdgeModel(arch["backbone"], arch["hidden"], arch["num_classes"], arch["image_size"])
    model.load_state_dict(state["state_dict"])
    if state.get("replay") is not None:
        model.replay = buffer_from_state(state["replay"])
    return model.eval()


def save_checkpoint(model: EdgeModel, path: str | Path) -> None:
    """Write a model (architecture + weights) that ``learner.checkpoint`` can name."""
    state = edge_model_state(model)

    def write(tmp: Path) -> None:
        # Through a file object: torch.save would name the archive inside after the random temp file.
        with tmp.open("wb") as f:
            torch.save(state, f)

    atomic_write(path, write)


def _why_unreadable(error: Exception) -> str:
    """Why torch could not read a file, in one line."""
    text = str(error).strip()
    # torch's weights-only refusal advises loading the file as an arbitrary pickle: no fix for a foreign file
    if isinstance(error, pickle.UnpicklingError) or "weights_only" in text:
        return "not model weights written by torch.save"
    return text.splitlines()[0] if text else type(error).__name__


def check_checkpoint(template: str | None) -> None:
    """Read a ``learner.checkpoint`` that names one file now, so a wrong one fails before the run starts."""
    if template and "{camera}" not in str(template):
        load_checkpoint(str(template))


def load_checkpoint(path: str | Path, num_classes: int | None = None) -> EdgeModel:
    """Read a model written by ``save_checkpoint``; EkyaError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise EkyaError(f"learner.checkpoint: {path} does not exist; train a base model first or fix the path "
                        "(it may contain {camera})")
    try:
        model = edge_model_from_state(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:  # noqa: BLE001 - any unreadable or foreign file: one clear message, not a pickle traceback
        raise EkyaError(f"learner.checkpoint: {path} is not an ekya model checkpoint ({_why_unreadable(e)}); "
                        "write it with ekya.learners.save_checkpoint") from None
    if num_classes is not None and model.num_classes != num_classes:
        raise EkyaError(f"learner.checkpoint: {path} predicts {model.num_classes} classes, the dataset has "
                        f"{num_classes}")
    return model
