"""PyTorch state dicts whose keys already are vidrec's: torchvision, ig65m-pytorch, kenshohara, vidrec.

torchvision's video models and ig65m-pytorch's R(2+1)D-34 use the key names of
:mod:`vidrec.models.video_resnet` as is; kenshohara's 3D-ResNets-PyTorch checkpoints
(``{'arch', 'epoch', 'state_dict', 'optimizer'}``, DataParallel ``module.`` prefixes, head ``fc`` in
both the 2018 and 2020 code) use those of :mod:`vidrec.models.resnet3d`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.errors import CheckpointError
from vidrec.models.weights.common import to_tensor

_WRAPPER_KEYS = ("state_dict", "model_state", "model", "module")
_PREFIXES = ("module.", "model.")


def find_mapping(obj: Any) -> Mapping | None:
    """Follow ``state_dict``/``model`` wrappers down to the tensor mapping."""
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    return obj if isinstance(obj, Mapping) and obj else None


def _strip(keys: list[str]) -> tuple[list[str], int]:
    """Drop DataParallel/Lightning prefixes shared by every key; returns the keys and the prefix length."""
    cut = 0
    for prefix in _PREFIXES:
        if all(k[cut:].startswith(prefix) for k in keys):
            cut += len(prefix)
    return [k[cut:] for k in keys], cut


def state_keys(obj: Any) -> list[str]:
    """Key names of the state dict inside a checkpoint (prefixes dropped), without copying tensors."""
    mapping = find_mapping(obj)
    return _strip([str(k) for k in mapping])[0] if mapping is not None else []


def unwrap_state_dict(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensor mapping inside a checkpoint: follows ``state_dict``/``model`` nesting, drops prefixes."""
    mapping = find_mapping(obj)
    if mapping is None:
        raise CheckpointError(f"{path}: no state dict found (got {type(obj).__name__})")
    _, cut = _strip([str(k) for k in mapping])
    return {str(k)[cut:]: to_tensor(v, path, str(k)) for k, v in mapping.items()}


def is_kenshohara(obj: Any) -> bool:
    """kenshohara training checkpoints carry ``arch`` next to ``state_dict``."""
    return isinstance(obj, Mapping) and "arch" in obj and isinstance(obj.get("state_dict"), Mapping)


def convert_state_dict(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """Identity conversion (keys already match the model)."""
    return unwrap_state_dict(obj, path)
