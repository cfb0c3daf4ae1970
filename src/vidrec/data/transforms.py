"""Clip transforms on tensors (pytorchvideo style): small functions over ``(T, C, H, W)`` tensors.

Frames stay uint8 through cropping; they become float only to be resized and normalised. Spatial test
crops follow design.md §3: resize the short side, then 1 (centre) or 3 (start, centre, end of the long side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidrec.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tchw(frames: torch.Tensor) -> torch.Tensor:
    """``(T, H, W, C)`` → ``(T, C, H, W)`` (a view, no copy)."""
    return frames.permute(0, 3, 1, 2)


def resize_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(T, C, H, W)`` so that its short side is ``size`` (bilinear); returns float."""
    h, w = clip.shape[-2:]
    if min(h, w) == size:
        return clip.float()
    scale = size / min(h, w)
    new_h, new_w = (size, max(size, round(w * scale))) if h <= w else (max(size, round(h * scale)), size)
    return F.interpolate(clip.float(), size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1)


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
    """Centre square crop."""
    _check_fits(clip, size)
    h, w = clip.shape[-2:]
    return crop(clip, (h - size) // 2, (w - size) // 2, size)


def three_crop(clip: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Three square crops along the long side: start, centre, end (left/centre/right or top/centre/bottom)."""
    _check_fits(clip, size)
    h, w = clip.shape[-2:]
    if w >= h:
        top = (h - size) // 2
        return [crop(clip, top, left, size) for left in (0, (w - size) // 2, w - size)]
    left = (w - size) // 2
    return [crop(clip, top, left, size) for top in (0, (h - size) // 2, h - size)]


def spatial_crops(clip: torch.Tensor, size: int, num_crops: int) -> list[torch.Tensor]:
    """``num_crops`` = 1 (centre) or 3 (``three_crop``)."""
    if num_crops == 1:
        return [center_crop(clip, size)]
    if num_crops == 3:
        return three_crop(clip, size)
    raise ConfigError(f"test.num_crops must be 1 or 3, got {num_crops}")


def random_crop(clip: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Square crop at a uniformly random position."""
    _check_fits(clip, size)
    h, w = clip.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
    return crop(clip, top, left, size)


def normalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Scale a ``(T, C, H, W)`` clip in [0, 255] to [0, 1], normalise per channel, return ``(C, T, H, W)``."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255.0
    return ((clip.float() - m) / s).permute(1, 0, 2, 3).contiguous()


@dataclass
class ClipTransform:
    """Train or test transform from uint8 frames ``(T, H, W, C)`` to normalised float clips.

    Train (``__call__`` with ``train=True``): short side jittered in ``scale_range``, random crop, optional
    horizontal flip (the caller maps the label when a flip swaps classes). Eval: short side to ``test_scale``,
    ``num_crops`` crops; the result is stacked views ``(num_crops, C, T, H, W)``.
    """

    crop_size: int = 112
    scale_range: tuple[int, int] = (128, 160)
    test_scale: int = 128
    test_crop_size: int | None = None
    num_crops: int = 1
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    def train(self, frames: torch.Tensor, flip: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """One augmented training clip ``(C, T, H, W)``."""
        lo, hi = self.scale_range
        size = int(torch.randint(lo, hi + 1, (1,), generator=generator))
        clip = random_crop(resize_short_side(to_tchw(frames), size), self.crop_size, generator)
        if flip:
            clip = clip.flip(-1)
        return normalize(clip, self.mean, self.std)

    def eval(self, frames: torch.Tensor, num_crops: int | None = None) -> torch.Tensor:
        """Eval views of one clip (or of several clips concatenated on T by the caller): ``(crops, C, T, H, W)``."""
        size = self.test_crop_size or self.crop_size
        clip = resize_short_side(to_tchw(frames), self.test_scale)
        crops = spatial_crops(clip, size, num_crops or self.num_crops)
        return torch.stack([normalize(c, self.mean, self.std) for c in crops])
