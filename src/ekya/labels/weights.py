"""Loading a user's torchvision checkpoint (classifier teachers and detectors alike); nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ekya.errors import EkyaError

if TYPE_CHECKING:
    from torch import nn

#: Keys under which training scripts commonly nest the weights, unwrapped in this order.
_WRAPPERS = ("state_dict", "model_state_dict", "model")


def load_torchvision_checkpoint(arch: str, weights: str | Path, num_classes: int, key: str, what: str = "classifier",
                                count_key: str = "num_classes", **model_kwargs: Any) -> nn.Module:
    """``arch`` built with no pretrained weights and loaded from the ``weights`` file, in eval mode.

    Accepts a bare state_dict or one nested under 'state_dict', 'model_state_dict' or 'model', and
    strips the 'module.' prefix DataParallel gives every key. ``key`` is the config group naming the
    file (``labeler``, ``detector``), ``what`` the kind of model and ``count_key`` the config key of
    its class count: every error names them.
    """
    import torch
    import torchvision

    path = Path(weights).expanduser()
    if not path.is_file():
        raise EkyaError(f"{key}.weights={str(weights)!r}: file not found; name a {what} checkpoint you have "
                        "(nothing is downloaded)")
    try:
        model = torchvision.models.get_model(arch, weights=None, num_classes=int(num_classes), **model_kwargs)
    except (ValueError, TypeError) as e:
        raise EkyaError(f"{key}.arch={arch!r} is not a torchvision {what} ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise EkyaError(f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {e})") from None
    for wrapper in _WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise EkyaError(f"{path}: holds a {type(state).__name__}, not a state_dict; save model.state_dict()")
    # Checkpoints saved from DataParallel (as the original's golden model) prefix every key.
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise EkyaError(f"{path}: does not fit {arch} with {num_classes} classes ({str(e).splitlines()[0]}); "
                        f"check {key}.arch and {key}.{count_key}") from None
    return model.eval()
