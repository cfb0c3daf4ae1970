"""A network ready for inference — from a vidrec checkpoint or a ``model`` config group — with its class names
and test protocol, and the views of one video; shared by predict.py and export.py.

``load_inference_model(cfg)`` rebuilds the network, its class names and its test protocol either from a vidrec
checkpoint (``ckpt_path``) or from a ``model`` config group (random or ``model.pretrained`` weights).
``video_views`` decodes a video once for all of its K clips × crops views, exactly as the test stage of
``eval.py`` does (same dataset code, same transforms).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from vidrec.checkpoint import load_checkpoint, resolve_ckpt_path, run_config, scored_state
from vidrec.data.dataset import VideoDataset
from vidrec.data.spec import DataSpec
from vidrec.data.transforms import ClipTransform, normalize_cthw
from vidrec.errors import CheckpointError, ConfigError, DecodeError
from vidrec.models import load_pretrained, model_info
from vidrec.models.finetune import get_head
from vidrec.models.weights.entries import CLASS_LISTS, get_weights
from vidrec.precision import INFERENCE_PRECISION, inference_autocast
from vidrec.protocol import apply_protocol, command_line_overrides, with_weights_arch

log = logging.getLogger(__name__)

#: The test protocol used without a checkpoint (the Kinetics convention): 10 clips × 3 crops.
DEFAULT_PROTOCOL = {"sample_rate": 2, "num_clips": 10, "num_crops": 3}


@dataclass
class InferenceModel:
    """A network ready for inference, with what it needs to be fed: class names and the test protocol
    (``spec``: clip, test views and, where set, the input statistics)."""

    net: nn.Module
    name: str
    labels: list[str]
    spec: DataSpec
    source: str
    precision: str = INFERENCE_PRECISION  # vidrec.precision: fp32 unless precision=bf16-mixed is asked for

    def autocast(self, device: torch.device | str) -> Any:
        """The numeric mode of this model's inference (:func:`vidrec.precision.inference_autocast`)."""
        return inference_autocast(self.precision, device)

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.spec.dataset.mean or model_info(self.name).mean)

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.spec.dataset.std or model_info(self.name).std)

    @property
    def transform(self) -> ClipTransform:
        return ClipTransform.from_spec(self.spec, self.mean, self.std)

    def network_input(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 views ``(..., C, T, H, W)`` (from :func:`video_views`, on any device) → the float input of ``net``."""
        return normalize_cthw(views, self.mean, self.std)

    def protocol(self) -> dict[str, Any]:
        """The test protocol as plain data (for the output and the export sidecar)."""
        return {**self.spec.protocol(), "views_per_video": self.spec.views_per_video, "mean": list(self.mean),
                "std": list(self.std), "precision": self.precision}

    def input_shape(self) -> tuple[int, int, int, int]:
        """``(C, T, H, W)`` of one view."""
        return (3, self.spec.dataset.clip.frames, self.spec.test_crop_size, self.spec.test_crop_size)


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


def _checkpoint_labels(ckpt: dict[str, Any], spec: DataSpec, ckpt_path: str) -> list[str]:
    if ckpt.get("labels"):
        return list(ckpt["labels"])
    # checkpoints written before vidrec stored the class names: the run's annotation file, when it is here
    d = spec.dataset
    annotation = d.annotation_path
    if d.synthetic is not None and d.data_dir:
        annotation = str(Path(d.data_dir) / f"synthetic-{d.synthetic.signature()}" / "annotation.json")
    if annotation and Path(annotation).is_file():
        return read_labels(annotation)
    raise ConfigError(f"{ckpt_path} holds no class names and its annotation file {annotation} is not here; pass labels=<file>")


def _overrides(dcfg: DictConfig) -> dict[str, Any]:
    """The ``clip.*`` / ``test.*`` keys given to predict.py or export.py (those not null)."""
    return {group: {k: v for k, v in (dcfg.get(group) or {}).items() if v is not None} for group in ("clip", "test")}


def _from_checkpoint(ckpt_path: str, labels: list[str] | None, overrides: dict[str, Any]) -> InferenceModel:
    path = resolve_ckpt_path(ckpt_path, ".")
    assert path is not None
    ckpt = load_checkpoint(path)
    run_cfg = run_config(ckpt, path)
    net = hydra.utils.instantiate(run_cfg["model"]["net"])
    try:
        net.load_state_dict(scored_state(ckpt, path, run_cfg)[0])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit {run_cfg['model']['net']['name']}: {str(exc)[:300]}") from None
    dataset = OmegaConf.to_container(OmegaConf.merge(run_cfg["dataset"], overrides))
    spec = DataSpec.from_config(dataset)
    return InferenceModel(net, run_cfg["model"]["net"]["name"], labels or _checkpoint_labels(ckpt, spec, path), spec, path)


def _from_model_group(model_cfg: dict[str, Any] | None, labels: list[str] | None,
                      overrides: dict[str, Any]) -> InferenceModel:
    if not model_cfg:
        raise ConfigError("give ckpt_path=<checkpoint> or model=<config group> (e.g. model=r2plus1d model.depth=18 "
                          "model.pretrained=<file>)")
    net = hydra.utils.instantiate(with_weights_arch(model_cfg["net"], model_cfg.get("pretrained"),
                                                    command_line_overrides()))
    name = model_cfg["net"]["name"]
    num_classes = int(model_cfg["net"]["num_classes"])
    if model_cfg.get("pretrained"):
        load_pretrained(net, model_cfg["pretrained"])  # strict, classifier included: the weights' own classes
        source = str(model_cfg["pretrained"])
    else:
        log.warning("no ckpt_path and no model.pretrained: %s is randomly initialised", name)
        source = "random initialisation"
    info = model_info(name)
    protocol = {
        "clip": {"frames": info.default_frames, "sample_rate": DEFAULT_PROTOCOL["sample_rate"]},
        "train": {"crop_size": info.default_size},
        "test": {"num_clips": DEFAULT_PROTOCOL["num_clips"], "num_crops": DEFAULT_PROTOCOL["num_crops"],
                 "scale": round(info.default_size * 8 / 7), "crop_size": info.default_size},
    }
    given = {f"{group}.{key}" for group, keys in overrides.items() for key in keys}
    pretrained_cfg = getattr(net, "pretrained_cfg", None)
    if model_cfg.get("pretrained") and not pretrained_cfg:
        log.warning("%s is no registered release (python -m vidrec.weights list): the protocol is vidrec's default "
                    "(%s); set clip.* and test.* to the authors'", source, DEFAULT_PROTOCOL)
    dataset, _ = apply_protocol(OmegaConf.to_container(OmegaConf.merge(protocol, overrides)), pretrained_cfg, given)
    if labels is None:
        entry = get_weights(pretrained_cfg["entry"]) if (pretrained_cfg or {}).get("entry") else None
        where = f" (the classes of {entry.name}: {CLASS_LISTS[entry.class_list]})" if entry else ""
        log.warning("no labels=: classes are shown as class_<index>; pass labels=<file> with one class name per "
                    "line, in the classifier's order%s", where)
    spec = DataSpec.from_config(dataset)
    return InferenceModel(net, name, labels or [f"class_{i}" for i in range(num_classes)], spec, source)


def load_inference_model(dcfg: DictConfig) -> InferenceModel:
    """Network, class names and test protocol of a predict/export config; ``clip.*``/``test.*`` keys override."""
    labels = read_labels(dcfg.labels) if dcfg.get("labels") else None
    overrides = _overrides(dcfg)
    if dcfg.get("ckpt_path"):  # a `model` group, if given, is ignored: the checkpoint rebuilds its own
        model = _from_checkpoint(str(dcfg.ckpt_path), labels, overrides)
    else:
        model_cfg = OmegaConf.to_container(dcfg.model, resolve=False) if dcfg.get("model") else None
        if model_cfg:  # the model groups read their class count from dataset.num_classes
            num_classes = int(dcfg.get("num_classes") or (len(labels) if labels else 400))
            model_cfg = OmegaConf.to_container(OmegaConf.create(
                {"model": model_cfg, "dataset": {"num_classes": num_classes}}), resolve=True)["model"]
        model = _from_model_group(model_cfg, labels, overrides)
    model.precision = str(dcfg.get("precision") or INFERENCE_PRECISION)
    inference_autocast(model.precision, "cpu")  # a wrong value fails here, before any video
    classes = get_head(model.net).out_features
    if classes != len(model.labels):
        raise ConfigError(f"{model.source}: the network predicts {classes} classes but {len(model.labels)} class names "
                          "were given; pass labels=<file> with one name per class")
    model.net.eval()
    return model


def pick_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available; use device=cpu")
    return device


def video_views(model: InferenceModel, video: str | Path, decoder: str = "auto") -> tuple[torch.Tensor, int]:
    """All test views, uint8 ``(V, C, T, H, W)``, of one video file or frame folder (decoded once), and its frame
    count; :meth:`InferenceModel.network_input` normalises them."""
    views, num_frames, _ = video_views_and_starts(model, video, decoder)
    return views, num_frames


def video_views_and_starts(model: InferenceModel, video: str | Path,
                           decoder: str = "auto") -> tuple[torch.Tensor, int, list[int]]:
    """:func:`video_views`, plus the start frame of each test clip (views are clip-major: crops of clip 0 first)."""
    path = Path(video)
    if not path.exists():
        raise DecodeError(f"{path}: no such video file or frame folder")
    dataset = VideoDataset.of_file(path, model.spec, model.transform, decoder)
    views, _ = dataset.load(0, torch.Generator())
    num_frames = dataset.num_frames(0)
    starts = dataset.indices(0, torch.Generator(), num_frames)[:, 0].tolist()
    return views, num_frames, [int(s) for s in starts]
