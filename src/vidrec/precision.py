"""``trainer.precision=auto``: the numeric mode a device trains well in, decided once at start-up.

CPU: ``bf16-mixed`` with ``channels_last_3d`` where the CPU has native bf16 instructions (AVX512-BF16 or
AMX-BF16) and a self-check finds the bf16 conv3d weight gradients finite; ``32-true`` elsewhere. The check
exists because on an AMD EPYC machine torch 2.13's oneDNN bf16 conv3d weight gradient came out non-finite
for some inputs, and the check itself crashed one process in three there (docs/platforms.md): it runs in a
child process, once per CPU model and torch version, its verdict cached. CUDA: ``bf16-mixed`` where the GPU
supports it, else ``16-mixed``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vidrec.files import atomic_write_json

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# (input shape, weight shape, padding, channels_last_3d): convs over a 2-frame input, as in the last blocks of a
# network fed 8 frames, where the weight gradients went non-finite on an AMD EPYC (avx512_bf16) machine: a (3,1,1)
# conv in NCDHW (95% of random inputs) and a (3,3,3) one in channels_last_3d (16%). Over 4 frames the same convs
# came out finite (0 of 64), which is why a check over longer inputs passed there while training went NaN.
_CHECK_CONVS = (((4, 32, 2, 7, 7), (32, 32, 3, 1, 1), (1, 0, 0), False),
                ((4, 64, 2, 7, 7), (64, 64, 3, 3, 3), (1, 1, 1), True))


def _cpuinfo_field(name: str, cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The first ``name : value`` of ``cpuinfo``; "" if absent or unreadable."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(name)), "")


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """The native bf16 instruction sets among the CPU's flags (``avx512_bf16``, ``amx_bf16``); [] if unknown."""
    flags = _cpuinfo_field("flags", cpuinfo).split()
    return [f for f in BF16_FLAGS if f in flags]


def conv3d_bf16_grads_finite(trials: int = 8, seed: int = 0) -> bool:
    """Whether bf16 conv3d forward + backward gives finite weight gradients on this CPU for ``trials`` random
    inputs per conv of :data:`_CHECK_CONVS` (the repro of docs/platforms.md, smaller). Uses its own generator:
    the global RNG is left as it was."""
    g = torch.Generator().manual_seed(seed)
    for x_shape, w_shape, padding, channels_last in _CHECK_CONVS:
        for _ in range(trials):
            x = torch.rand(x_shape, generator=g).to(torch.bfloat16)
            w = torch.randn(w_shape, generator=g).to(torch.bfloat16)
            if channels_last:
                x, w = x.contiguous(memory_format=torch.channels_last_3d), w.contiguous(memory_format=torch.channels_last_3d)
            w.requires_grad_(True)
            F.conv3d(x, w, padding=padding).float().sum().backward()
            if not bool(torch.isfinite(w.grad).all()):
                return False
    return True


def check_cache_path() -> Path:
    """Where the self-check's verdicts are kept: ``$VIDREC_CACHE`` or ``~/.cache/vidrec``, ``cpu_bf16_check.json``."""
    root = os.environ.get("VIDREC_CACHE") or Path.home() / ".cache" / "vidrec"
    return Path(root) / "cpu_bf16_check.json"


def isolated_self_check(timeout: float = 120.0) -> bool:
    """:func:`conv3d_bf16_grads_finite` in a child process (a crash or a hang is a failed check), run once per
    CPU model and torch version: the verdict is cached in :func:`check_cache_path`."""
    key = f"{_cpuinfo_field('model name') or 'unknown CPU'} | {'+'.join(cpu_bf16_flags())} | torch {torch.__version__}"
    path = check_cache_path()
    try:
        verdicts = json.loads(path.read_text())
    except (OSError, ValueError):
        verdicts = {}
    if isinstance(verdicts.get(key), bool):
        return verdicts[key]
    code = "import sys\nfrom vidrec.precision import conv3d_bf16_grads_finite as check\nsys.exit(0 if check() else 3)"
    try:
        ok = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=timeout,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {**verdicts, key: ok})
    except OSError:
        pass  # a read-only home: the check runs again next time
    return ok


def resolve_precision(trainer_cfg: Mapping[str, Any], accelerator: str,
                      self_check: Callable[[], bool] = isolated_self_check,
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
    where = f", verdict cached in {check_cache_path()}" if self_check is isolated_self_check else ""
    if not ok:
        return "32-true", False, f"auto: fp32, the bf16 conv3d gradient self-check failed on this CPU ({native}; {ms:.0f} ms{where})"
    return "bf16-mixed", True, f"auto: {native}, bf16 conv3d gradient self-check passed in {ms:.0f} ms{where}"


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
