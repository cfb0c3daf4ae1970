"""A released checkpoint's protocol applied to a run's dataset config.

``model.pretrained_cfg`` (set by :func:`vidrec.models.load_pretrained` from the weights entry) says how the
authors fed and tested their network. Evaluation, prediction and export of released weights take every key of
it; fine-tuning takes the input statistics and the clip (:data:`FINE_TUNING_KEYS`). A key the user set on the
command line wins, with a warning when it departs from the authors' value.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger("vidrec")

#: pretrained_cfg key -> the key of the dataset config it sets (``test_resize`` sets scale or resize).
DATASET_KEYS = {
    "mean": "mean",
    "std": "std",
    "frames": "clip.frames",
    "sample_rate": "clip.sample_rate",
    "clip_sampling": "clip.sampling",
    "fps": "clip.fps",
    "fps_rule": "clip.fps_rule",
    "crop_size": "test.crop_size",
    "clip_selection": "test.clip_selection",
    "num_clips": "test.num_clips",
    "clip_stride": "test.clip_stride",
    "num_crops": "test.num_crops",
    "fully_conv": "test.fully_conv",
}
ALL_KEYS = (*DATASET_KEYS, "test_resize")
FINE_TUNING_KEYS = ("mean", "std", "frames", "sample_rate", "clip_sampling", "fps", "fps_rule")


def given_keys(overrides: Iterable[str]) -> set[str]:
    """The dataset keys a command line sets: ``dataset.clip.frames=8`` and (eval.py, predict.py, export.py)
    ``test.num_clips=3`` / ``clip.frames=8`` give ``clip.frames``, ``test.num_clips``."""
    keys = set()
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key.startswith("dataset."):
            keys.add(key.removeprefix("dataset."))
        elif key.startswith(("test.", "clip.")):
            keys.add(key)
    return keys


def command_line_overrides() -> set[str]:
    """The keys the running Hydra app's command line sets, as typed (``model.net.dropout``); empty outside one."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}


def command_line_keys() -> set[str]:
    """:func:`given_keys` of the running Hydra app's command line (empty outside one)."""
    from hydra.core.hydra_config import HydraConfig

    return given_keys(HydraConfig.get().overrides.task) if HydraConfig.initialized() else set()


def _get(node: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _set(node: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def apply_protocol(dataset: Mapping[str, Any], pretrained_cfg: Mapping[str, Any] | None, given: set[str],
                   keys: Iterable[str] = ALL_KEYS) -> tuple[dict[str, Any], list[str]]:
    """``dataset`` with the ``keys`` of ``pretrained_cfg`` set, except those in ``given``; returns it and the
    departures from the authors' protocol (``"test.num_clips=3 (the authors': 10)"``), each also logged."""
    out = copy.deepcopy(dict(dataset))
    if not pretrained_cfg:
        return out, []
    name, departures = pretrained_cfg.get("entry") or "these weights", []
    wanted = {}
    for key in keys:
        if key == "test_resize" and pretrained_cfg.get(key) is not None:
            resize = pretrained_cfg[key]
            wanted["test.resize" if isinstance(resize, list) else "test.scale"] = resize
            if not isinstance(resize, list):
                wanted["test.resize"] = None
        elif key in DATASET_KEYS and key in pretrained_cfg:
            wanted[DATASET_KEYS[key]] = pretrained_cfg[key]
    for dotted, value in wanted.items():
        if dotted in given:
            if _get(out, dotted) != value and value is not None:
                departures.append(f"{dotted}={_get(out, dotted)} (the authors': {value})")
            continue
        _set(out, dotted, value)
    applied = ", ".join(f"{k}={v}" for k, v in wanted.items() if k not in given)
    log.info("%s: input and protocol of the authors: %s", name, applied)
    trained_at, crop = pretrained_cfg.get("train_crop"), _get(out, "train.crop_size")
    if tuple(keys) == FINE_TUNING_KEYS and trained_at and crop and int(crop) != int(trained_at):
        departures.append(f"train.crop_size={crop} (the weights were trained at {trained_at})")
    for departure in departures:
        log.warning("%s: %s departs from the authors' protocol; the result is not comparable with their figure",
                    name, departure)
    return out, departures


def with_weights_arch(net_cfg: Mapping[str, Any], pretrained: str | None, given: Iterable[str] = ()) -> dict[str, Any]:
    """``net_cfg`` (a ``model.net`` node) with the architecture arguments the registry entry of the file
    ``pretrained`` needs (``WeightsEntry.arch``: mmaction2's SlowFast laterals, kenshohara's shortcut B, ...);
    ``model.net.<key>`` given on the command line (``given``) wins, with a warning."""
    from vidrec.models.weights import arch_for_file

    out = dict(net_cfg)
    if not pretrained:
        return out
    arch = arch_for_file(str(out["name"]), pretrained)
    for key, value in arch.items():
        if f"net.{key}" in given or f"model.net.{key}" in given:
            if out.get(key) != value:
                log.warning("%s needs model.net.%s=%s; the command line's %s is kept", pretrained, key, value, out.get(key))
            continue
        out[key] = list(value) if isinstance(value, tuple) else value
    if arch:
        log.info("%s: building %s with %s (its registry entry)", pretrained, out["name"], arch)
    return out
