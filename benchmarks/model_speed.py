"""Model speed table: forward and forward+backward clips/s per registry model on CPU, per numeric mode.

Modes: fp32; bf16 autocast; channels_last_3d; bf16 + channels_last_3d; torch.compile (fp32). Input: the
model's default clip (``vidrec.models.model_info``), batch 1, unless ``--frames/--size`` shrink it (CPU is
slow: the quick default runs 8×112×112 and says so). CPU time of this process on one torch thread (the
per-core cost; a shared machine makes wall time meaningless), 1 warm-up + ``--iters`` timed iterations.
Ratios are to fp32. The last line: R(2+1)D-18 forward+backward, bf16 + channels_last_3d vs fp32.

Caution: on some CPUs (an AMD EPYC with torch 2.13) bf16 conv3d weight gradients come out non-finite for some
inputs; ``trainer.precision=auto`` picks bf16 only where a self-check passes (docs/platforms.md).

    python benchmarks/model_speed.py                     # quick: 4 models, 8x112x112, compile for r2plus1d_18
    python benchmarks/model_speed.py --all --default-input --compile-all   # the full table (hours on 2 cores)
    python benchmarks/model_speed.py --models r2plus1d_18 --modes fp32,bf16+cl3d --iters 3   # the headline only
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings

import common
import torch

from vidrec.models import build_model, list_models, model_info

MODES = ("fp32", "bf16", "cl3d", "bf16+cl3d", "compile")
QUICK_MODELS = ("r2plus1d_18", "r3d_18", "mc3_18", "resnet3d_18")


def run(model: torch.nn.Module, x: torch.Tensor, mode: str, backward: bool, iters: int) -> float:
    """Clips/s (CPU time) of forward (+ backward) in ``mode``."""
    if "cl3d" in mode:
        model = model.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    if mode == "compile":
        model = torch.compile(model)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if "bf16" in mode else contextlib.nullcontext()
    model.train(backward)

    def step() -> None:
        with torch.set_grad_enabled(backward), autocast:
            out = model(x)
        if backward:
            out.float().sum().backward()
            model.zero_grad(set_to_none=True)

    step()  # warm-up (and compilation)
    t = time.process_time()
    for _ in range(iters):
        step()
    return iters * x.shape[0] / (time.process_time() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every registry model (default: a quick subset)")
    parser.add_argument("--default-input", action="store_true", help="each model's default clip, not 8x112x112")
    parser.add_argument("--compile-all", action="store_true", help="torch.compile every model (slow to compile)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--iters", type=int, default=1)
    parser.add_argument("--models", default="", help="comma-separated model names (default: the quick subset)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes (fp32 always runs)")
    args = parser.parse_args()
    modes = ["fp32", *[m for m in args.modes.split(",") if m in MODES and m != "fp32"]]
    common.header("model speed: clips/s per mode (CPU time, 1 thread, batch 1)")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    names = list_models() if args.all else args.models.split(",") if args.models else list(QUICK_MODELS)
    print(f"{'model':<16} {'input':<11} {'pass':<8} " + " ".join(f"{m:>14}" for m in modes))
    figures, headline = {}, float("nan")
    for name in names:
        info = model_info(name)
        frames, size = (info.default_frames, info.default_size) if args.default_input else (args.frames, args.size)
        x = torch.randn(1, 3, frames, size, size)
        for backward in (False, True):
            rates = {}
            for mode in modes:
                if mode == "compile" and not (args.compile_all or name == "r2plus1d_18"):
                    continue
                torch.manual_seed(0)
                rates[mode] = run(build_model(name, 400), x, mode, backward, args.iters)
            cells = [f"{rates[m]:6.2f} ({rates[m] / rates['fp32']:.2f}x)" if m in rates else f"{'-':>14}" for m in modes]
            kind = "fwd+bwd" if backward else "fwd"
            print(f"{name:<16} {f'{frames}x{size}x{size}':<11} {kind:<8} " + " ".join(f"{c:>14}" for c in cells))
            figures[f"{name}/{kind}"] = {"input": [frames, size, size], "clips_per_s": rates}
            if name == "r2plus1d_18" and backward and "bf16+cl3d" in rates:
                headline = rates["bf16+cl3d"] / rates["fp32"]
    common.finish("model_speed", headline, 1.0, figures)


if __name__ == "__main__":
    main()
