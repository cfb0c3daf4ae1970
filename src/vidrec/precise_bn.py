"""Precise BatchNorm statistics: recompute every BatchNorm layer's running mean and variance over N training batches
with the weights fixed, before validation / test (PySlowFast BN.USE_PRECISE_STATS, BN.NUM_BATCHES_PRECISE 200,
SlowFast slowfast/config/defaults.py@287ec00:99-102, tools/train_net.py:425-446 and :698-709 calling fvcore's
``update_bn_stats``).

fvcore (fvcore/nn/precise_bn.py, 0.1.5.post20221221: ``update_bn_stats`` :90-192 with the
``_PopulationVarianceEstimator`` :54-87) sets the population statistics of all the elements the layer saw:
the mean over every element, and the variance ``E[x²] - E[x]²`` over every element (Bessel's correction undone,
batches weighted by their element counts). Here the same statistics are accumulated from the layers' inputs in
float64 (sums of x and x²), not from the layers' running buffers, and summed over ranks under DDP, so every
process ends with the statistics of the global set of batches. Nothing else changes: parameters, other buffers,
``num_batches_tracked``, ``momentum``, every module's training flag and the global random state (dropout in the
pass draws from a forked generator) are as before.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

log = logging.getLogger(__name__)


def bn_layers(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers (1d/2d/3d/Sync) that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def update_bn_stats(model: nn.Module, batches: Iterable[Any], num_batches: int,
                    forward: Callable[[nn.Module, Any], Any] | None = None) -> int:
    """Set the running statistics of ``model``'s BatchNorm layers to those of the first ``num_batches`` of
    ``batches`` (``forward(model, batch)``, default ``model(batch)``), the model in training mode. A BatchNorm layer
    held in eval mode inside a model in training mode (frozen, as fine-tuning does) keeps its statistics and stays in
    eval mode for the pass. Returns the number of batches used (fewer when ``batches`` runs out)."""
    flags = {m: m.training for m in model.modules()}
    frozen = {m for m in bn_layers(model) if model.training and not m.training}
    layers = [m for m in bn_layers(model) if m not in frozen]
    if not layers or num_batches <= 0:
        return 0
    sums: dict[nn.Module, list] = {m: [0.0, 0.0, 0] for m in layers}

    def accumulate(module: nn.Module, inputs: tuple) -> None:
        x = inputs[0].detach().double().transpose(0, 1).reshape(inputs[0].shape[1], -1)
        acc = sums[module]
        acc[0], acc[1], acc[2] = acc[0] + x.sum(1), acc[1] + (x * x).sum(1), acc[2] + x.shape[1]

    kept = {m: (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in layers}
    hooks = [m.register_forward_pre_hook(accumulate) for m in layers]
    device = next(itertools.chain(model.parameters(), model.buffers())).device
    try:
        model.train()
        for m in frozen:
            m.eval()
        used = 0
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for batch in itertools.islice(batches, num_batches):
                if forward is None:
                    model(batch)
                else:
                    forward(model, batch)
                used += 1
    finally:
        for h in hooks:
            h.remove()
        for m, flag in flags.items():
            m.train(flag)
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    for m in layers:
        mean, var, count = kept[m]
        total, squares, n = sums[m]
        if distributed:
            packed = torch.cat([torch.as_tensor(total, dtype=torch.float64, device=mean.device).reshape(-1),
                                torch.as_tensor(squares, dtype=torch.float64, device=mean.device).reshape(-1),
                                torch.tensor([float(n)], dtype=torch.float64, device=mean.device)])
            dist.all_reduce(packed)
            c = mean.numel()
            total, squares, n = packed[:c], packed[c : 2 * c], float(packed[-1])
        m.num_batches_tracked.copy_(count)
        if not n:  # the layer saw nothing (unused in these forwards): its statistics stay
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            continue
        pop_mean = total / n
        m.running_mean.copy_(pop_mean)
        m.running_var.copy_(squares / n - pop_mean * pop_mean)
    return used


class PreciseBN(pl.Callback):
    """Recompute BatchNorm statistics over ``num_batches`` training batches at the end of every
    ``every_n_epochs``-th training epoch (on its last batch, so before that epoch's validation and checkpoint).

    The batches come from a fresh training loader of the datamodule (the epoch's own order and augmentation),
    moved to the device and normalised by the LightningModule's own hooks; ``batch['video']`` is the input.
    Models without BatchNorm are left alone.
    """

    def __init__(self, num_batches: int = 200, every_n_epochs: int = 1):
        self.num_batches, self.every_n_epochs = int(num_batches), int(every_n_epochs)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not trainer.is_last_batch or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        net = getattr(pl_module, "model", pl_module)
        if not bn_layers(net):
            return
        source = trainer.datamodule if getattr(trainer, "datamodule", None) is not None else None
        loader = source.train_dataloader() if source is not None else trainer.train_dataloader

        def inputs() -> Iterable[torch.Tensor]:
            for item in loader:
                item = pl_module.on_after_batch_transfer(
                    pl_module.transfer_batch_to_device(item, pl_module.device, 0), 0)
                video = item.get("video") if isinstance(item, dict) else item[0]
                if video is not None:
                    yield video

        used = update_bn_stats(net, inputs(), self.num_batches)
        if used < self.num_batches:
            log.info("precise BN: the training loader has %d batches, fewer than the %d asked for", used,
                     self.num_batches)
        log.info("precise BN: statistics of %d layers recomputed over %d batches", len(bn_layers(net)), used)
