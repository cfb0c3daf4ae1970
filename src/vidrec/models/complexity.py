"""Size and cost of a registered model: parameter count and multiply-adds of one clip (on meta tensors)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidrec.models.registry import build_model, model_info


def count_params(name: str, num_classes: int = 400) -> int:
    """Number of parameters of ``name`` built for ``num_classes``."""
    with torch.device("meta"):
        model = build_model(name, num_classes)
    return sum(p.numel() for p in model.parameters())


def gmacs(name: str, frames: int | None = None, size: int | None = None) -> float:
    """Multiply-adds (in 1e9) of one forward pass at the default (or given) clip, measured on meta tensors."""
    info = model_info(name)
    with torch.device("meta"):
        model = build_model(name, 400).eval()
        clip = torch.empty(1, 3, frames or info.default_frames, size or info.default_size, size or info.default_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(clip)
    return counter.get_total_flops() / 2 / 1e9
