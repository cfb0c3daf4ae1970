"""Learning-rate schedules that torch does not ship."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    warmup_epochs: float,
    max_epochs: int,
    steps_per_epoch: int = 1,
    min_lr_ratio: float = 0.0,
    warmup_start_ratio: float = 0.01,
) -> LambdaLR:
    """Linear warmup from ``warmup_start_ratio``·lr to lr, then cosine decay to ``min_lr_ratio``·lr.

    Step it once per batch with ``steps_per_epoch`` set (the module passes it), or once per epoch with 1.
    """
    warmup = max(int(round(warmup_epochs * steps_per_epoch)), 0)
    total = max(int(max_epochs * steps_per_epoch), warmup + 1)

    def factor(step: int) -> float:
        if step < warmup:
            return warmup_start_ratio + (1 - warmup_start_ratio) * step / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


warmup_cosine.interval = "step"  # stepped per optimizer step (VideoClassifier.configure_optimizers reads it)
