"""How a run uses its hardware: effective batch size and the learning-rate scaling rule, and trainer arguments
that only make sense on some devices."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from vidrec.errors import ConfigError
from vidrec.precision import resolve_precision

log = logging.getLogger("vidrec")
SCALING_RULES = ("none", "linear")


def effective_batch_size(cfg: Mapping[str, Any], world_size: int) -> int:
    """Clips per optimizer step: ``dataset.batch_size`` × processes (devices × nodes) × gradient accumulation."""
    accumulate = int(cfg["trainer"].get("accumulate_grad_batches") or 1)
    return int(cfg["dataset"]["batch_size"]) * int(world_size) * accumulate


def scaled_lr(cfg: Mapping[str, Any], world_size: int) -> tuple[float | None, str]:
    """The learning rate to train with and a description of how it was derived.

    ``optimizer_scaling.rule=linear`` (Goyal et al., 2017) multiplies ``optimizer.lr`` by
    effective batch / ``optimizer_scaling.base_batch_size``; ``none`` (the default) keeps ``optimizer.lr``.
    """
    lr = (cfg.get("optimizer") or {}).get("lr")
    scaling = cfg.get("optimizer_scaling") or {}
    rule = str(scaling.get("rule") or "none")
    if rule not in SCALING_RULES:
        raise ConfigError(f"optimizer_scaling.rule={rule} is not one of {', '.join(SCALING_RULES)}")
    eff = effective_batch_size(cfg, world_size)
    if rule == "none" or lr is None:
        return lr, f"lr {lr} (scaling rule none)"
    base = scaling.get("base_batch_size")
    if not isinstance(base, int | float) or base <= 0:
        raise ConfigError(f"optimizer_scaling.base_batch_size={base}: the linear rule needs the batch size that "
                          f"optimizer.lr={lr} was set for, e.g. optimizer_scaling.base_batch_size=256")
    new = float(lr) * eff / float(base)
    return new, f"lr {new:.6g} = {lr} × {eff}/{base} (linear scaling rule, base batch {base})"


def apply_scaling(cfg: dict[str, Any], world_size: int) -> str:
    """Set ``cfg.optimizer.lr`` to the scaled learning rate (kept as ``optimizer_scaling.base_lr``); describe it."""
    lr, text = scaled_lr(cfg, world_size)
    if lr is not None and cfg.get("optimizer") and lr != cfg["optimizer"].get("lr"):
        cfg.setdefault("optimizer_scaling", {})["base_lr"] = cfg["optimizer"]["lr"]
        cfg["optimizer"]["lr"] = lr
    return text


def on_cpu(trainer_cfg: Mapping[str, Any]) -> bool:
    """Whether a trainer config runs on CPU processes (``accelerator=cpu``, or ``auto`` without CUDA)."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def resolve_compute(cfg: dict[str, Any]) -> str:
    """Resolve ``trainer.precision=auto`` in ``cfg`` in place (:func:`vidrec.precision.resolve_precision`); when
    it picks channels_last_3d, ``model.channels_last`` is turned on. Returns the reason, for the start-up line."""
    t = cfg["trainer"]
    precision, channels_last, reason = resolve_precision(t, "cpu" if on_cpu(t) else "cuda")
    t["precision"] = precision
    if channels_last and "model" in cfg:
        cfg["model"]["channels_last"] = True
    return reason


def trainer_config(trainer_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer config to instantiate: ``precision=auto`` resolved (when :func:`resolve_compute` has not
    already done so); ``sync_batchnorm`` dropped on CPU (torch's SyncBatchNorm has GPU kernels only), with a
    warning."""
    out = dict(trainer_cfg)
    if out.get("precision") == "auto":
        reason = resolve_compute({"trainer": out})
        log.info("trainer.precision=auto: %s (%s)", out["precision"], reason)
    if out.get("sync_batchnorm") and on_cpu(out):
        log.warning("trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU kernels): turned off, "
                    "so each CPU process normalises with the statistics of its own batch")
        out["sync_batchnorm"] = False
    return out


def describe_compute(cfg: Mapping[str, Any], world_size: int, lr_text: str, precision_reason: str | None = None) -> str:
    """The start-up line's compute part: processes, effective batch, learning rate, precision (and why, when
    ``auto`` chose it) and options."""
    t, m, d = cfg["trainer"], cfg["model"], cfg["dataset"]
    accumulate = int(t.get("accumulate_grad_batches") or 1)
    clip = t.get("gradient_clip_val")
    clip_text = f"{clip} ({t.get('gradient_clip_algorithm') or 'norm'})" if clip else "off"
    parts = [
        f"{t.get('accelerator', 'auto')} × {t.get('devices', 1)} device(s) × {t.get('num_nodes', 1)} node(s), "
        f"strategy {t.get('strategy', 'auto')}",
        f"effective batch {effective_batch_size(cfg, world_size)} = {d['batch_size']} × {world_size} process(es) × "
        f"{accumulate} accumulation",
        lr_text,
        f"precision {t.get('precision', '32-true')}"
        + (f" ({precision_reason})" if precision_reason and precision_reason != "as configured" else ""),
        f"grad clip {clip_text}",
        f"channels_last_3d {'on' if m.get('channels_last') else 'off'}",
        f"torch.compile {(m.get('compile') if isinstance(m.get('compile'), Mapping) else 'on') if m.get('compile') else 'off'}",
    ]
    if t.get("sync_batchnorm"):
        parts.append("sync BN")
    return " | ".join(parts)
