"""Model export: ONNX or TorchScript with a fixed view shape ``(3, T, H, W)`` and a dynamic batch, plus a JSON
sidecar (input shape, mean/std, class names, the test protocol down to the resize filter and crop positions) that
tells a deployment how to feed the model. A whole-video protocol (``clip_selection: whole``) is exported to ONNX with
a dynamic time axis as well, checked at other lengths than the traced one; ``examples/onnx_predict.py`` runs such a
file on a video from its sidecar alone.

ONNX goes through PyTorch's TorchScript-based exporter (``dynamo=False``, opset 17 by default): it is fast,
supports a dynamic batch through ``dynamic_axes``, and opset 17 runs on every current onnxruntime and
TensorRT. ``onnx.dynamo=true`` uses the ``torch.export``-based exporter instead (slower; opset 18 or newer).
TorchScript files are traced: the graph is fixed for the given T, H, W (data-dependent branches, such as the
Inception-I3D's final pooling, are resolved for that shape), while the batch size stays free.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from vidrec.errors import ConfigError, VidrecError
from vidrec.files import atomic_open, atomic_write_json, free_bytes
from vidrec.inference import InferenceModel, load_inference_model

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript"}
INPUT_NAME, OUTPUT_NAME = "video", "logits"


def export_onnx(net: nn.Module, example: torch.Tensor, path: Path, opset: int = 17, dynamo: bool = False,
                dynamic_time: bool = False) -> None:
    """Write ``net`` as ONNX with input ``video`` ``(batch, 3, T, H, W)`` and output ``logits`` ``(batch, C)``; the
    batch is dynamic, and the time axis too with ``dynamic_time``."""
    axes = {0: "batch", 2: "frames"} if dynamic_time else {0: "batch"}
    with warnings.catch_warnings():  # tracer warnings are expected for a fixed T, H, W
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(net, (example,), dynamo=True, opset_version=max(opset, 18),
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=({k: torch.export.Dim(v) for k, v in axes.items()},))
            tmp = path.with_name(f".{path.name}.tmp")
            program.save(str(tmp))
            os.replace(tmp, path)
        else:
            with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp:
                staged = Path(tmp) / path.name
                torch.onnx.export(net, (example,), str(staged), dynamo=False, opset_version=opset,
                                  input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: {0: "batch"}})
                if any(p != staged for p in Path(tmp).iterdir()):  # over protobuf's 2 GiB: one file per tensor
                    _gather_external_data(staged, external_data_path(path).name)
                    os.replace(external_data_path(staged), external_data_path(path))
                os.replace(staged, path)  # the graph last: it is never there without its weights


def external_data_path(path: Path) -> Path:
    """Where the weights of an ONNX file over protobuf's 2 GiB limit lie: ``<file>.data`` beside it (onnxruntime
    finds them by the relative location recorded in the graph)."""
    return path.with_name(path.name + ".data")


def _gather_external_data(path: Path, location: str) -> None:
    """Rewrite the ONNX file ``path`` with all its external tensors in one file, ``location``, beside it."""
    try:
        import onnx
    except ImportError:
        raise VidrecError(f"{path.name}: the model is over protobuf's 2 GiB, and gathering its weights in one file "
                          "needs the onnx package: pip install onnx") from None
    model = onnx.load(str(path))  # with the per-tensor files the exporter wrote beside it
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=location)


def export_torchscript(net: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write ``net`` traced on ``example`` as a TorchScript archive (load with ``torch.jit.load``)."""
    with warnings.catch_warnings(), torch.no_grad():  # tracer warnings are expected for a fixed T, H, W
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, example, check_trace=False)
    with atomic_open(path, "wb") as handle:
        torch.jit.save(traced, handle)


def load_exported(path: str | Path, fmt: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function running an exported file (onnxruntime for ONNX, ``torch.jit.load`` for TorchScript)."""
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(None, {INPUT_NAME: np.ascontiguousarray(x.numpy())})[0])
    module = torch.jit.load(str(path), map_location="cpu")

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


def max_difference(net: nn.Module, path: str | Path, fmt: str, shape: tuple[int, ...], batch: int = 2, seed: int = 0) -> float:
    """Largest absolute difference between ``net`` and the exported file on a random batch (≠ the traced batch of 1)."""
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = net(x)
    out = load_exported(path, fmt)(x)
    if out.shape != ref.shape:
        raise VidrecError(f"{path}: exported model returns {tuple(out.shape)} for input {tuple(x.shape)}, expected {tuple(ref.shape)}")
    return float((out - ref).abs().max())


#: protobuf's limit on one ONNX file: a bigger model is written one file per tensor, then gathered into one
PROTOBUF_LIMIT = 2**31


def space_needed(net: nn.Module, fmt: str) -> int:
    """Bytes an export of ``net`` holds on disk at its peak: its weights once, twice for an ONNX file over protobuf's
    limit (the exporter's file per tensor, then the gathered ``<file>.data``), plus a margin for the graph."""
    weights = sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()])
    copies = 2 if fmt == "onnx" and weights > PROTOBUF_LIMIT else 1
    return copies * weights + 64 * 2**20


def check_space(net: nn.Module, name: str, fmt: str, path: Path) -> None:
    """Fail before exporting, with the sizes and what to do, where the disk holding ``path`` is too small."""
    needed, free = space_needed(net, fmt), free_bytes(path.parent)
    if free is not None and free < needed:
        raise VidrecError(f"exporting {name} to {fmt} needs about {needed / 2**30:.1f} GiB free in {path.parent}, "
                          f"which has {free / 2**30:.1f} GiB: free disk space there or pass output=<a path on a larger disk>")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt} is not supported; use one of {', '.join(FORMATS)}")


def default_output(model: InferenceModel, fmt: str) -> Path:
    """``<checkpoint>.onnx`` beside a checkpoint, else ``./<model name>.onnx``."""
    source = Path(model.source)
    if source.suffix == ".ckpt":
        return source.with_suffix(FORMATS[fmt])
    return Path(f"{model.name}{FORMATS[fmt]}")


def export_model(model: InferenceModel, fmt: str, output: str | Path | None = None, opset: int = 17,
                 dynamo: bool = False, verify: bool = True) -> tuple[Path, dict[str, Any]]:
    """Export ``model`` and write its sidecar ``<output>.json``; return the model's path and the sidecar's content."""
    check_format(fmt)
    path = Path(output) if output else default_output(model, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = model.net.cpu().eval()
    shape = model.input_shape()
    example = torch.zeros(1, *shape)
    dynamic_time = fmt == "onnx" and model.spec.dataset.test.clip_selection == "whole"
    check_space(net, model.name, fmt, path)
    try:
        if fmt == "onnx":
            export_onnx(net, example, path, opset, dynamo, dynamic_time)
        else:
            export_torchscript(net, example, path)
    except VidrecError:
        raise
    except Exception as exc:
        raise VidrecError(f"exporting {model.name} to {fmt} ({path}) failed: {type(exc).__name__}: {str(exc)[:500]}") from exc
    sidecar: dict[str, Any] = {
        "file": path.name,
        "format": fmt,
        "model": model.name,
        "weights": model.source,
        "input": {"name": INPUT_NAME, "shape": ["batch", shape[0], "frames" if dynamic_time else shape[1], *shape[2:]],
                  "dtype": "float32", "layout": "NCTHW", "values": "RGB scaled to [0, 1], then (x - mean) / std per channel"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(model.labels)], "meaning": "logits; softmax, then mean over a video's views"},
        "mean": model.protocol()["mean"],
        "std": model.protocol()["std"],
        "labels": model.labels,
        "protocol": model.protocol(),
    }
    if fmt == "onnx":
        sidecar["opset"] = max(opset, 18) if dynamo else opset
        sidecar["exporter"] = "dynamo" if dynamo else "torchscript"
    if verify:
        sidecar["max_abs_diff"] = _verify(net, path, fmt, shape)
        if dynamic_time:
            sidecar["frames_checked"] = _verify_time_axis(net, path, shape)
    atomic_write_json(path.with_name(path.name + ".json"), sidecar)
    return path, sidecar


def _verify(net: nn.Module, path: Path, fmt: str, shape: tuple[int, ...]) -> float | None:
    try:
        diff = max_difference(net, path, fmt, shape)
    except ImportError:
        log.warning("onnxruntime is not installed: %s was not checked (pip install onnxruntime)", path)
        return None
    log.info("%s: largest difference to PyTorch on a random batch of 2: %.2e", path, diff)
    if diff > 1e-3:
        log.warning("%s differs from the PyTorch model by up to %.2e; check the exported model before use", path, diff)
    return diff


#: Clip lengths a dynamic time axis is checked at, besides the traced one (odd and even, shorter and longer).
CHECKED_LENGTHS = (0.5, 1.5)


def _verify_time_axis(net: nn.Module, path: Path, shape: tuple[int, ...]) -> dict[str, float] | None:
    """The exported file against PyTorch at other clip lengths than the traced one; a mismatch is an error (the
    file would give wrong scores on videos of those lengths)."""
    lengths = sorted({int(shape[1] * f) | 1 for f in CHECKED_LENGTHS})
    try:
        diffs = {str(t): max_difference(net, path, "onnx", (shape[0], t, *shape[2:])) for t in lengths}
    except ImportError:
        return None
    worst = max(diffs.values())
    if worst > 1e-3:
        raise VidrecError(f"{path}: the exported time axis is not dynamic for this network (largest difference "
                          f"{worst:.2e} at {diffs} frames); export a fixed clip with test.clip_selection=uniform")
    log.info("%s: dynamic time axis checked at %s frames (largest difference %.2e)", path, lengths, worst)
    return diffs


def export_from_config(dcfg: DictConfig) -> dict[str, Any]:
    """What ``export.py`` does: load the model, export it, print where it went."""
    check_format(str(dcfg.get("format")))
    model = load_inference_model(dcfg)
    onnx_cfg = dcfg.get("onnx") or {}
    path, sidecar = export_model(model, str(dcfg.get("format", "onnx")), dcfg.get("output"),
                                 int(onnx_cfg.get("opset", 17)), bool(onnx_cfg.get("dynamo", False)),
                                 bool(dcfg.get("verify", True)))
    diff = sidecar.get("max_abs_diff")
    checked = f"; max |diff| vs PyTorch {diff:.1e}" if diff is not None else ""
    print(f"wrote {path} ({sidecar['format']}, input {tuple(sidecar['input']['shape'])}{checked})\n"
          f"wrote {path.with_name(path.name + '.json')}", flush=True)
    return sidecar
