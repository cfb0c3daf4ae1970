"""Spatial and colour augmentation of whole clips: one draw of parameters, the same on every frame.

Clips are uint8 ``(T, C, H, W)`` (:func:`vidrec.data.transforms.to_tchw` of decoded ``(T, H, W, C)`` frames, a view),
as the loader workers hold them; every random draw comes from the ``torch.Generator`` the loader seeds per sample,
so an augmented clip is a pure function of its item seed. Time is the batch dimension of every op: one crop box,
one RandAugment op list with one set of magnitudes, one set of colour factors and one erasing rectangle reach
every frame (PySlowFast's video RandAugment computes an op's arguments once and applies them to each frame,
SlowFast slowfast/datasets/rand_augment.py@88bb4c9:355-369; its ``RandomErasing(cube=True)`` erases one
rectangle on every frame, random_erasing.py:114-152). Ops whose result depends on the image content
(AutoContrast, Equalize, Contrast's mean) use each frame's own statistics, as PIL does on PySlowFast's frames.

Written on torch alone, uint8 in and out: torchvision's transforms do not import beside the CPU torch build and timm
needs torchvision; kornia 0.9 (torch only) works on float images with torch's global random state, its RandAugment
has its own op set and magnitude scale (m/30, ops drawn without replacement, no mstd, no increasing ops), and its
``VideoSequential`` refuses ``same_on_frame`` for it, so it cannot give one set of parameters per clip. On one CPU
thread this module's RandAugment (``rand-m7-n4-mstd0.5-inc1``, 16×224×224) ran 2.9-3.1× kornia's float RandAugment
and 1.2-1.4× PIL per frame (the authors' way) with the same ops. The pixel ops equal PIL's exactly (geometric ops:
same geometry, torch's resampling).

- :func:`random_resized_crop`: relative area in ``scale``, log-uniform aspect in ``ratio``, 10 tries then the
  centre-crop fallback (torchvision ``RandomResizedCrop.get_params``, transforms.py:929-970, drawn in the same
  order with the same torch calls, so a generator seeded as torch's global one gives torchvision's box;
  PySlowFast ``_get_param_spatial_crop``, slowfast/datasets/transform.py:477-516).
- :func:`multi_scale_crop`: TSN's ``GroupMultiScaleCrop`` (temporal-shift-module ops/transforms.py@83c77b7:180-251).
- :class:`RandAugment`: timm's ``rand-m<M>-n<N>-mstd<S>-inc1`` grammar, op lists and magnitude mapping
  (pytorch-image-models timm/data/auto_augment.py@8d81fdf3, lines cited below).
- :func:`color_jitter`: torchvision ``ColorJitter`` (random order of brightness / contrast / saturation / hue).
- :func:`random_erasing`: timm / PySlowFast ``RandomErasing`` with ``cube=True``.
- :class:`ClipAugment`: the train pipeline in the authors' order (PySlowFast kinetics.py:389-447: RandAugment on
  the decoded frames, then the crop, then erasing), what ``ClipTransform`` calls.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from vidrec.errors import ConfigError

Generator = torch.Generator | None


# ------------------------------------------------------------------ random draws (all from the item's generator)
def _rand(generator: Generator) -> float:
    return float(torch.rand((), generator=generator))


def _uniform(low: float, high: float, generator: Generator) -> float:
    return float(torch.empty(1).uniform_(low, high, generator=generator))


def _randint(low: int, high: int, generator: Generator) -> int:
    """An integer in ``[low, high]`` (both ends included, as Python's ``random.randint``)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


# ------------------------------------------------------------------ crops
def _resize(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of ``(T, C, H, W)`` to ``height × width``, antialiased when shrinking (PIL's and torchvision's
    resize); uint8 stays uint8 (torch's uint8 kernel, channels-last)."""
    if tuple(clip.shape[-2:]) == (height, width):
        return clip
    shrink = height < clip.shape[-2] or width < clip.shape[-1]
    if clip.dtype == torch.uint8:
        clip = clip.contiguous(memory_format=torch.channels_last)
    return F.interpolate(clip, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink)


def random_resized_crop_params(height: int, width: int, scale: Sequence[float] = (0.08, 1.0),
                               ratio: Sequence[float] = (3 / 4, 4 / 3),
                               generator: Generator = None) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a crop of relative area uniform in ``scale`` and aspect ``w / h`` log-uniform in
    ``ratio``; after 10 boxes that do not fit, the centre crop of the frame clamped to ``ratio`` (torchvision
    transforms.py:941-970, the same draws; PySlowFast transform.py:483-516)."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * _uniform(scale[0], scale[1], generator)
        log_aspect = torch.empty(1).uniform_(float(log_ratio[0]), float(log_ratio[1]), generator=generator)
        aspect = float(torch.exp(log_aspect))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(clip: torch.Tensor, size: int, scale: Sequence[float] = (0.08, 1.0),
                        ratio: Sequence[float] = (3 / 4, 4 / 3), generator: Generator = None) -> torch.Tensor:
    """The same random resized crop of every frame, resized to ``size × size``."""
    top, left, h, w = random_resized_crop_params(clip.shape[-2], clip.shape[-1], scale, ratio, generator)
    return _resize(clip[..., top : top + h, left : left + w], size, size)


def fix_crop_offsets(image_w: int, image_h: int, crop_w: int, crop_h: int,
                     more_fix_crop: bool = True) -> list[tuple[int, int]]:
    """TSN's fixed crop positions ``(w_offset, h_offset)``: the 4 corners and the centre, plus with
    ``more_fix_crop`` the 4 edge centres and the 4 quarter points — 13 in all (ops/transforms.py:229-251)."""
    w_step, h_step = (image_w - crop_w) // 4, (image_h - crop_h) // 4
    offsets = [(0, 0), (4 * w_step, 0), (0, 4 * h_step), (4 * w_step, 4 * h_step), (2 * w_step, 2 * h_step)]
    if more_fix_crop:
        offsets += [(0, 2 * h_step), (4 * w_step, 2 * h_step), (2 * w_step, 4 * h_step), (2 * w_step, 0),
                    (w_step, h_step), (3 * w_step, h_step), (w_step, 3 * h_step), (3 * w_step, 3 * h_step)]
    return offsets


def multi_scale_crop_params(height: int, width: int, size: int, scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
                            max_distort: int = 1, fix_crop: bool = True, more_fix_crop: bool = True,
                            generator: Generator = None) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of TSN's multi-scale crop (ops/transforms.py:200-222): side lengths
    ``int(min(H, W) · s)`` (snapped to ``size`` within 3 pixels), a (w, h) pair whose scale indices differ by at most
    ``max_distort``, placed at one of :func:`fix_crop_offsets` (or anywhere without ``fix_crop``)."""
    base = min(width, height)
    sides = [int(base * s) for s in scales]
    sides = [size if abs(x - size) < 3 else x for x in sides]
    pairs = [(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort]
    crop_w, crop_h = pairs[int(torch.randint(0, len(pairs), (1,), generator=generator))]
    if fix_crop:
        offsets = fix_crop_offsets(width, height, crop_w, crop_h, more_fix_crop)
        left, top = offsets[int(torch.randint(0, len(offsets), (1,), generator=generator))]
    else:
        left, top = _randint(0, width - crop_w, generator), _randint(0, height - crop_h, generator)
    return top, left, crop_h, crop_w


def multi_scale_crop(clip: torch.Tensor, size: int, scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
                     max_distort: int = 1, fix_crop: bool = True, more_fix_crop: bool = True,
                     generator: Generator = None) -> torch.Tensor:
    """TSN's multi-scale crop of every frame, resized to ``size × size`` (bilinear, as the authors' PIL resize)."""
    top, left, h, w = multi_scale_crop_params(clip.shape[-2], clip.shape[-1], size, scales, max_distort, fix_crop,
                                              more_fix_crop, generator)
    return _resize(clip[..., top : top + h, left : left + w], size, size)


# ------------------------------------------------------------------ PIL-equivalent pixel ops on uint8 (T, C, H, W)
def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float → uint8 as PIL's blend stores it: clipped to [0, 255], then truncated."""
    return x.clamp_(0, 255).to(torch.uint8)


def _pil_gray(clip: torch.Tensor) -> torch.Tensor:
    """PIL's RGB → L conversion ``(19595 R + 38470 G + 7471 B + 2^15) >> 16`` (ITU-R 601-2 in 16-bit fixed point);
    int32 ``(T, 1, H, W)``."""
    r, g, b = clip.to(torch.int32).unbind(-3)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)[:, None]


def _pil_blend(degenerate: torch.Tensor, clip: torch.Tensor, factor: float) -> torch.Tensor:
    """``Image.blend(degenerate, image, factor)`` (what ``ImageEnhance.*.enhance`` returns): ``d + f · (x - d)`` in
    float32, clipped and truncated."""
    d = degenerate.float()
    return _to_uint8(clip.float().sub_(d).mul_(torch.tensor(factor, dtype=torch.float32)).add_(d))


def auto_contrast(clip: torch.Tensor) -> torch.Tensor:
    """``ImageOps.autocontrast``: each frame's channels stretched from [min, max] to [0, 255] (unchanged when flat)."""
    lo = clip.amin(dim=(-2, -1), keepdim=True).double()
    hi = clip.amax(dim=(-2, -1), keepdim=True).double()
    flat = hi <= lo
    # a true division: ``255.0 / tensor`` multiplies by the reciprocal and can differ from PIL in the last bit
    span = torch.where(flat, torch.ones_like(hi), hi - lo)
    scale = torch.where(flat, torch.ones_like(hi), torch.full_like(hi, 255.0) / span)
    offset = torch.where(flat, torch.zeros_like(lo), -lo * scale)
    return clip.double().mul_(scale).add_(offset).trunc_().clamp_(0, 255).to(torch.uint8)


def equalize(clip: torch.Tensor) -> torch.Tensor:
    """``ImageOps.equalize`` per frame and channel: the lookup ``(step // 2 + Σ_{j<i} hist[j]) // step`` with
    ``step = (pixels - count of the last used level) // 255``; unchanged when one level is used or step is 0."""
    t, c, h, w = clip.shape
    flat = clip.reshape(t * c, h * w).long()
    hist = torch.zeros(t * c, 256, dtype=torch.int64).scatter_add_(1, flat, torch.ones_like(flat))
    levels = torch.arange(256).expand_as(hist)
    last = torch.where(hist > 0, levels, -1).amax(dim=1, keepdim=True)
    step = (h * w - hist.gather(1, last)) // 255
    before = hist.cumsum(1) - hist
    lut = ((step // 2 + before) // step.clamp(min=1)).clamp_(max=255)
    keep = ((hist > 0).sum(1, keepdim=True) <= 1) | (step == 0)
    lut = torch.where(keep, levels, lut)
    return lut.gather(1, flat).to(torch.uint8).view(t, c, h, w)


def invert(clip: torch.Tensor) -> torch.Tensor:
    return 255 - clip


def posterize(clip: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the ``bits`` most significant bits (``ImageOps.posterize``; unchanged for 8 or more). 0 bits (timm's
    PosterizeIncreasing at magnitude 10) gives black, as Pillow < 13 does (Pillow 13 refuses 0)."""
    if bits >= 8:
        return clip
    return clip & (~(2 ** (8 - bits) - 1) & 0xFF)


def solarize(clip: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert the levels at or above ``threshold`` (``ImageOps.solarize``): ``x XOR 255`` is ``255 - x``."""
    return clip ^ (clip >= threshold).to(torch.uint8).mul_(255)


def solarize_add(clip: torch.Tensor, add: int, threshold: int = 128) -> torch.Tensor:
    """Add ``add`` (saturating) to the levels below ``threshold`` (timm auto_augment.py:145-158)."""
    if threshold - 1 + add <= 255:  # never saturates (timm's arguments: add <= 128, threshold 128)
        return clip + (clip < threshold).to(torch.uint8).mul_(add)
    return torch.where(clip < threshold, (clip.to(torch.int16) + add).clamp_(max=255).to(torch.uint8), clip)


def enhance_color(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Color``: blend with the frame's grayscale."""
    return _pil_blend(_pil_gray(clip), clip, factor)


def enhance_contrast(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Contrast``: blend with the frame's mean gray level, ``int(mean + 0.5)``."""
    gray = _pil_gray(clip)
    mean = (gray.double().mean(dim=(-3, -2, -1), keepdim=True) + 0.5).floor()
    return _pil_blend(mean, clip, factor)


def enhance_brightness(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Brightness``: blend with black."""
    return _pil_blend(torch.zeros((), dtype=torch.uint8), clip, factor)


def enhance_sharpness(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Sharpness``: blend with ``ImageFilter.SMOOTH`` (3×3 ones with centre 5, divided by 13, rounded
    half up), whose border pixels PIL leaves unfiltered. Computed in integers: ``(2 (S + 4 x) + 13) // 26`` with S
    the 3×3 sum (a true half never occurs, so PIL's float rounding gives the same)."""
    h, w = clip.shape[-2:]
    smooth = clip.clone()
    if h > 2 and w > 2:
        x = clip.to(torch.int16)
        rows = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
        box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
        inner = (box + 4 * x[..., 1:-1, 1:-1]).mul_(2).add_(13).div_(26, rounding_mode="floor")
        smooth[..., 1:-1, 1:-1] = inner.to(torch.uint8)
    return _pil_blend(smooth, clip, factor)


def affine(clip: torch.Tensor, matrix: Sequence[float], fill: Sequence[float] = (128, 128, 128),
           interpolation: str = "bicubic") -> torch.Tensor:
    """PIL's ``Image.transform(size, AFFINE, (a, b, c, d, e, f))`` on every frame: output pixel centre ``(x, y)``
    samples the input at ``(a x + b y + c, d x + e y + f)``; sources outside the frame take ``fill``, sources
    inside sample with edge clamping (PIL's ``BILINEAR_HEAD``/``BICUBIC_HEAD``). Resampled with torch's
    ``grid_sample`` (its bicubic has a = -0.75, PIL's -0.5: pixels differ from PIL's by interpolation error)."""
    t, c, h, w = clip.shape
    a, b, cc, d, e, f = (float(v) for v in matrix)
    ys = torch.arange(h, dtype=torch.float64).add_(0.5).view(h, 1)
    xs = torch.arange(w, dtype=torch.float64).add_(0.5).view(1, w)
    sx, sy = a * xs + b * ys + cc, d * xs + e * ys + f
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    grid = torch.stack((2 * sx / w - 1, 2 * sy / h - 1), dim=-1).float().expand(t, h, w, 2)
    out = F.grid_sample(clip.float(), grid, mode=interpolation, padding_mode="border", align_corners=False)
    fill_t = torch.tensor(list(fill), dtype=torch.float32).view(1, c, 1, 1)
    return torch.where(inside, out, fill_t).round_().clamp_(0, 255).to(torch.uint8)


def rotate(clip: torch.Tensor, degrees: float, fill: Sequence[float] = (128, 128, 128),
           interpolation: str = "bicubic") -> torch.Tensor:
    """``Image.rotate(degrees)`` about the frame centre, counter-clockwise, same size (PIL's matrix, rounded to
    15 digits as PIL rounds it)."""
    h, w = clip.shape[-2:]
    angle = -math.radians(degrees % 360.0)
    a, b = round(math.cos(angle), 15), round(math.sin(angle), 15)
    d, e = round(-math.sin(angle), 15), round(math.cos(angle), 15)
    cx, cy = w / 2.0, h / 2.0
    return affine(clip, (a, b, a * -cx + b * -cy + cx, d, e, d * -cx + e * -cy + cy), fill, interpolation)


# ------------------------------------------------------------------ RandAugment
LEVEL_DENOM = 10.0  # timm auto_augment.py:38 (PySlowFast _MAX_LEVEL, rand_augment.py:43)
RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
            "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")  # :621-638
RAND_INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                       "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                       "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")  # :641-658
_GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")


@dataclass(frozen=True)
class RandAugmentConfig:
    """The values of a ``rand-...`` string (timm ``rand_augment_transform``, auto_augment.py:762-843)."""

    magnitude: int = 10           # m (default _LEVEL_DENOM, :792)
    num_layers: int = 2           # n (:793)
    prob: float = 0.5             # p, each chosen op's probability (:795)
    magnitude_std: float = 0.0    # mstd: gauss noise on the magnitude; inf (mstd > 100): uniform in [0, m] (:811-817)
    magnitude_max: float | None = None  # mmax: upper clamp of the magnitude instead of 10 (:818-820, :393-394)
    increasing: bool = False      # inc: the "increasing" op list (:821-823, :836)

    @property
    def ops(self) -> tuple[str, ...]:
        return RAND_INCREASING_OPS if self.increasing else RAND_OPS


def parse_rand_augment(spec: str) -> RandAugmentConfig:
    """Parse timm's grammar, e.g. ``rand-m7-n4-mstd0.5-inc1``: dash-separated sections after ``rand``, each a key
    and a number (``re.split(r'(\\d.*)', section)``, auto_augment.py:807). Unlike timm, ``inc0`` turns the increasing
    list off (timm's ``bool('0')`` is True, :822), and a section without a number or with an unknown key is an error
    (timm skips the former, :808-809). Transform-set sections (``t...``) are not supported."""
    parts = str(spec).split("-")
    if parts[0] != "rand":
        raise ConfigError(f"augment.rand_augment={spec!r}: a RandAugment string starts with 'rand-', e.g. "
                          "'rand-m7-n4-mstd0.5-inc1'")
    values: dict = {}
    for section in parts[1:]:
        pieces = re.split(r"(\d.*)", section)
        key = pieces[0]
        if len(pieces) < 2 or key not in ("m", "n", "p", "mstd", "mmax", "inc"):
            raise ConfigError(f"augment.rand_augment={spec!r}: unknown section {section!r}; the sections are m<int> "
                              "(magnitude), n<int> (ops per clip), p<float>, mstd<float>, mmax<int>, inc<0|1>")
        val = pieces[1]
        try:
            if key == "mstd":
                std = float(val)
                values["magnitude_std"] = math.inf if std > 100 else std
            elif key == "mmax":
                values["magnitude_max"] = int(val)
            elif key == "inc":
                values["increasing"] = bool(int(val))
            elif key == "m":
                values["magnitude"] = int(val)
            elif key == "n":
                values["num_layers"] = int(val)
            else:
                values["prob"] = float(val)
        except ValueError:
            raise ConfigError(f"augment.rand_augment={spec!r}: {section!r} is not a number after {key!r}") from None
    return RandAugmentConfig(**values)


def _negate(value: float, generator: Generator) -> float:
    """timm's ``_randomly_negate``: ``-v if random() > 0.5 else v`` (auto_augment.py:201-203)."""
    return -value if _rand(generator) > 0.5 else value


def _op_args(name: str, level: float, generator: Generator) -> tuple:
    """timm's level → argument maps (auto_augment.py:206-291), ``level`` the clamped magnitude."""
    frac = level / LEVEL_DENOM
    if name in ("AutoContrast", "Equalize", "Invert"):
        return ()
    if name == "Rotate":
        return (_negate(frac * 30.0, generator),)                        # :206-210
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return (frac * 1.8 + 0.1,)                                       # :213-215
    if name.endswith("Increasing") and not name.startswith(("Posterize", "Solarize")):
        return (max(0.1, 1.0 + _negate(frac * 0.9, generator)),)         # :218-223
    if name in ("ShearX", "ShearY"):
        return (_negate(frac * 0.3, generator),)                         # :234-238
    if name in ("TranslateXRel", "TranslateYRel"):
        return (_negate(frac * 0.45, generator),)                        # :248-253 (translate_pct 0.45)
    if name == "Posterize":
        return (int(frac * 4),)                                          # :256-260
    if name == "PosterizeIncreasing":
        return (4 - int(frac * 4),)                                      # :263-267
    if name == "Solarize":
        return (min(256, int(frac * 256)),)                              # :277-280
    if name == "SolarizeIncreasing":
        return (256 - min(256, int(frac * 256)),)                        # :283-286
    if name == "SolarizeAdd":
        return (min(128, int(frac * 110)),)                              # :289-291
    raise ConfigError(f"unknown RandAugment op {name!r}")


def apply_op(clip: torch.Tensor, name: str, args: tuple, fill: Sequence[float] = (128, 128, 128),
             interpolation: str = "bicubic") -> torch.Tensor:
    """One RandAugment op with its arguments on every frame (timm's NAME_TO_OP, auto_augment.py:326-354)."""
    base = name.replace("Increasing", "")
    if base == "AutoContrast":
        return auto_contrast(clip)
    if base == "Equalize":
        return equalize(clip)
    if base == "Invert":
        return invert(clip)
    if base == "Posterize":
        return posterize(clip, args[0])
    if base == "Solarize":
        return solarize(clip, args[0])
    if base == "SolarizeAdd":
        return solarize_add(clip, args[0])
    if base in ("Color", "Contrast", "Brightness", "Sharpness"):
        return {"Color": enhance_color, "Contrast": enhance_contrast, "Brightness": enhance_brightness,
                "Sharpness": enhance_sharpness}[base](clip, args[0])
    if base == "Rotate":
        return rotate(clip, args[0], fill, interpolation)
    h, w = clip.shape[-2:]
    matrix = {"ShearX": (1, args[0], 0, 0, 1, 0), "ShearY": (1, 0, 0, args[0], 1, 0),  # :66-73
              "TranslateXRel": (1, 0, args[0] * w, 0, 1, 0), "TranslateYRel": (1, 0, 0, 0, 1, args[0] * h)}  # :76-85
    return affine(clip, matrix[base], fill, interpolation)


@dataclass
class RandAugment:
    """RandAugment of whole clips from timm's grammar (``spec``, e.g. PySlowFast's default AUG.AA_TYPE
    ``rand-m9-mstd0.5-inc1``, slowfast/config/defaults.py:193; MViTv2's ``rand-m7-n4-mstd0.5-inc1``).

    Per clip: ``n`` ops drawn uniformly with replacement (timm ``np.random.choice(..., replace=True)``,
    auto_augment.py:744-749); each applied with probability ``p`` (:381-382); its magnitude ``m`` (plus
    ``N(0, mstd)`` noise, or uniform in [0, m] for mstd > 100), clamped to [0, mmax or 10] (:383-394), mapped to
    its arguments (:395); the same arguments on every frame. ``fill`` is the colour of uncovered pixels (timm and
    PySlowFast default (128, 128, 128), :36); ``interpolation`` of the geometric ops: ``bicubic`` (PySlowFast's
    AUG.INTERPOLATION default, defaults.py:196, passed to every op, transform.py:626-627), ``bilinear``, or
    ``random`` (timm's default: one of the two per op, :46, :53-57).
    """

    spec: str = "rand-m9-mstd0.5-inc1"
    fill: tuple[float, float, float] = (128.0, 128.0, 128.0)
    interpolation: str = "bicubic"
    config: RandAugmentConfig = field(init=False)

    def __post_init__(self) -> None:
        self.config = parse_rand_augment(self.spec)
        if self.interpolation not in ("bicubic", "bilinear", "random"):
            raise ConfigError(f"augment.interpolation={self.interpolation}: use bicubic, bilinear or random")

    def sample(self, generator: Generator = None) -> list[tuple[str, tuple, str]]:
        """The ops one clip gets: ``(name, arguments, interpolation)`` for each op that applies, in order."""
        cfg, ops = self.config, self.config.ops
        chosen = torch.randint(0, len(ops), (cfg.num_layers,), generator=generator).tolist()
        out = []
        for k in chosen:
            name = ops[k]
            if cfg.prob < 1.0 and _rand(generator) > cfg.prob:
                continue
            magnitude = float(cfg.magnitude)
            if cfg.magnitude_std == math.inf:
                magnitude = _uniform(0.0, magnitude, generator)
            elif cfg.magnitude_std > 0:
                magnitude = magnitude + cfg.magnitude_std * float(torch.randn((), generator=generator))
            magnitude = max(0.0, min(magnitude, cfg.magnitude_max or LEVEL_DENOM))
            args = _op_args(name, magnitude, generator)
            interp = self.interpolation
            if interp == "random" and name in _GEOMETRIC:
                interp = ("bilinear", "bicubic")[int(torch.randint(0, 2, (1,), generator=generator))]
            out.append((name, args, interp if interp != "random" else "bilinear"))
        return out

    def apply(self, clip: torch.Tensor, ops: list[tuple[str, tuple, str]]) -> torch.Tensor:
        for name, args, interp in ops:
            clip = apply_op(clip, name, args, self.fill, interp)
        return clip

    def __call__(self, clip: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        """RandAugment of a uint8 ``(T, 3, H, W)`` clip."""
        return self.apply(clip, self.sample(generator))


# ------------------------------------------------------------------ colour jitter (torchvision ColorJitter)
def _tv_gray(clip: torch.Tensor) -> torch.Tensor:
    """torchvision's ``rgb_to_grayscale`` (0.2989 R + 0.587 G + 0.114 B, cast back to the clip's dtype)."""
    r, g, b = clip.unbind(dim=-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).to(clip.dtype).unsqueeze(dim=-3)


def _tv_blend(img1: torch.Tensor, img2: torch.Tensor, ratio: float) -> torch.Tensor:
    """torchvision's ``_blend``: ``ratio · img1 + (1 - ratio) · img2``, clamped, cast back."""
    return (ratio * img1 + (1.0 - ratio) * img2).clamp(0, 255).to(img1.dtype)


def adjust_hue(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """Rotate the hue by ``factor`` turns (RGB → HSV → RGB, PIL's and torchvision's formulas), uint8 in and out."""
    x = clip.float() / 255.0
    r, g, b = x.unbind(dim=-3)
    maxc, minc = x.amax(dim=-3), x.amin(dim=-3)
    flat = maxc == minc
    ones = torch.ones_like(maxc)
    s = (maxc - minc) / torch.where(flat, ones, maxc)
    span = torch.where(flat, ones, maxc - minc)
    rc, gc, bc = (maxc - r) / span, (maxc - g) / span, (maxc - b) / span
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = (torch.fmod(h / 6.0 + 1.0, 1.0) + factor) % 1.0
    sector = torch.floor(h * 6.0)
    f = h * 6.0 - sector
    sector = sector.to(torch.int64) % 6
    v = maxc
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    table = torch.stack([torch.stack(c, dim=0) for c in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))])
    rgb = table.gather(1, sector.unsqueeze(0).unsqueeze(0).expand(3, 1, *sector.shape)).squeeze(1)
    return rgb.movedim(0, -3).mul(255.0 + 1.0 - 1e-3).to(torch.uint8)


def color_jitter_params(brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0,
                        generator: Generator = None) -> tuple[list[int], float | None, float | None, float | None,
                                                               float | None]:
    """torchvision ``ColorJitter.get_params`` (transforms.py:1259-1266) with its ranges ``[max(0, 1 - v), 1 + v]``
    (hue ``[-v, v]``), drawn in the same order: the op order, then each enabled factor."""
    if not 0 <= hue <= 0.5:
        raise ConfigError(f"augment.color_jitter hue={hue}: use a value in [0, 0.5]")
    order = torch.randperm(4, generator=generator).tolist()
    factors = []
    for value, centre in ((brightness, 1.0), (contrast, 1.0), (saturation, 1.0), (hue, 0.0)):
        if value < 0:
            raise ConfigError(f"augment.color_jitter values must be non-negative, got {value}")
        factors.append(None if value == 0 else _uniform(max(centre - value, 0.0) if centre else -value,
                                                        centre + value, generator))
    return order, *factors


def color_jitter(clip: torch.Tensor, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                 hue: float = 0.0, generator: Generator = None) -> torch.Tensor:
    """torchvision's ``ColorJitter`` on a uint8 ``(T, 3, H, W)`` clip, one set of factors for every frame (the
    contrast mean is each frame's, as torchvision computes it over dims (-3, -2, -1))."""
    order, b, c, s, h = color_jitter_params(brightness, contrast, saturation, hue, generator)
    for k in order:
        if k == 0 and b is not None:
            clip = _tv_blend(clip, torch.zeros_like(clip), b)
        elif k == 1 and c is not None:
            clip = _tv_blend(clip, _tv_gray(clip).float().mean(dim=(-3, -2, -1), keepdim=True), c)
        elif k == 2 and s is not None:
            clip = _tv_blend(clip, _tv_gray(clip), s)
        elif k == 3 and h is not None:
            clip = adjust_hue(clip, h)
    return clip


# ------------------------------------------------------------------ random erasing
def erasing_boxes(height: int, width: int, count: int, min_area: float = 0.02, max_area: float = 1 / 3,
                  min_aspect: float = 0.3, max_aspect: float | None = None, attempts: int = 100,
                  generator: Generator = None) -> list[tuple[int, int, int, int]]:
    """Up to ``count`` rectangles ``(top, left, h, w)``: each of area ``U(min_area, max_area) · H · W / count`` and
    aspect ``h / w`` log-uniform in ``[min_aspect, max_aspect or 1 / min_aspect]``, ``h < H`` and ``w < W``, up to
    ``attempts`` tries (PySlowFast random_erasing.py:132-152, 100 tries with ``cube``)."""
    log_aspect = (math.log(min_aspect), math.log(max_aspect or 1 / min_aspect))
    area = height * width
    boxes = []
    for _ in range(count):
        for _ in range(attempts):
            target = _uniform(min_area, max_area, generator) * area / count
            aspect = math.exp(_uniform(*log_aspect, generator))
            h, w = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if w < width and h < height:
                boxes.append((_randint(0, height - h, generator), _randint(0, width - w, generator), h, w))
                break
    return boxes


def random_erasing(clip: torch.Tensor, prob: float = 0.25, mode: str = "pixel", max_count: int = 1,
                   min_count: int = 1, min_area: float = 0.02, max_area: float = 1 / 3, min_aspect: float = 0.3,
                   generator: Generator = None, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None) -> torch.Tensor:
    """Erase the same rectangle(s) on every frame of ``(T, C, H, W)`` (PySlowFast ``RandomErasing(cube=True)``,
    random_erasing.py:114-152; defaults of AUG.RE_PROB / RE_MODE / RE_COUNT, defaults.py:199-205).

    With probability ``prob`` (else the clip unchanged), ``randint(min_count, max_count)`` rectangles get, in
    ``mode`` ``pixel``, per-pixel N(0, 1) noise drawn anew for each frame (``_get_pixels`` per frame, :143-151);
    ``rand``, one N(0, 1) colour per channel and frame; ``const``, 0. The authors erase normalised clips, where 0 is
    the mean colour: a float clip is taken as normalised; a uint8 clip needs the ``mean``/``std`` (pixels in
    [0, 1]) it will be normalised with, and gets ``round(255 · (mean + std · z))``, clipped to [0, 255] (z beyond
    about ±2 std saturates). Returns a new tensor."""
    if mode not in ("pixel", "rand", "const"):
        raise ConfigError(f"augment.erase_mode={mode}: use pixel, rand or const")
    if _rand(generator) > prob:
        return clip
    count = min_count if min_count == max_count else _randint(min_count, max_count, generator)
    t, c, h, w = clip.shape
    boxes = erasing_boxes(h, w, count, min_area, max_area, min_aspect, generator=generator)
    if not boxes:
        return clip
    if clip.dtype == torch.uint8 and (mean is None or std is None):
        raise ValueError("random_erasing of a uint8 clip needs the mean and std it will be normalised with")
    out = clip.clone()
    for top, left, bh, bw in boxes:
        shape = (t, c, bh, bw) if mode == "pixel" else (t, c, 1, 1)
        z = torch.randn(shape, generator=generator) if mode != "const" else torch.zeros(shape)
        if clip.dtype == torch.uint8:
            m = torch.tensor(list(mean), dtype=torch.float32).view(1, c, 1, 1)
            s = torch.tensor(list(std), dtype=torch.float32).view(1, c, 1, 1)
            z = ((m + s * z) * 255.0).round_().clamp_(0, 255)
        out[..., top : top + bh, left : left + bw] = z.to(out.dtype)
    return out


# ------------------------------------------------------------------ the train pipeline
CROPS = ("random_resized", "multi_scale")


@dataclass
class ClipAugment:
    """The spatial and colour augmentation of one training clip, in the authors' order: RandAugment on the frames
    as they come (PySlowFast kinetics.py:389-400, before the crop), the crop (``random_resized``: relative area
    ``scale``, aspect ``ratio``, PySlowFast DATA.TRAIN_JITTER_SCALES_RELATIVE / _ASPECT_RELATIVE, :407-423;
    ``multi_scale``: TSN's), colour jitter, random erasing (:435-447, after the crop). ``short_side`` first resizes
    the frames' short side (TSN in mmaction2 resizes to 256 before its multi-scale crop); it also makes RandAugment
    on large frames cheaper. Flips stay in ``ClipTransform`` (they may map the label). uint8 in and out.
    """

    mean: Sequence[float]
    std: Sequence[float]
    crop: str = "random_resized"
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    multi_scales: tuple[float, ...] = (1, 0.875, 0.75, 0.66)
    max_distort: int = 1
    short_side: int | None = None
    rand_augment: str | None = None
    interpolation: str = "bicubic"
    color_jitter: tuple[float, float, float, float] | None = None  # brightness, contrast, saturation, hue
    erase_prob: float = 0.0
    erase_mode: str = "pixel"
    erase_count: int = 1
    _rand_augment: RandAugment | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise ConfigError(f"augment.crop={self.crop}: use one of {', '.join(CROPS)}")
        if self.rand_augment:
            self._rand_augment = RandAugment(self.rand_augment, interpolation=self.interpolation)

    def __call__(self, clip: torch.Tensor, size: int, generator: Generator = None) -> torch.Tensor:
        """uint8 ``(T, 3, H, W)`` → augmented uint8 ``(T, 3, size, size)``."""
        if self.short_side:
            from vidrec.data.transforms import resize_short_side_uint8

            clip = resize_short_side_uint8(clip, self.short_side)
        if self._rand_augment is not None:
            clip = self._rand_augment(clip, generator)
        if self.crop == "random_resized":
            clip = random_resized_crop(clip, size, self.scale, self.ratio, generator)
        else:
            clip = multi_scale_crop(clip, size, self.multi_scales, self.max_distort, generator=generator)
        if self.color_jitter:
            clip = color_jitter(clip, *self.color_jitter, generator=generator)
        if self.erase_prob > 0:
            clip = random_erasing(clip, self.erase_prob, self.erase_mode, max_count=self.erase_count,
                                  generator=generator, mean=self.mean, std=self.std)
        return clip
