"""Weights-only export of a training checkpoint, for sharing:

    python -m vidrec.weights_export <run>/checkpoints/best-epoch012.ckpt r2plus1d_k400.pt

writes the model's state dict (tensors only: no optimizer, no pickled objects; ``torch.load(...,
weights_only=True)`` reads it) and ``r2plus1d_k400.pt.json`` beside it (model name, classes, input
normalisation, clip, source checkpoint). Load it back with ``load_pretrained(build_model(name, n), path)``,
or fine-tune from it with ``python train.py model.pretrained=r2plus1d_k400.pt``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from vidrec.checkpoint import export_weights, load_checkpoint, resolve_ckpt_path
from vidrec.config import model_overrides
from vidrec.errors import VidrecError
from vidrec.files import atomic_write_json


def describe(ckpt: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """What a user of the exported weights needs to know, from a train.py checkpoint."""
    cfg = (ckpt.get("hyper_parameters") or {}).get("config") or {}
    net = (cfg.get("model") or {}).get("net") or {}
    data = cfg.get("dataset") or {}
    info: dict[str, Any] = {
        "model": net.get("name"),
        "num_classes": net.get("num_classes") or data.get("num_classes"),
        "labels": ckpt.get("labels"),
        "dataset": data.get("name"),
        "clip": {"frames": (data.get("clip") or {}).get("frames"), "sample_rate": (data.get("clip") or {}).get("sample_rate"),
                 "crop_size": (data.get("train") or {}).get("crop_size")},
        "source_checkpoint": str(source),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
    }
    if net.get("name"):
        from vidrec.models import model_info

        meta = model_info(net["name"])
        info["mean"], info["std"] = list(meta.mean), list(meta.std)
    return info


def write_weights(ckpt_path: str | Path, out_path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write ``out_path`` (default: the checkpoint's path with ``.pt``) and its ``.json`` sidecar."""
    source = resolve_ckpt_path(str(ckpt_path), ".")
    assert source is not None
    out = Path(out_path) if out_path else Path(source).with_suffix(".pt")
    ckpt = load_checkpoint(source)
    info = describe(ckpt, source)
    export_weights(source, out, ckpt)
    info["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    atomic_write_json(out.with_name(out.name + ".json"), info)
    return out, info


def main(argv: list[str] | None = None) -> None:
    """``python -m vidrec.weights_export <checkpoint or run dir> [<out.pt>]``."""
    parser = argparse.ArgumentParser(description="Export the model weights of a train.py checkpoint as a plain "
                                                 "state dict (.pt) plus a JSON description.")
    parser.add_argument("checkpoint", help="a train.py checkpoint, or a run dir (its checkpoints/last.ckpt)")
    parser.add_argument("out", nargs="?", help="output .pt file (default: the checkpoint's path with .pt)")
    args = parser.parse_args(argv)
    try:
        out, info = write_weights(args.checkpoint, args.out)
    except VidrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {out} ({info['model']}, {info['num_classes']} classes) and {out.name}.json\n"
          f"load it with: load_pretrained(build_model({info['model']!r}, {info['num_classes']}), {str(out)!r})  "
          f"or fine-tune: python train.py {model_overrides(info['model'])} model.pretrained={out} dataset=<name>")


if __name__ == "__main__":
    main()
