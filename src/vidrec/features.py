"""Features of a network for one video: the input of the classifier ``fc`` (or a named stage, pooled globally),
pooled over the test protocol's views or as a sequence of clips slid over the video.

The classifier is linear, so ``fc`` of a view's features is that view's logits, and ``fc`` of the mean over views
is the mean of the view logits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidrec.data.decoding import frame_folder_fps
from vidrec.data.stream import SlidingClips, clip_offsets, iter_frames, video_fps
from vidrec.errors import ConfigError, DecodeError
from vidrec.inference import InferenceModel, video_views_and_starts
from vidrec.models.finetune import get_head

MODES = ("pooled", "sequence")


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """``(N, D, ...)`` → ``(N, D)``: the mean over every dimension after the channels."""
    return x.flatten(2).mean(-1) if x.ndim > 2 else x


def named_module(net: nn.Module, layer: str) -> nn.Module:
    """The sub-module ``layer`` of ``net`` (``layer3``, ``layer4.1.conv2`` ...), or a :class:`ConfigError` naming
    the top-level choices."""
    modules = dict(net.named_modules())
    if layer not in modules:
        top = [name for name, _ in net.named_children()]
        raise ConfigError(f"features.layer={layer}: no module of that name in the network; use one of {top} "
                          "(or a dotted sub-module name), or leave it null for the classifier's input")
    return modules[layer]


@contextlib.contextmanager
def feature_tap(net: nn.Module, layer: str | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """While open, each forward of ``net`` leaves ``store["features"]``: the input of the classifier ``fc``
    (``layer=None``), or the globally pooled output of the module named ``layer`` (e.g. ``layer3``)."""
    store: dict[str, torch.Tensor] = {}
    if layer is None:
        handle = get_head(net).register_forward_pre_hook(lambda _m, args: store.__setitem__("features", args[0]))
    else:
        module = named_module(net, layer)
        handle = module.register_forward_hook(lambda _m, _a, out: store.__setitem__("features", global_pool(out)))
    try:
        yield store
    finally:
        handle.remove()


def clip_features(model: InferenceModel, clips: torch.Tensor, layer: str | None, device: torch.device,
                  batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 clips ``(N, C, T, H, W)`` → features ``(N, D)`` and logits ``(N, classes)``, ``batch`` clips at a time."""
    feats, logits = [], []
    net = model.net.to(device).eval()
    with feature_tap(net, layer) as store, torch.inference_mode(), model.autocast(device):
        for i in range(0, clips.shape[0], max(1, batch)):
            logits.append(net(model.network_input(clips[i : i + batch].to(device))).float().cpu())
            if "features" not in store:
                raise ConfigError("the network's fully convolutional test head (test.fully_conv=true) does not call "
                                  "its classifier fc; extract with test.fully_conv=false or features.layer=layer4")
            feats.append(store.pop("features").float().cpu())
    return torch.cat(feats), torch.cat(logits)


@dataclass
class VideoFeatures:
    """What the extraction keeps of one video."""

    features: np.ndarray        # pooled: (D,); sequence: (clips, D)
    logits: np.ndarray          # per view (pooled) or per clip (sequence): (N, classes)
    num_frames: int
    fps: float | None
    starts: list[int]           # start frame of each clip


def pooled_features(model: InferenceModel, path: str | Path, layer: str | None = None, device: str = "cpu",
                    decoder: str = "auto") -> VideoFeatures:
    """The mean over the protocol's views (the same views as eval.py / predict.py) of each view's features."""
    views, num_frames, starts = video_views_and_starts(model, path, decoder)
    feats, logits = clip_features(model, views, layer, torch.device(device), model.spec.dataset.test.views_per_batch)
    return VideoFeatures(feats.mean(0).numpy(), logits.numpy(), num_frames, video_fps(path), starts)


def slide(model: InferenceModel, path: str | Path, sampler: SlidingClips, layer: str | None = None,
          device: str = "cpu") -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """Run ``model`` on each clip ``sampler`` cuts from the streamed frames of ``path`` (centre crop at the
    protocol's scale), ``views_per_batch`` clips at a time: clip starts, features ``(N, D)``, logits ``(N, C)``."""
    batch = model.spec.dataset.test.views_per_batch
    dev = torch.device(device)
    transform = model.transform
    starts: list[int] = []
    pending: list[torch.Tensor] = []
    feats, logits = [], []

    def flush() -> None:
        f, lg = clip_features(model, torch.cat(pending), layer, dev, batch)
        feats.append(f)
        logits.append(lg)
        pending.clear()

    for start, clip in sampler(iter_frames(path)):
        starts.append(start)
        pending.append(transform.eval_views(clip, num_crops=1))
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return starts, torch.cat(feats), torch.cat(logits)


def sequence_features(model: InferenceModel, path: str | Path, frames: int, stride: int, layer: str | None = None,
                      device: str = "cpu", sampler: SlidingClips | None = None) -> VideoFeatures:
    """Features of a clip of ``frames`` frames (at the protocol's sample rate, centre crop) every ``stride``
    frames, decoded as a stream; ``sampler``: the :class:`SlidingClips` to use (to read its buffer counts)."""
    sampler = sampler or SlidingClips(protocol_offsets(model, path, frames), stride)
    starts, feats, logits = slide(model, path, sampler, layer, device)
    return VideoFeatures(feats.numpy(), logits.numpy(), sampler.frames_seen, video_fps(path), starts)


def protocol_offsets(model: InferenceModel, path: str | Path, frames: int | None = None,
                     window: int | None = None) -> torch.Tensor:
    """Frame offsets of one clip of the model's protocol in a stream of ``path``'s frames: by time with the
    authors' rule where the protocol sets ``clip.fps`` (the video's own rate from its header or frame folder),
    else every ``sample_rate``-th frame (or ``frames`` spread over ``window`` frames)."""
    clip = model.spec.dataset.clip
    frames = frames or clip.frames
    if clip.fps and window is None:
        rate = video_fps(path) or frame_folder_fps(path)
        if not rate:
            raise DecodeError(f"{path}: the protocol samples at {clip.fps} fps but the video's frame rate is unknown")
        return clip_offsets(frames, clip.sample_rate, fps=rate, target_fps=clip.fps, rule=clip.fps_rule)
    return clip_offsets(frames, clip.sample_rate, window)


def rank_share(items: list, rank: int, world: int) -> list:
    """The items rank ``rank`` of ``world`` handles: every ``world``-th from ``rank`` (each item on one rank)."""
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"rank {rank} of world size {world}: check RANK / WORLD_SIZE")
    return items[rank::world]
