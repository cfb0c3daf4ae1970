"""Exponential moving average of the weights, as a Lightning callback: updated after every optimizer step, used for
validation and test, saved in checkpoints and restored on resume.

The average covers the LightningModule's whole ``state_dict`` (parameters and buffers, BatchNorm statistics
included): floating-point entries are interpolated, the others (``num_batches_tracked``) copied (timm ``ModelEmaV3``,
pytorch-image-models timm/utils/model_ema.py@0a044bf4:215-237). The decay at optimizer step s (counted from 1) is 0 at
the first step (the average starts as a copy) and ``decay`` afterwards, or with ``warmup``
``min(decay, 1 - (1 + s' / gamma) ** -power)`` with ``s' = s - 1`` (``get_decay``, :188-205; VideoMAE fine-tunes
with timm's ``ModelEma``, decay 0.9999, run_class_finetuning.py:51-52).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from vidrec.checkpoint import ema_state_dict  # noqa: F401  (the reader of the average a checkpoint holds)


class EMA(pl.Callback):
    """EMA of ``pl_module``'s weights; with ``evaluate`` the validation and test stages run on the averaged weights
    (swapped in at their start, the trained weights put back at their end, before any checkpoint is written).

    The average is part of the callback's state (``checkpoint['callbacks']['EMA']``), so a resumed run continues
    it exactly; :func:`ema_state_dict` reads it from a checkpoint for eval or export.
    """

    def __init__(self, decay: float = 0.9999, warmup: bool = False, warmup_gamma: float = 1.0,
                 warmup_power: float = 2 / 3, evaluate: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema.decay must be in [0, 1), got {decay}")
        self.decay, self.warmup, self.warmup_gamma, self.warmup_power = decay, warmup, warmup_gamma, warmup_power
        self.evaluate = evaluate
        self.shadow: dict[str, torch.Tensor] | None = None
        self.step = 0  # the optimizer step of the last update
        self._backup: dict[str, torch.Tensor] | None = None

    def decay_at(self, step: int) -> float:
        """The decay of the update after optimizer step ``step`` (1 for the first step)."""
        step = max(0, step - 1)
        if step == 0:
            return 0.0
        if self.warmup:
            return min(self.decay, 1 - (1 + step / self.warmup_gamma) ** -self.warmup_power)
        return self.decay

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        """Move the average towards ``module``'s current weights (after optimizer step ``step``)."""
        state = module.state_dict()
        if self.shadow is None:
            self.shadow = {k: v.detach().clone() for k, v in state.items()}
        self._to(state)
        decay = self.decay_at(step)
        floats = [k for k, v in self.shadow.items() if v.is_floating_point()]
        if floats:
            torch._foreach_lerp_([self.shadow[k] for k in floats], [state[k].detach() for k in floats], 1.0 - decay)
        for k, v in self.shadow.items():
            if not v.is_floating_point():
                v.copy_(state[k])
        self.step = step

    def _to(self, state: dict[str, torch.Tensor]) -> None:
        if self.shadow is not None:
            self.shadow = {k: v.to(state[k].device) if v.device != state[k].device else v
                           for k, v in self.shadow.items()}

    # ------------------------------------------------------------- Lightning hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.shadow is None:
            self.shadow = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self._to(pl_module.state_dict())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step > self.step:  # an optimizer step happened (not on accumulation-only batches)
            self.update(pl_module, trainer.global_step)

    def _swap_in(self, pl_module: pl.LightningModule) -> None:
        if not self.evaluate or self.shadow is None or self._backup is not None:
            return
        state = pl_module.state_dict()
        self._to(state)
        self._backup = {k: v.detach().clone() for k, v in state.items()}
        with torch.no_grad():
            for k, v in state.items():
                v.copy_(self.shadow[k])

    def _swap_out(self, pl_module: pl.LightningModule) -> None:
        if self._backup is None:
            return
        with torch.no_grad():
            for k, v in pl_module.state_dict().items():
                v.copy_(self._backup[k])
        self._backup = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._swap_in(pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._swap_out(pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._swap_in(pl_module)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._swap_out(pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._swap_out(pl_module)

    # ------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "step": self.step,
                "shadow": {k: v.detach().cpu() for k, v in (self.shadow or {}).items()} or None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.step = int(state_dict["step"])
        self.shadow = {k: v.clone() for k, v in state_dict["shadow"].items()} if state_dict.get("shadow") else None
