"""vidrec's networks against the reference implementations of the same models: forward + backward, CPU time of this
process, the same input (each side with its own initial weights: the time does not depend on their values),
alternating rounds, fp32 and bf16 autocast (+ channels_last_3d for the convolutional ones).

    python benchmarks/reference_speed.py [--rounds 3] [--size 112] [--models slowfast_r50_8x8,x3d_m,...]

References (need the ``make test-matrix`` venv: torch 2.14.1 + torchvision 0.29.1 + pytorchvideo 0.1.5; transformers
imports in both): pytorchvideo's ``slowfast_r50``, ``x3d_m``, ``csn_r101``; torchvision's ``mvit_v2_s``, ``swin3d_t``;
transformers' ``VideoMAEForVideoClassification`` (ViT-B). A model whose reference does not import is skipped with the
reason. Each pair runs at the authors' clip length and a reduced crop (``--size``, 112 by default: CPU time); the
transformers with a fixed input size run at their own (224, MViT and VideoMAE). The ratio is reference time ÷
vidrec time (> 1: vidrec is faster); the last line is the worst pair and mode.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable

import common
import torch
from torch import nn

from vidrec.models import build_model

TARGET = 1.0


def adaptive_head_pools(net: nn.Module) -> nn.Module:
    """pytorchvideo's heads pool with a kernel fixed for the authors' crop: the same pooling over whatever map the
    reduced crop gives (no parameters change; vidrec's heads pool adaptively)."""
    for module in list(net.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.AvgPool3d):
                setattr(module, child_name, nn.AdaptiveAvgPool3d(1))
    return net


def pytorchvideo(name: str) -> Callable[[int], nn.Module]:
    def build(size: int) -> nn.Module:
        from pytorchvideo.models import hub

        kwargs = {"head_activation": None} if name == "x3d_m" else {}
        return adaptive_head_pools(getattr(hub, name)(pretrained=False, **kwargs))
    return build


class PackPathway(nn.Module):
    """pytorchvideo's SlowFast takes [slow, fast]: the authors' PackPathway in front (as vidrec does inside)."""

    def __init__(self, net: nn.Module, alpha: int = 4) -> None:
        super().__init__()
        self.net, self.alpha = net, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = torch.linspace(0, x.shape[2] - 1, x.shape[2] // self.alpha).long()
        return self.net([torch.index_select(x, 2, index), x])


class Logits(nn.Module):
    """A transformers classifier as a function of the clip (B, C, T, H, W) → logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=x.transpose(1, 2)).logits


def videomae_b(size: int) -> nn.Module:
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    return Logits(VideoMAEForVideoClassification(VideoMAEConfig(num_labels=400, use_mean_pooling=True)))


def torchvision(name: str) -> Callable[[int], nn.Module]:
    def build(size: int) -> nn.Module:
        from torchvision.models import video

        return getattr(video, name)()
    return build


#: vidrec name: (reference builder, frames, fixed size or None, convolutional)
PAIRS = {
    "slowfast_r50_8x8": (lambda s: PackPathway(pytorchvideo("slowfast_r50")(s)), 32, None, True),
    "x3d_m": (pytorchvideo("x3d_m"), 16, None, True),
    "csn_r101": (pytorchvideo("csn_r101"), 32, None, True),
    "mvit_v2_s": (torchvision("mvit_v2_s"), 16, 224, False),
    "swin3d_t": (torchvision("swin3d_t"), 32, None, False),
    "videomae_vit_b": (videomae_b, 16, 224, False),
}


def step(model: nn.Module, x: torch.Tensor, bf16: bool) -> Callable[[], None]:
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def run() -> None:
        with autocast:
            out = model(x)
        out.float().square().mean().backward()
        model.zero_grad(set_to_none=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--models", default=",".join(PAIRS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    common.header("vidrec vs the reference implementations: forward + backward, CPU time, batch 1")
    ratios, figures = {}, {}
    for name in args.models.split(","):
        build_ref, frames, fixed, conv = PAIRS[name]
        size = fixed or args.size
        try:
            reference = build_ref(size).train()
        except ImportError as exc:
            print(f"{name}: skipped, the reference does not import here ({exc})")
            continue
        ours = build_model(name, 400).train()
        x = torch.randn(1, 3, frames, size, size)
        modes = ["fp32", "bf16"] + (["bf16+cl3d"] if conv else [])
        for mode in modes:
            a, b, xi = ours, reference, x
            if "cl3d" in mode:
                a = a.to(memory_format=torch.channels_last_3d)
                b = b.to(memory_format=torch.channels_last_3d)
                xi = x.contiguous(memory_format=torch.channels_last_3d)
            c = common.compare(step(a, xi, "bf16" in mode), step(b, xi, "bf16" in mode), work=1, rounds=args.rounds)
            ratios[f"{name} {mode}"] = c.ratio
            figures[f"{name} {mode}"] = {"vidrec_s": common.median(c.candidate), "reference_s": common.median(c.reference),
                                         "input": [1, 3, frames, size, size]}
            print(f"{name:<16} {mode:<10} {frames}×{size}²: vidrec {common.median(c.candidate):.2f} s, reference "
                  f"{common.median(c.reference):.2f} s — ratio {c.ratio:.2f}", flush=True)
    if not ratios:
        raise SystemExit("no reference imports here: run it in the make test-matrix venv (.venv-tv)")
    worst = min(ratios, key=ratios.get)
    print(f"worst: {worst} {ratios[worst]:.2f}")
    common.finish("reference_speed", ratios[worst], TARGET, figures)


if __name__ == "__main__":
    main()
