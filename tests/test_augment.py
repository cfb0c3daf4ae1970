"""Clip augmentation: one set of parameters for every frame, the authors' parameter rules, PIL / torchvision parity."""

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from conftest import import_torchvision
from vidrec.data import augment as A
from vidrec.errors import ConfigError

torch.set_num_threads(1)
MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def textured(h=36, w=52, seed=0) -> torch.Tensor:
    """A uint8 (3, H, W) frame with gradients and noise (every level op has something to do)."""
    g = gen(seed)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    base = torch.stack([(xs * 4) % 256, (ys * 6 + 20) % 256, ((xs + ys) * 3) % 256]).float() * 0.7
    return (base + torch.randint(0, 60, (3, h, w), generator=g)).clamp(0, 255).to(torch.uint8)


def shifted_clip(t=4, h=36, w=52) -> torch.Tensor:
    """Frames that are shifted copies of one larger frame (frame k: 3k pixels to the right)."""
    big = textured(h, w + 3 * t)
    return torch.stack([big[:, :, 3 * k : 3 * k + w] for k in range(t)])


# ------------------------------------------------------------------ grammar and magnitudes
@pytest.mark.parametrize("spec,values", [
    ("rand-m7-n4-mstd0.5-inc1", dict(magnitude=7, num_layers=4, magnitude_std=0.5, increasing=True)),
    ("rand-m9-mstd0.5-inc1", dict(magnitude=9, num_layers=2, magnitude_std=0.5, increasing=True)),  # PySlowFast
    ("rand-m9-n3-mstd0.5", dict(magnitude=9, num_layers=3, magnitude_std=0.5, increasing=False)),   # timm's example
    ("rand-mstd101", dict(magnitude=10, num_layers=2, magnitude_std=math.inf)),                    # > 100: uniform
    ("rand-m12-mmax15-p0.3-inc0", dict(magnitude=12, magnitude_max=15, prob=0.3, increasing=False)),
    ("rand", dict(magnitude=10, num_layers=2, prob=0.5, magnitude_std=0.0, magnitude_max=None, increasing=False)),
])
def test_grammar_values(spec, values):
    cfg = A.parse_rand_augment(spec)
    for key, value in values.items():
        assert getattr(cfg, key) == value, key
    assert cfg.ops == (A.RAND_INCREASING_OPS if cfg.increasing else A.RAND_OPS)
    assert len(cfg.ops) == 15 and "SolarizeIncreasing" in A.RAND_INCREASING_OPS and "Solarize" in A.RAND_OPS


@pytest.mark.parametrize("spec", ["rand-q3", "augmix-m3", "rand-m", "rand-mx", "rand-tweights"])
def test_grammar_errors(spec):
    with pytest.raises(ConfigError, match="rand"):
        A.parse_rand_augment(spec)


# timm auto_augment.py level maps at magnitude 7 (level 0.7), written from the formulas
M7 = {
    "Rotate": {21.0, -21.0}, "ShearX": {0.21, -0.21}, "ShearY": {0.21, -0.21},
    "TranslateXRel": {0.315, -0.315}, "TranslateYRel": {0.315, -0.315},
    "Color": {1.36}, "Contrast": {1.36}, "Brightness": {1.36}, "Sharpness": {1.36},       # 0.7 * 1.8 + 0.1
    "ColorIncreasing": {1.63, 0.37}, "ContrastIncreasing": {1.63, 0.37},                   # 1 ± 0.7 * 0.9
    "BrightnessIncreasing": {1.63, 0.37}, "SharpnessIncreasing": {1.63, 0.37},
    "Posterize": {2}, "PosterizeIncreasing": {2},                                           # int(2.8); 4 - 2
    "Solarize": {179}, "SolarizeIncreasing": {77}, "SolarizeAdd": {77},  # int(179.2); 256 - 179; int(77.0)
    "AutoContrast": set(), "Equalize": set(), "Invert": set(),
}


@pytest.mark.parametrize("inc", [0, 1])
def test_magnitude_mapping_at_m7(inc):
    ra = A.RandAugment(f"rand-m7-n4-p1.0-inc{inc}")
    seen: dict[str, set] = {}
    g = gen(0)
    for _ in range(150):
        for name, args, _ in ra.sample(g):
            seen.setdefault(name, set()).update(round(a, 9) for a in args)
    assert set(seen) == set(ra.config.ops)  # every op of the list is drawn
    for name, values in seen.items():
        assert values == {round(v, 9) for v in M7[name]}, name


def test_magnitude_noise_and_clamp():
    def rotations(spec, draws=400):
        ra, g, out = A.RandAugment(spec), gen(1), []
        while len(out) < draws:
            out += [abs(a[0]) / 3.0 for n, a, _ in ra.sample(g) if n == "Rotate"]  # |degrees| = 3 · magnitude
        return np.array(out)

    m = rotations("rand-m7-n4-p1.0-mstd0.5")
    assert abs(m.mean() - 7) < 0.1 and abs(m.std() - 0.5) < 0.08
    u = rotations("rand-m7-n4-p1.0-mstd101")  # uniform in [0, 7]
    assert u.min() >= 0 and u.max() <= 7 and abs(u.mean() - 3.5) < 0.25
    c = rotations("rand-m10-n4-p1.0-mstd3")  # clamped to [0, 10]
    assert c.max() == 10 and (c == 10).mean() > 0.3 and c.min() >= 0
    x = rotations("rand-m12-mmax15-n4-p1.0")  # mmax lifts the clamp
    assert set(np.round(x, 9)) == {12.0}


def test_op_choice_and_probability():
    ra, g = A.RandAugment("rand-m7-n4"), gen(2)
    applied = [len(ra.sample(g)) for _ in range(2000)]
    assert abs(np.mean(applied) - 2.0) < 0.1  # 4 ops, each with probability 0.5
    ra1 = A.RandAugment("rand-m7-n4-p1.0")
    counts = np.zeros(15)
    for _ in range(1000):
        for name, _, _ in ra1.sample(g):
            counts[ra1.config.ops.index(name)] += 1
    assert counts.sum() == 4000 and counts.min() > 200  # uniform with replacement: ~267 each


# ------------------------------------------------------------------ pixels as PIL computes them (timm's ops)
def pil_frames(clip, fn):
    out = [np.asarray(fn(Image.fromarray(f.permute(1, 2, 0).numpy()))) for f in clip]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


FILL = (128, 128, 128)


@pytest.mark.parametrize("name,ours,pil,tol", [
    ("AutoContrast", A.auto_contrast, ImageOps.autocontrast, 0),
    ("Equalize", A.equalize, ImageOps.equalize, 0),
    ("Invert", A.invert, ImageOps.invert, 0),
    ("Posterize", lambda c: A.posterize(c, 2), lambda p: ImageOps.posterize(p, 2), 0),
    ("Posterize0", lambda c: A.posterize(c, 0), lambda p: p.point([0] * 768), 0),  # PIL < 13: mask ~255 = 0
    ("Solarize", lambda c: A.solarize(c, 77), lambda p: ImageOps.solarize(p, 77), 0),
    ("SolarizeAdd", lambda c: A.solarize_add(c, 77), lambda p: p.point([min(255, i + 77) if i < 128 else i
                                                                         for i in range(256)] * 3), 0),
    ("Color", lambda c: A.enhance_color(c, 1.63), lambda p: ImageEnhance.Color(p).enhance(1.63), 0),
    ("Contrast", lambda c: A.enhance_contrast(c, 0.37), lambda p: ImageEnhance.Contrast(p).enhance(0.37), 0),
    ("Brightness", lambda c: A.enhance_brightness(c, 1.9), lambda p: ImageEnhance.Brightness(p).enhance(1.9), 0),
    ("Sharpness", lambda c: A.enhance_sharpness(c, 1.63), lambda p: ImageEnhance.Sharpness(p).enhance(1.63), 0),
    ("Sharpness-", lambda c: A.enhance_sharpness(c, 0.1), lambda p: ImageEnhance.Sharpness(p).enhance(0.1), 0),
    # geometric ops: the same geometry and fill, torch's resampling (bilinear within one level of PIL's)
    ("Rotate", lambda c: A.rotate(c, 21.0, FILL, "bilinear"),
     lambda p: p.rotate(21.0, resample=Image.BILINEAR, fillcolor=FILL), 1),
    ("ShearX", lambda c: A.affine(c, (1, 0.21, 0, 0, 1, 0), FILL, "bilinear"),
     lambda p: p.transform(p.size, Image.AFFINE, (1, 0.21, 0, 0, 1, 0), resample=Image.BILINEAR, fillcolor=FILL), 1),
    ("ShearY", lambda c: A.affine(c, (1, 0, 0, -0.21, 1, 0), FILL, "bilinear"),
     lambda p: p.transform(p.size, Image.AFFINE, (1, 0, 0, -0.21, 1, 0), resample=Image.BILINEAR, fillcolor=FILL), 1),
    ("TranslateXRel", lambda c: A.apply_op(c, "TranslateXRel", (-0.315,), FILL, "bilinear"),
     lambda p: p.transform(p.size, Image.AFFINE, (1, 0, -0.315 * p.size[0], 0, 1, 0), resample=Image.BILINEAR,
                           fillcolor=FILL), 1),
    ("TranslateInt", lambda c: A.affine(c, (1, 0, 0, 0, 1, 7), FILL, "bicubic"),
     lambda p: p.transform(p.size, Image.AFFINE, (1, 0, 0, 0, 1, 7), resample=Image.BICUBIC, fillcolor=FILL), 0),
])
def test_ops_match_pil(name, ours, pil, tol):
    clip = torch.stack([textured(seed=0), textured(seed=1) // 2 + 40])
    diff = (ours(clip).int() - pil_frames(clip, pil).int()).abs()
    assert int(diff.max()) <= tol, name
    if tol:
        assert float(diff.float().mean()) < 0.6


def test_bicubic_geometry_is_close_to_pil():
    """Bicubic: torch's kernel (a = -0.75) against PIL's (a = -0.5): a few levels at edges, the same geometry."""
    clip = textured()[None]
    diff = (A.rotate(clip, -17.0, FILL, "bicubic").int()
            - pil_frames(clip, lambda p: p.rotate(-17.0, resample=Image.BICUBIC, fillcolor=FILL)).int()).abs()
    assert float(diff.float().mean()) < 1.5 and int(diff.max()) <= 12


# ------------------------------------------------------------------ one set of parameters for every frame
def test_rand_augment_keeps_identical_frames_identical():
    ra = A.RandAugment("rand-m9-n4-p1.0-mstd0.5-inc1", interpolation="random")
    clip = textured()[None].expand(4, -1, -1, -1).contiguous()
    for seed in range(40):
        out = ra(clip, gen(seed))
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert all(torch.equal(out[0], out[k]) for k in range(1, 4)), seed


def test_rand_augment_applies_one_transform_to_every_frame():
    """Frames that differ (shifted copies): the clip's frame k is what the same ops do to frame k alone."""
    ra = A.RandAugment("rand-m9-n4-p1.0-mstd0.5-inc1")
    clip = shifted_clip()
    names = set()
    for seed in range(40):
        ops = ra.sample(gen(seed))
        names.update(n for n, _, _ in ops)
        out = ra.apply(clip, ops)
        for k in range(clip.shape[0]):
            assert torch.equal(out[k], ra.apply(clip[k : k + 1], ops)[0]), (seed, ops)
        assert torch.equal(out, ra(clip, gen(seed)))  # sample + apply is the call
    assert names >= set(A._GEOMETRIC)


def test_crops_cut_the_same_box_from_every_frame():
    clip = shifted_clip(t=3, h=40, w=60)
    for seed in range(20):
        out = A.random_resized_crop(clip, 24, generator=gen(seed))
        ms = A.multi_scale_crop(clip, 24, generator=gen(seed))
        for k in range(3):
            assert torch.equal(out[k], A.random_resized_crop(clip[k : k + 1], 24, generator=gen(seed))[0])
            assert torch.equal(ms[k], A.multi_scale_crop(clip[k : k + 1], 24, generator=gen(seed))[0])
    assert out.shape == ms.shape == (3, 3, 24, 24) and out.dtype == torch.uint8


# ------------------------------------------------------------------ random resized crop
def test_random_resized_crop_statistics():
    """No box is rejected for scale (0.1, 0.5) on 600 × 800: area fraction U(0.1, 0.5), log aspect uniform."""
    g, height, width = gen(3), 600, 800
    boxes = np.array([A.random_resized_crop_params(height, width, (0.1, 0.5), (3 / 4, 4 / 3), g) for _ in range(3000)])
    top, left, h, w = boxes.T
    area = h * w / (height * width)
    log_aspect = np.log(w / h)
    assert area.min() > 0.099 and area.max() < 0.501
    assert np.allclose(np.quantile(area, [0.25, 0.5, 0.75]), [0.2, 0.3, 0.4], atol=0.015)
    lo, hi = math.log(3 / 4), math.log(4 / 3)
    assert log_aspect.min() > lo - 0.01 and log_aspect.max() < hi + 0.01
    assert np.allclose(np.quantile(log_aspect, [0.25, 0.5, 0.75]), [lo / 2, 0, hi / 2], atol=0.015)
    assert (top >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
    assert abs(np.mean(top / (height - h)) - 0.5) < 0.02  # the position is uniform too


@pytest.mark.parametrize("height,width,box", [
    (100, 400, (0, 133, 100, 133)),   # wider than 4/3: full height, width round(100 · 4/3), centred
    (400, 100, (133, 0, 133, 100)),   # taller than 3/4: full width, height round(100 / (3/4))
    (100, 120, (0, 0, 100, 120)),     # aspect inside the range: the whole frame
])
def test_random_resized_crop_falls_back_to_the_centre(height, width, box):
    """Scale above 1: none of the 10 tries fits, the centre crop clamped to the ratio range remains."""
    assert A.random_resized_crop_params(height, width, (2.0, 3.0), (3 / 4, 4 / 3), gen(0)) == box


def test_random_resized_crop_matches_torchvision():
    transforms = import_torchvision("torchvision.transforms")
    img = torch.zeros(3, 37, 91)
    for seed in range(50):
        for scale in ([0.08, 1.0], [0.5, 3.0]):
            torch.manual_seed(seed)
            expect = transforms.RandomResizedCrop.get_params(img, scale, [3 / 4, 4 / 3])
            assert A.random_resized_crop_params(37, 91, scale, (3 / 4, 4 / 3), gen(seed)) == expect


# ------------------------------------------------------------------ TSN multi-scale crop
def test_fix_crop_offsets_table():
    # (340 - 224) // 4 = 29, (256 - 224) // 4 = 8 (ops/transforms.py:230-249)
    assert A.fix_crop_offsets(340, 256, 224, 224) == [
        (0, 0), (116, 0), (0, 32), (116, 32), (58, 16),
        (0, 16), (116, 16), (58, 32), (58, 0), (29, 8), (87, 8), (29, 24), (87, 24)]
    assert len(A.fix_crop_offsets(340, 256, 224, 224, more_fix_crop=False)) == 5


def test_multi_scale_crop_sizes_and_positions():
    # base 256: int(256 · (1, .875, .75, .66)) = 256, 224, 192, 168; pairs of scale indices at most 1 apart
    pairs = {(256, 256), (224, 256), (256, 224), (224, 224), (192, 224), (224, 192), (192, 192), (168, 192),
             (192, 168), (168, 168)}
    g, seen = gen(4), set()
    for _ in range(1500):
        top, left, h, w = A.multi_scale_crop_params(256, 340, 224, generator=g)
        assert (w, h) in pairs
        assert (left, top) in A.fix_crop_offsets(340, 256, w, h)
        seen.add((w, h))
    assert seen == pairs
    # sides within 3 pixels of the output size snap to it: 0.875 · 258 = 225.75 → 225 → 224
    assert {A.multi_scale_crop_params(258, 258, 224, (0.875,), generator=g)[2] for _ in range(5)} == {224}


# ------------------------------------------------------------------ colour jitter
def test_color_jitter_one_draw_for_every_frame():
    clip = shifted_clip()
    for seed in range(20):
        out = A.color_jitter(clip, 0.4, 0.4, 0.4, 0.1, generator=gen(seed))
        for k in range(clip.shape[0]):
            assert torch.equal(out[k], A.color_jitter(clip[k : k + 1], 0.4, 0.4, 0.4, 0.1, generator=gen(seed))[0])
    flat = torch.full((2, 3, 8, 8), 100, dtype=torch.uint8)
    levels = {int(A.color_jitter(flat, brightness=0.4, generator=gen(s))[0, 0, 0, 0]) for s in range(300)}
    assert min(levels) >= 60 and max(levels) <= 140 and len(levels) > 50  # 100 · U(0.6, 1.4)


def test_color_jitter_matches_torchvision():
    transforms = import_torchvision("torchvision.transforms")
    clip = torch.stack([textured(seed=s) for s in range(3)])
    for seed in range(30):
        torch.manual_seed(seed)
        expect = transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)(clip)
        assert torch.equal(A.color_jitter(clip, 0.4, 0.4, 0.4, 0.1, generator=gen(seed)), expect)


# ------------------------------------------------------------------ random erasing
def test_erasing_rectangle_is_the_same_on_every_frame():
    clip = torch.full((4, 3, 40, 50), 1000.0)  # a float (normalised) clip: noise never equals 1000
    for seed in range(30):
        out = A.random_erasing(clip, prob=1.0, mode="pixel", generator=gen(seed))
        erased = out != 1000.0
        assert erased.any() and all(torch.equal(erased[0], erased[k]) for k in range(4))
        ys, xs = erased[0, 0].nonzero(as_tuple=True)
        h, w = int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)
        assert int(erased[0, 0].sum()) == h * w  # one rectangle
        assert 0.015 <= h * w / (40 * 50) <= 0.34 and 0.25 <= h / w <= 4.0
        assert not torch.equal(out[0][erased[0]], out[1][erased[1]])  # per-pixel noise drawn anew per frame
    assert A.random_erasing(clip, prob=0.0, generator=gen(0)) is clip


def test_erasing_counts_and_uint8_noise():
    clip = torch.zeros((2, 3, 60, 60), dtype=torch.uint8)
    for seed in range(60):
        out = A.random_erasing(clip, prob=1.0, max_count=3, generator=gen(seed), mean=MEAN, std=(0.05,) * 3)
        assert (out > 0).any() and torch.equal(out[0] > 0, out[1] > 0)  # ~0.45 · 255 is never 0: same support
    big = A.random_erasing(torch.zeros((1, 3, 200, 200), dtype=torch.uint8), prob=1.0, generator=gen(1),
                           mean=MEAN, std=(0.05,) * 3)
    values = big[big > 0].float()
    assert abs(values.mean() - 0.45 * 255) < 1 and abs(values.std() - 0.05 * 255) < 1
    with pytest.raises(ValueError, match="mean and std"):
        A.random_erasing(clip, prob=1.0, generator=gen(0))
    counts = [len(A.erasing_boxes(60, 60, c, generator=gen(s))) for s in range(20) for c in (1, 2, 3)]
    assert counts == [1, 2, 3] * 20


# ------------------------------------------------------------------ the pipeline
def test_clip_augment_is_a_function_of_the_seed():
    frames = torch.stack([textured(48, 64, seed=s) for s in range(4)])
    aug = A.ClipAugment(MEAN, STD, rand_augment="rand-m7-n4-mstd0.5-inc1", color_jitter=(0.4, 0.4, 0.4, 0.0),
                        erase_prob=0.5)
    a, b, c = aug(frames, 32, gen(5)), aug(frames, 32, gen(5)), aug(frames, 32, gen(6))
    assert a.shape == (4, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    tsn = A.ClipAugment(MEAN, STD, crop="multi_scale", short_side=40)
    assert tsn(frames, 32, gen(0)).shape == (4, 3, 32, 32)
    with pytest.raises(ConfigError, match="augment.crop"):
        A.ClipAugment(MEAN, STD, crop="centre")
