"""Single-video prediction with the multi-view test protocol, and the model loading it shares with export.

``load_inference_model(cfg)`` rebuilds a network, its class names and its test protocol either from a vidrec
checkpoint (``ckpt_path``) or from a ``model`` config group (random or ``model.pretrained`` weights).
``predict_video`` then decodes the video once for all of its K clips × crops views, exactly as the test
stage of ``eval.py`` does (same dataset code, same transforms, same mean of softmax over the views).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from vidrec.checkpoint import load_checkpoint, model_state, resolve_ckpt_path, run_config
from vidrec.data.annotations import VideoEntry
from vidrec.data.datamodule import VideoDataModule
from vidrec.data.dataset import ClipSpec, VideoDataset, VideoSource
from vidrec.data.synthetic import SyntheticSpec
from vidrec.data.transforms import ClipTransform
from vidrec.errors import CheckpointError, ConfigError, DecodeError
from vidrec.models import load_pretrained, model_info
from vidrec.module import video_scores

log = logging.getLogger(__name__)

#: The test protocol used without a checkpoint (the Kinetics convention): 10 clips × 3 crops.
DEFAULT_PROTOCOL = {"sample_rate": 2, "num_clips": 10, "num_crops": 3, "views_per_batch": 30}


@dataclass
class InferenceModel:
    """A network ready for inference, with what it needs to be fed: class names and the test protocol.

    ``dataset`` is a dataset config (``clip.*``, ``test.*``, optional ``mean``/``std``) that holds the protocol.
    """

    net: nn.Module
    name: str
    labels: list[str]
    dataset: dict[str, Any]
    source: str

    @property
    def transform(self) -> ClipTransform:
        info = model_info(self.name)
        return VideoDataModule(self.dataset, mean=info.mean, std=info.std).transform

    @property
    def clip(self) -> ClipSpec:
        c, t = self.dataset["clip"], self.dataset.get("test") or {}
        return ClipSpec(frames=int(c["frames"]), sample_rate=int(c["sample_rate"]), num_clips=int(t.get("num_clips") or 1))

    @property
    def views_per_batch(self) -> int:
        return int((self.dataset.get("test") or {}).get("views_per_batch") or 30)

    def protocol(self) -> dict[str, Any]:
        """The test protocol as plain data (for the output and the export sidecar)."""
        t, c = self.transform, self.clip
        return {
            "clip_frames": c.frames,
            "sample_rate": c.sample_rate,
            "num_clips": c.num_clips,
            "num_crops": t.num_crops,
            "scale": t.test_scale,
            "crop_size": t.test_crop_size or t.crop_size,
            "views_per_video": c.num_clips * t.num_crops,
            "mean": list(t.mean),
            "std": list(t.std),
            "aggregation": "mean of softmax over all views",
        }

    def input_shape(self) -> tuple[int, int, int, int]:
        """``(C, T, H, W)`` of one view."""
        p = self.protocol()
        return (3, p["clip_frames"], p["crop_size"], p["crop_size"])


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or JSON (a list, or an object with ``labels``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"labels={path}: no such file; give a text file with one class name per line")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"labels={path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
        names = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"labels={path}: expected a JSON list of class names or an object with a 'labels' list")
        return names
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ConfigError(f"labels={path}: the file is empty; list one class name per line")
    return names


def _checkpoint_labels(ckpt: dict[str, Any], dataset: dict[str, Any], ckpt_path: str) -> list[str]:
    if ckpt.get("labels"):
        return list(ckpt["labels"])
    # checkpoints written before vidrec stored the class names: the run's annotation file, when it is here
    annotation = dataset.get("annotation_path")
    if dataset.get("synthetic") and dataset.get("data_dir"):
        spec = SyntheticSpec(**dataset["synthetic"])
        annotation = str(Path(dataset["data_dir"]) / f"synthetic-{spec.signature()}" / "annotation.json")
    if annotation and Path(annotation).is_file():
        return read_labels(annotation)
    raise ConfigError(f"{ckpt_path} holds no class names and its annotation file {annotation} is not here; pass labels=<file>")


def _from_checkpoint(ckpt_path: str, labels: list[str] | None) -> InferenceModel:
    path = resolve_ckpt_path(ckpt_path, ".")
    assert path is not None
    ckpt = load_checkpoint(path)
    run_cfg = run_config(ckpt, path)
    net = hydra.utils.instantiate(run_cfg["model"]["net"])
    state = model_state(ckpt, path)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit {run_cfg['model']['net']['name']}: {str(exc)[:300]}") from None
    dataset = copy.deepcopy(run_cfg["dataset"])
    labels = labels or _checkpoint_labels(ckpt, dataset, path)
    return InferenceModel(net, run_cfg["model"]["net"]["name"], labels, dataset, source=path)


def _from_model_group(model_cfg: dict[str, Any] | None, labels: list[str] | None) -> InferenceModel:
    if not model_cfg:
        raise ConfigError("give ckpt_path=<checkpoint> or model=<config group> (e.g. model=r2plus1d model.depth=18 "
                          "model.pretrained=<file>)")
    net = hydra.utils.instantiate(model_cfg["net"])
    name = model_cfg["net"]["name"]
    num_classes = int(model_cfg["net"]["num_classes"])
    if model_cfg.get("pretrained"):
        load_pretrained(net, model_cfg["pretrained"])  # strict, classifier included: the weights' own classes
        source = str(model_cfg["pretrained"])
    else:
        log.warning("no ckpt_path and no model.pretrained: %s is randomly initialised", name)
        source = "random initialisation"
    info = model_info(name)
    dataset = {
        "clip": {"frames": info.default_frames, "sample_rate": DEFAULT_PROTOCOL["sample_rate"]},
        "train": {"crop_size": info.default_size},
        "test": {
            "num_clips": DEFAULT_PROTOCOL["num_clips"],
            "num_crops": DEFAULT_PROTOCOL["num_crops"],
            "scale": round(info.default_size * 8 / 7),
            "crop_size": info.default_size,
            "views_per_batch": DEFAULT_PROTOCOL["views_per_batch"],
        },
    }
    return InferenceModel(net, name, labels or [f"class_{i}" for i in range(num_classes)], dataset, source)


def load_inference_model(dcfg: DictConfig) -> InferenceModel:
    """Network, class names and test protocol of a predict/export config; ``clip.*``/``test.*`` keys override."""
    labels = read_labels(dcfg.labels) if dcfg.get("labels") else None
    if dcfg.get("ckpt_path"):  # a `model` group, if given, is ignored: the checkpoint rebuilds its own
        model = _from_checkpoint(str(dcfg.ckpt_path), labels)
    else:
        dcfg = copy.deepcopy(dcfg)
        with open_dict(dcfg):  # the model groups read their class count from dataset.num_classes
            dcfg.dataset = {"num_classes": int(dcfg.get("num_classes") or (len(labels) if labels else 400))}
        model_cfg = OmegaConf.to_container(dcfg.model, resolve=True) if dcfg.get("model") else None
        model = _from_model_group(model_cfg, labels)
    for group in ("clip", "test"):
        given = {k: v for k, v in (dcfg.get(group) or {}).items() if v is not None}
        model.dataset.setdefault(group, {}).update(given)
    classes = _num_outputs(model)
    if classes != len(model.labels):
        raise ConfigError(f"{model.source}: the network predicts {classes} classes but {len(model.labels)} class names "
                          "were given; pass labels=<file> with one name per class")
    model.net.eval()
    return model


def _num_outputs(model: InferenceModel) -> int:
    fc = getattr(model.net, "fc", None)
    if isinstance(fc, nn.Linear):
        return fc.out_features
    with torch.inference_mode():
        return int(model.net.eval()(torch.zeros(1, *model.input_shape())).shape[-1])


def pick_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available; use device=cpu")
    return device


def video_views(model: InferenceModel, video: str | Path, decoder: str = "auto") -> tuple[torch.Tensor, int]:
    """All test views ``(V, C, T, H, W)`` of one video file or frame folder (decoded once), and its frame count."""
    path = Path(video)
    if not path.exists():
        raise DecodeError(f"{path}: no such video file or frame folder")
    dataset = VideoDataset(
        entries=[VideoEntry(path.name, "testing", None, -1, None)],
        location=VideoSource(root=str(path.parent), source="frames" if path.is_dir() else "video",
                             path_format="{video_id}", video_ext=""),
        mode="test",
        clip=model.clip,
        transform=model.transform,
        strict=True,
        decoder=decoder,
    )
    views, _ = dataset.load(0, torch.Generator())
    return views, dataset.num_frames(0)


def predict_video(model: InferenceModel, video: str | Path, topk: int = 5, device: str = "auto",
                  decoder: str = "auto") -> dict[str, Any]:
    """Top-k classes of one video: mean of the softmax over its K clips × crops views."""
    dev = pick_device(device)
    views, num_frames = video_views(model, video, decoder)
    net = model.net.to(dev).eval()
    with torch.inference_mode():
        probs = video_scores(net, views[None].to(dev), model.views_per_batch)[0].cpu()
    k = min(int(topk), probs.numel())
    top_p, top_i = probs.topk(k)
    return {
        "video": str(video),
        "num_frames": num_frames,
        "model": model.name,
        "weights": model.source,
        "views": int(views.shape[0]),
        "protocol": model.protocol(),
        "top": [{"rank": r + 1, "label": model.labels[int(i)], "index": int(i), "prob": round(float(p), 6)}
                for r, (p, i) in enumerate(zip(top_p, top_i))],
    }


def format_prediction(result: dict[str, Any]) -> str:
    """The human-readable table printed by predict.py."""
    p = result["protocol"]
    width = max(len(t["label"]) for t in result["top"])
    lines = [f"{result['video']} ({result['num_frames']} frames): {result['model']} from {result['weights']}",
             f"{p['num_clips']} clips × {p['num_crops']} crops = {result['views']} views "
             f"({p['clip_frames']}×{p['sample_rate']} frames, {p['crop_size']}px), mean softmax"]
    lines += [f"  {t['rank']}. {t['label']:<{width}}  {t['prob']:.4f}" for t in result["top"]]
    return "\n".join(lines)


def predict(dcfg: DictConfig) -> dict[str, Any]:
    """What ``predict.py`` does: load, predict one video, print the table (or one JSON object)."""
    model = load_inference_model(dcfg)
    result = predict_video(model, dcfg.video, int(dcfg.get("topk", 5)), str(dcfg.get("device", "auto")),
                           str((dcfg.get("data") or {}).get("decoder") or "auto"))
    print(json.dumps(result) if dcfg.get("json") else format_prediction(result), flush=True)
    return result
