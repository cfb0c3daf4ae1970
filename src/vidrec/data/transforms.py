"""Clip transforms on tensors (pytorchvideo style): small functions over ``(T, C, H, W)`` tensors.

Frames stay uint8 until the last step: ``ClipTransform`` resizes uint8 clips with PyTorch's SIMD uint8
kernel (the same bilinear/antialias filter as the float path, within one intensity level of it: it rounds
to integers), crops and flips in uint8, and only ``normalize`` makes float, writing the ``(C, T, H, W)``
layout in the same pass (docs/performance.md: ~5× faster than resizing in float). Time is the batch
dimension of every op. Spatial test crops follow design.md §3: resize the short side, then 1 (centre) or 3
(start, centre, end of the long side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidrec.data.augment import ClipAugment
from vidrec.data.spec import DataSpec
from vidrec.errors import ConfigError


def to_tchw(frames: torch.Tensor) -> torch.Tensor:
    """``(T, H, W, C)`` → ``(T, C, H, W)`` (a view, no copy)."""
    return frames.permute(0, 3, 1, 2)


def short_side_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """``(new_h, new_w)`` of an ``h × w`` frame whose short side is resized to ``size`` (aspect kept)."""
    scale = size / min(h, w)
    return (size, max(size, round(w * scale))) if h <= w else (max(size, round(h * scale)), size)


def _interpolate(clip: torch.Tensor, size: int) -> torch.Tensor:
    h, w = clip.shape[-2:]
    if min(h, w) == size:
        return clip
    shape = short_side_shape(h, w, size)
    return F.interpolate(clip, size=shape, mode="bilinear", align_corners=False, antialias=size < min(h, w))


def resize_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(T, C, H, W)`` so that its short side is ``size`` (bilinear, antialiased when shrinking); returns float."""
    return _interpolate(clip.float(), size)


def resize_short_side_uint8(clip: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`resize_short_side` computed in uint8 (≥4× faster on CPU, results within one level of it); uint8 out.

    Fastest on channels-last memory, which :func:`to_tchw` of decoded ``(T, H, W, C)`` frames already is.
    """
    if clip.dtype != torch.uint8:
        raise TypeError(f"resize_short_side_uint8 needs a uint8 clip, got {clip.dtype}")
    return _interpolate(clip.contiguous(memory_format=torch.channels_last), size)


def resize_fixed(clip: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``(T, C, H, W)`` to exactly ``size = (H, W)``, aspect not kept; float, bilinear, no antialias — the
    128×171 resize of VMZ (``scale_h``/``scale_w``) and of torchvision's ``VideoClassification`` preset
    (``antialias=False``, torchvision/transforms/_presets.py)."""
    return F.interpolate(clip.float(), size=tuple(int(v) for v in size), mode="bilinear", align_corners=False,
                         antialias=False)


def crop(clip: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """Square crop of side ``size`` at ``(top, left)`` of ``(..., H, W)``."""
    return clip[..., top : top + size, left : left + size]


def _check_fits(clip: torch.Tensor, size: int) -> None:
    h, w = clip.shape[-2:]
    if size > min(h, w):
        raise ConfigError(
            f"crop size {size} is larger than the resized frame {h}×{w}; lower the crop size "
            "(dataset.train.crop_size / dataset.test.crop_size) or raise the resize scale"
        )


def center_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Centre square crop, its offset rounded half to even as torchvision's ``center_crop`` (and the 2017
    ``CenterCrop`` of 3D-ResNets-PyTorch) place it: 171 → 112 starts at column 30."""
    _check_fits(clip, size)
    h, w = clip.shape[-2:]
    return crop(clip, round((h - size) / 2), round((w - size) / 2), size)


def three_crop(clip: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Three square crops along the long side: start, centre, end (left/centre/right or top/centre/bottom)."""
    _check_fits(clip, size)
    h, w = clip.shape[-2:]
    if w >= h:
        top = (h - size) // 2
        return [crop(clip, top, left, size) for left in (0, (w - size) // 2, w - size)]
    left = (w - size) // 2
    return [crop(clip, top, left, size) for top in (0, (h - size) // 2, h - size)]


def ten_crop(clip: torch.Tensor, size: int) -> list[torch.Tensor]:
    """The four corners and the centre, each followed by its horizontal flip, at offsets that are multiples of a
    quarter of the room (mmaction2 ``TenCrop``, mmaction/datasets/transforms/processing.py@baf385ee:1244-1264)."""
    _check_fits(clip, size)
    h, w = clip.shape[-2:]
    ws, hs = (w - size) // 4, (h - size) // 4
    crops = []
    for left, top in ((0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)):
        box = crop(clip, top, left, size)
        crops += [box, box.flip(-1)]
    return crops


def spatial_crops(clip: torch.Tensor, size: int, num_crops: int) -> list[torch.Tensor]:
    """``num_crops`` = 1 (centre), 3 (``three_crop``) or 10 (``ten_crop``)."""
    if num_crops == 1:
        return [center_crop(clip, size)]
    if num_crops == 3:
        return three_crop(clip, size)
    if num_crops == 10:
        return ten_crop(clip, size)
    raise ConfigError(f"test.num_crops must be 1, 3 or 10, got {num_crops}")


def random_crop(clip: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Square crop at a uniformly random position."""
    _check_fits(clip, size)
    h, w = clip.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
    return crop(clip, top, left, size)


def to_uint8_cthw(clip: torch.Tensor) -> torch.Tensor:
    """A ``(..., T, C, H, W)`` clip (uint8, or float in [0, 255]) as contiguous uint8 ``(..., C, T, H, W)``: what
    loader workers hand over (a quarter of the bytes of float32); float is rounded to the nearest level."""
    if clip.dtype != torch.uint8:
        clip = clip.round().clamp_(0, 255).to(torch.uint8)
    return clip.transpose(-4, -3).contiguous()


def normalize_cthw(video: torch.Tensor, mean: Sequence[float] | torch.Tensor,
                   std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """uint8 ``(..., C, T, H, W)`` clips (on any device) → float ``(x / 255 - mean) / std`` per channel: the last
    step of the input pipeline, run on the device after the transfer (``VideoClassifier.on_after_batch_transfer``)."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=video.device).view(-1, 1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=video.device).view(-1, 1, 1, 1)
    return (video.float() - mean * 255.0) / (std * 255.0)


def normalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Scale a ``(..., T, C, H, W)`` clip in [0, 255] to [0, 1], normalise per channel, return ``(..., C, T, H, W)``.

    One pass converts to float and transposes into a contiguous result; the affine map then runs in place.
    """
    std_255 = torch.tensor(std, dtype=torch.float64) * 255.0
    scale = (1.0 / std_255).to(torch.float32).view(-1, 1, 1, 1)
    shift = (-torch.tensor(mean, dtype=torch.float64) * 255.0 / std_255).to(torch.float32).view(-1, 1, 1, 1)
    src = clip.transpose(-4, -3)
    out = torch.empty(src.shape, dtype=torch.float32)
    out.copy_(src)
    return out.mul_(scale).add_(shift)


@dataclass
class ClipTransform:
    """Train or test transform from uint8 frames ``(T, H, W, C)`` to clips: uint8 for the loader
    (:meth:`train_clip`, :meth:`eval_views`; normalised on the device), normalised float for direct use.

    Train (``__call__`` with ``train=True``): short side jittered in ``scale_range``, random crop, optional
    horizontal flip (the caller maps the label when a flip swaps classes). Eval: short side to ``test_scale``,
    ``num_crops`` crops; the result is stacked views ``(num_crops, C, T, H, W)``.
    """

    mean: Sequence[float]
    std: Sequence[float]
    crop_size: int = 112
    scale_range: tuple[int, int] = (128, 160)
    test_scale: int = 128
    test_crop_size: int | None = None
    num_crops: int = 1
    test_resize: tuple[int, int] | None = None  # a fixed H × W instead of the short side test_scale
    augment: ClipAugment | None = None  # RandAugment, relative crops, colour jitter, erasing (replaces the jitter)

    @classmethod
    def from_spec(cls, spec: DataSpec, mean: Sequence[float], std: Sequence[float]) -> ClipTransform:
        """The train and test transforms of a dataset spec, normalising with ``mean``/``std``."""
        a = spec.dataset.train.augment
        augment = None
        if a.crop:
            augment = ClipAugment(tuple(mean), tuple(std), a.crop, tuple(a.scale), tuple(a.ratio), tuple(a.multi_scales),
                                  a.max_distort, a.short_side, a.rand_augment, a.interpolation,
                                  tuple(a.color_jitter) if a.color_jitter else None, a.erase_prob, a.erase_mode,
                                  a.erase_count)
        return cls(mean=tuple(mean), std=tuple(std), crop_size=spec.dataset.train.crop_size,
                   scale_range=spec.train_scale, test_scale=spec.test_scale, test_crop_size=spec.test_crop_size,
                   num_crops=spec.dataset.test.num_crops,
                   test_resize=tuple(spec.dataset.test.resize) if spec.dataset.test.resize else None, augment=augment)

    @staticmethod
    def _resize(frames: torch.Tensor, size: int) -> torch.Tensor:
        """``(T, H, W, C)`` frames → ``(T, C, H, W)`` with the short side ``size``; uint8 stays uint8."""
        clip = to_tchw(frames)
        return resize_short_side_uint8(clip, size) if clip.dtype == torch.uint8 else resize_short_side(clip, size)

    def _train_crop(self, frames: torch.Tensor, flip: bool, generator: torch.Generator | None) -> torch.Tensor:
        if self.augment is not None:
            clip = self.augment(to_tchw(frames), self.crop_size, generator)
            return clip.flip(-1) if flip else clip
        lo, hi = self.scale_range
        size = int(torch.randint(lo, hi + 1, (1,), generator=generator))
        clip = random_crop(self._resize(frames, size), self.crop_size, generator)
        return clip.flip(-1) if flip else clip

    def _eval_crops(self, frames: torch.Tensor, num_crops: int | None) -> torch.Tensor:
        size = self.test_crop_size or self.crop_size
        resized = (resize_fixed(to_tchw(frames), self.test_resize) if self.test_resize
                   else self._resize(frames, self.test_scale))
        return torch.stack(spatial_crops(resized, size, num_crops or self.num_crops))

    def train_clip(self, frames: torch.Tensor, flip: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """One augmented training clip as loader workers produce it: uint8 ``(C, T, H, W)``."""
        return to_uint8_cthw(self._train_crop(frames, flip, generator))

    def eval_views(self, frames: torch.Tensor, num_crops: int | None = None) -> torch.Tensor:
        """Eval views of one clip (or of several clips concatenated on T by the caller) as loader workers produce
        them: uint8 ``(crops, C, T, H, W)``."""
        return to_uint8_cthw(self._eval_crops(frames, num_crops))

    def train(self, frames: torch.Tensor, flip: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """One augmented training clip, normalised: float ``(C, T, H, W)``."""
        return normalize(self._train_crop(frames, flip, generator), self.mean, self.std)

    def eval(self, frames: torch.Tensor, num_crops: int | None = None) -> torch.Tensor:
        """Eval views, normalised: float ``(crops, C, T, H, W)`` (a fixed-size resize is not rounded to uint8)."""
        return normalize(self._eval_crops(frames, num_crops), self.mean, self.std)
