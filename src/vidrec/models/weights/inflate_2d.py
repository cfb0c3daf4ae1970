"""2D ImageNet ResNets (torchvision layout) inflated into 3D models: the I3D / non-local-net initialisation.

Every 2D kernel (O, I, H, W) becomes (O, I, T, H, W): repeated over the model's temporal extent T and
divided by T. The ImageNet classifier is never loaded (the model keeps its own ``fc``) and non-local
blocks, absent from a 2D network, keep their initialisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.weights.common import HEAD_PREFIX, inflate
from vidrec.models.weights.torch_state import find_mapping, state_keys, unwrap_state_dict


def detect(obj: Any) -> bool:
    """A torch state dict whose ``conv1.weight`` is 4-D, that has ResNet stages and an ImageNet classifier (or none)."""
    mapping = find_mapping(obj)
    if mapping is None:
        return False
    keys = state_keys(obj)
    tensors = dict(zip(keys, mapping.values()))
    conv1, fc = tensors.get("conv1.weight"), tensors.get("fc.weight")
    # an ImageNet classifier (1000 classes) or none: a 2D network with its own head (TSN) is not ImageNet weights
    imagenet_head = fc is None or getattr(fc, "shape", (0,))[0] == 1000
    return getattr(conv1, "ndim", 0) == 4 and "layer1.0.conv1.weight" in keys and imagenet_head


def convert(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """Inflate every 2D kernel to the model's kernel; drop the 2D classifier."""
    target = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for key, value in unwrap_state_dict(obj, path).items():
        if key.startswith(HEAD_PREFIX):
            continue
        if key in target and value.ndim == 4 and target[key].ndim == 5:
            value = inflate(value, target[key].shape[2])
        converted[key] = value
    for key, value in target.items():
        if key.startswith("nonlocal_blocks.") and key not in converted:
            converted[key] = value.clone()
    return converted
