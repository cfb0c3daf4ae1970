"""``trainer.precision=auto``: the numeric mode a device trains well in, decided once at start-up.

CPU: ``bf16-mixed`` with ``channels_last_3d`` where the CPU has native bf16 instructions (AVX512-BF16 or
AMX-BF16) and a self-check finds the bf16 conv3d weight gradients finite; ``32-true`` elsewhere. The check
exists because on an AMD EPYC machine torch 2.13's oneDNN bf16 conv3d weight gradient came out non-finite
for some inputs (docs/platforms.md). CUDA: ``bf16-mixed`` where the GPU supports it, else ``16-mixed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# (weight shape, padding, channels_last_3d): the two cases whose weight gradients went non-finite on the AMD
# machine, a (3,1,1) conv in NCDHW (25% of random inputs) and a (3,3,3) one in channels_last_3d (7%).
_CHECK_CONVS = (((32, 32, 3, 1, 1), (1, 0, 0), False), ((32, 32, 3, 3, 3), (1, 1, 1), True))


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """The native bf16 instruction sets among the CPU's flags (``avx512_bf16``, ``amx_bf16``); [] if unknown."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in BF16_FLAGS if f in flags]


def conv3d_bf16_grads_finite(trials: int = 8, seed: int = 0) -> bool:
    """Whether bf16 conv3d forward + backward gives finite weight gradients on this CPU for ``trials`` random
    inputs per conv of :data:`_CHECK_CONVS` (the repro of docs/platforms.md, smaller). Uses its own generator:
    the global RNG is left as it was."""
    g = torch.Generator().manual_seed(seed)
    for shape, padding, channels_last in _CHECK_CONVS:
        for _ in range(trials):
            x = torch.rand(2, shape[1], 4, 7, 7, generator=g).to(torch.bfloat16)
            w = torch.randn(shape, generator=g).to(torch.bfloat16)
            if channels_last:
                x, w = x.contiguous(memory_format=torch.channels_last_3d), w.contiguous(memory_format=torch.channels_last_3d)
            w.requires_grad_(True)
            F.conv3d(x, w, padding=padding).float().sum().backward()
            if not bool(torch.isfinite(w.grad).all()):
                return False
    return True


def resolve_precision(trainer_cfg: Mapping[str, Any], accelerator: str,
                      self_check: Callable[[], bool] = conv3d_bf16_grads_finite,
                      native_bf16: bool | None = None) -> tuple[str, bool, str]:
    """``(precision, channels_last, reason)`` for ``trainer_cfg["precision"]`` on ``accelerator`` (``cpu`` or
    ``cuda``). Only ``auto`` is resolved; other values come back as given with ``channels_last`` False (the
    model config decides). ``self_check`` and ``native_bf16`` (default: the CPU flags) exist to force a case."""
    precision = str(trainer_cfg.get("precision", "32-true"))
    if precision != "auto":
        return precision, False, "as configured"
    if accelerator == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", False, f"auto: {torch.cuda.get_device_name()} supports bf16"
        return "16-mixed", False, f"auto: {torch.cuda.get_device_name()} has no bf16"
    if accelerator != "cpu":
        return "32-true", False, f"auto: fp32 on {accelerator}"
    flags = cpu_bf16_flags()
    if not (bool(flags) if native_bf16 is None else native_bf16):
        return "32-true", False, "auto: fp32, the CPU has no native bf16 (avx512_bf16/amx_bf16)"
    start = time.perf_counter()
    ok = self_check()
    ms = (time.perf_counter() - start) * 1e3
    native = "+".join(flags) or "native bf16"
    if not ok:
        return "32-true", False, f"auto: fp32, the bf16 conv3d gradient self-check failed on this CPU ({native}; {ms:.0f} ms)"
    return "bf16-mixed", True, f"auto: {native}, bf16 conv3d gradient self-check passed in {ms:.0f} ms"


#: What eval.py, predict.py, extract.py, timelines and the demo compute in unless asked otherwise: fp32, the
#: precision the authors of every released checkpoint report their accuracy in (a bf16 test is a departure).
INFERENCE_PRECISION = "32-true"
INFERENCE_PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def inference_autocast(precision: str, device: torch.device | str) -> Any:
    """The autocast context of an inference ``precision`` (:data:`INFERENCE_PRECISIONS`) on ``device``."""
    import contextlib

    from vidrec.errors import ConfigError

    if precision not in INFERENCE_PRECISIONS:
        raise ConfigError(f"precision={precision}: use one of {', '.join(INFERENCE_PRECISIONS)}")
    if precision == "32-true":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast(torch.device(device).type, dtype=dtype)
