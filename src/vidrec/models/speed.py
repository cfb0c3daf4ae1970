"""Speed options of a network: ``channels_last_3d`` memory format and ``torch.compile`` in place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vidrec.errors import ConfigError


def _channels_last_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 5:
        return (x.contiguous(memory_format=torch.channels_last_3d), *args[1:])
    return args


def apply_speed_options(net: nn.Module, channels_last: bool = False, compile: Any = False) -> nn.Module:
    """``channels_last``: weights and input clips in ``channels_last_3d`` (faster 3D convolutions with cuDNN and
    mixed precision). ``compile``: ``torch.compile`` in place, so state-dict keys (and checkpoints) stay those of
    the plain model; ``True``, or the keyword arguments of ``torch.compile`` (e.g. ``{mode: max-autotune}``,
    ``{backend: eager}``)."""
    if channels_last:
        for module in net.modules():  # 3D kernels channels_last_3d, 2D ones (TSN/TSM, patch embeddings) channels_last
            for param in module.parameters(recurse=False):
                if param.dim() in (4, 5):
                    fmt = torch.channels_last_3d if param.dim() == 5 else torch.channels_last
                    param.data = param.data.contiguous(memory_format=fmt)
        net.register_forward_pre_hook(_channels_last_input)
    options = compile
    if options:
        if options is not True and not isinstance(options, Mapping):
            raise ConfigError(f"model.compile={options}: use true, false or torch.compile arguments like {{mode: max-autotune}}")
        net.compile(**(dict(options) if isinstance(options, Mapping) else {}))
    return net
