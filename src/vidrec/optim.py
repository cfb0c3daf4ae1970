"""Learning-rate schedules that torch does not ship, and optimizer parameter groups (no weight decay on norms,
biases and embeddings; layer-wise learning-rate decay)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from vidrec.errors import ConfigError


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


# ------------------------------------------------------------------ parameter groups
# Parameters left out of weight decay by name (besides every 1-D parameter: norms and biases), position embeddings
# and class tokens as the authors leave them out: VideoMAE ``no_weight_decay`` {'pos_embed', 'cls_token'}
# (modeling_finetune.py@cece388:251-252); TimeSformer adds 'time_embed' (timesformer/models/vit.py@ddb4cf3:
# 239-240); PySlowFast MViT
# pos_embed_spatial/temporal/class, rel_pos_h/w/t and cls_token (slowfast/models/video_model_builder.py@88bb4c9:
# 1095-1116), named in vidrec's MViT as torchvision names them (pos_encoding.spatial_pos / temporal_pos / class_pos /
# class_token); Video Swin 'absolute_pos_embed' and 'relative_position_bias_table' (decay_mult 0, configs/recognition/
# swin/swin_tiny_patch244_window877_kinetics400_1k.py@db018fb:92-95). Matched on a parameter's own name (the part
# after the last dot) by prefix.
NO_WEIGHT_DECAY = ("pos_embed", "cls_token", "mask_token", "time_embed", "rel_pos", "relative_position_bias_table",
                   "absolute_pos_embed", "class_token", "spatial_pos", "temporal_pos", "class_pos")
# Names of the layer-0 (embedding) parameters: the authors' ViT names, then TimeSformer's time embedding and the
# torchvision names of vidrec's MViT (``conv_proj`` is PySlowFast's patch_embed, ``pos_encoding`` its embeddings).
EMBEDDINGS = ("cls_token", "mask_token", "pos_embed", "patch_embed", "time_embed", "conv_proj", "pos_encoding")


def _named(name: str, keys: Sequence[str]) -> bool:
    """``name`` equals a key, or its last component (the parameter's own name) starts with one."""
    last = name.rsplit(".", 1)[-1]
    return any(name == k or last.startswith(k) for k in keys)


def num_layers(model: nn.Module) -> int:
    """The model's number of blocks for layer decay: its ``num_layers`` (an int or a method), VideoMAE's
    ``get_num_layers()`` (``len(self.blocks)``, modeling_finetune.py@cece388:247-248), else ``len(model.blocks)``."""
    value = getattr(model, "num_layers", None)
    if value is None and hasattr(model, "get_num_layers"):
        value = model.get_num_layers
    value = value() if callable(value) else value
    if value is None:
        blocks = getattr(model, "blocks", None)
        if blocks is None:
            raise ConfigError(f"optimizer.layer_decay needs the layer structure of {type(model).__name__}: give it "
                              "`num_layers` and `layer_id(name)`, or blocks named `blocks.<i>`; or set "
                              "optimizer.layer_decay=1.0")
        value = len(blocks)
    return int(value)


def vit_layer_id(name: str, num_layers: int) -> int:
    """The layer of a parameter of a ViT-style model (VideoMAE optim_factory.py@ed5ce1f:24-35 ``get_num_layer_for_vit``,
    PySlowFast SlowFast slowfast/models/optimizer.py@287ec00:147-158 for MViT): 0 for the embeddings (names starting
    with one of :data:`EMBEDDINGS`: ``cls_token``, ``mask_token``, ``pos_embed*``, ``patch_embed.*``, and their other
    names ``time_embed``, ``conv_proj.*``, ``pos_encoding.*``); i + 1 for ``blocks.<i>.*``; ``num_layers + 1`` for the
    rest (final norm, ``fc``)."""
    if name.startswith(EMBEDDINGS):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers + 1


def param_groups(model: nn.Module, lr: float, weight_decay: float, layer_decay: float = 1.0,
                 no_weight_decay: Sequence[str] = NO_WEIGHT_DECAY, head_lr_mult: float = 1.0,
                 head: str = "fc", decay_1d: bool = False) -> list[dict]:
    """Optimizer parameter groups of ``model``'s trainable parameters, each with its own ``lr`` and
    ``weight_decay`` (schedulers then scale every group's lr alike).

    - Weight decay 0 for 1-D parameters (norm weights, biases), for names matched by ``no_weight_decay`` (the
      parameter's own name starts with one, or the full name equals one) and for the names the model's
      ``no_weight_decay()`` returns (timm / VideoMAE / PySlowFast convention); ``weight_decay`` for the rest
      (VideoMAE optim_factory.py:56-61; PySlowFast ZERO_WD_1D_PARAM, optimizer.py:188-200).
    - Layer-wise lr decay when ``layer_decay < 1``: ``lr · layer_decay ** (L + 1 - layer_id)`` with L =
      :func:`num_layers` (VideoMAE run_class_finetuning.py@1d5cc4f:415-417; ``LayerDecayValueAssigner``,
      optim_factory.py:38-46;
      the authors use 0.75). ``layer_id`` comes from ``model.layer_id(name)`` (an int in [0, L + 1]) when the model
      defines it (hierarchical models: MViT, Swin), else :func:`vit_layer_id`.
    - ``decay_1d=True`` keeps weight decay on 1-D parameters too (only the layer-wise lr is wanted).
    - ``head_lr_mult`` multiplies the lr of the classifier (``head``, ``fc`` by convention) as ``model.head_lr_mult``.

    Each group also holds ``lr_scale`` (its lr / ``lr``) and a ``name`` such as ``layer_3_no_decay``.
    """
    decay_layers = layer_decay < 1.0
    total = num_layers(model) if decay_layers else 0
    skip = set(no_weight_decay)
    if hasattr(model, "no_weight_decay"):
        skip |= set(model.no_weight_decay())
    groups: dict[str, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = (not decay_1d and (p.ndim <= 1 or name.endswith(".bias"))) or _named(name, tuple(skip))
        scale = 1.0
        key = "no_decay" if no_decay else "decay"
        if decay_layers:
            layer = model.layer_id(name) if hasattr(model, "layer_id") else vit_layer_id(name, total)
            if not 0 <= layer <= total + 1:
                raise ValueError(f"layer_id({name!r}) = {layer} is outside [0, {total + 1}]")
            scale = layer_decay ** (total + 1 - layer)
            key = f"layer_{layer}_{key}"
        if head_lr_mult != 1.0 and (name == head or name.startswith(head + ".")):
            scale *= head_lr_mult
            key = f"{key}_head"
        group = groups.setdefault(key, {"name": key, "params": [], "lr": lr * scale, "lr_scale": scale,
                                        "weight_decay": 0.0 if no_decay else weight_decay})
        group["params"].append(p)
    return list(groups.values())
