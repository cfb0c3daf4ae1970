"""Transforms: shapes, crop positions (start/centre/end along the long side), normalisation, flips."""

import pytest
import torch

from conftest import import_torchvision
from vidrec.data import transforms as T
from vidrec.data.decoding import read_frames
from vidrec.errors import ConfigError
from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD


def position_clip(t=2, h=6, w=10):
    """(T, C, H, W) whose value at (y, x) is 100·y + x, so a crop reveals where it was cut."""
    ys = torch.arange(h).view(h, 1) * 100
    xs = torch.arange(w).view(1, w)
    return (ys + xs).expand(t, 1, h, w).clone()


def test_three_crop_landscape_positions():
    crops = T.three_crop(position_clip(h=6, w=10), 4)
    # top = (6 - 4) // 2 = 1; lefts 0, 3, 6
    assert [int(c[0, 0, 0, 0]) for c in crops] == [100, 103, 106]
    assert all(c.shape == (2, 1, 4, 4) for c in crops)


def test_three_crop_portrait_positions():
    crops = T.three_crop(position_clip(h=10, w=6), 4)
    # left = 1; tops 0, 3, 6
    assert [int(c[0, 0, 0, 0]) for c in crops] == [1, 301, 601]


def test_center_crop_and_single_crop():
    c = T.center_crop(position_clip(h=6, w=10), 4)
    assert int(c[0, 0, 0, 0]) == 103
    assert torch.equal(T.spatial_crops(position_clip(h=6, w=10), 4, 1)[0], c)


def test_crop_larger_than_frame_is_a_clear_error():
    with pytest.raises(ConfigError, match="crop size 8 is larger than the resized frame 6×10"):
        T.center_crop(position_clip(h=6, w=10), 8)
    with pytest.raises(ConfigError, match="num_crops must be 1, 3 or 10"):
        T.spatial_crops(position_clip(), 4, 2)


@pytest.mark.parametrize("h,w,size,expect", [(240, 320, 128, (128, 171)), (320, 240, 128, (171, 128)), (128, 170, 128, (128, 170))])
def test_resize_short_side(h, w, size, expect):
    out = T.resize_short_side(torch.zeros(2, 3, h, w, dtype=torch.uint8), size)
    assert tuple(out.shape[-2:]) == expect and out.dtype == torch.float32


def test_normalize_layout_and_values():
    frames = torch.full((4, 3, 8, 8), 255, dtype=torch.uint8)
    out = T.normalize(frames, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert out.shape == (3, 4, 8, 8)
    assert torch.allclose(out, torch.ones_like(out))


def test_clip_transform_train_and_eval_shapes():
    frames = torch.randint(0, 255, (8, 64, 80, 3), dtype=torch.uint8)
    tf = T.ClipTransform(IMAGENET_MEAN, IMAGENET_STD, crop_size=56, scale_range=(60, 72), test_scale=64, num_crops=3)
    g = torch.Generator().manual_seed(0)
    assert tf.train(frames, flip=False, generator=g).shape == (3, 8, 56, 56)
    assert tf.eval(frames).shape == (3, 3, 8, 56, 56)
    assert tf.eval(frames, num_crops=1).shape == (1, 3, 8, 56, 56)


def test_flip_mirrors_the_clip():
    frames = torch.randint(0, 255, (2, 16, 16, 3), dtype=torch.uint8)
    tf = T.ClipTransform(IMAGENET_MEAN, IMAGENET_STD, crop_size=16, scale_range=(16, 16))
    a = tf.train(frames, flip=False, generator=torch.Generator().manual_seed(1))
    b = tf.train(frames, flip=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.flip(-1), b)


def fixed_size_transform(mean=(0.43216, 0.394666, 0.37645), std=(0.22803, 0.22145, 0.216989)) -> T.ClipTransform:
    """vidrec's test transform under the torchvision weights' protocol: 128×171, centre 112 (r3d_18.tv_kinetics400)."""
    return T.ClipTransform(mean, std, crop_size=112, test_resize=(128, 171), num_crops=1)


def test_fixed_size_view_shape_and_crop_position():
    frames = torch.randint(0, 256, (3, 128, 171, 3), dtype=torch.uint8)  # already 128×171: the resize keeps it
    view = fixed_size_transform().eval_views(frames)[0]
    assert view.shape == (3, 3, 112, 112) and view.dtype == torch.uint8  # (C, T, H, W), what workers hand over
    # torchvision's centre crop: top round(16 / 2) = 8, left round(59 / 2) = 30 (half to even), not 29
    assert torch.equal(view, frames[:, 8:120, 30:142].permute(3, 0, 1, 2))


def test_fixed_size_view_equals_torchvision_preset_on_a_real_clip(shared_clips):
    """vidrec's 128×171 → 112 test view of a real UCF101 clip, as the network receives it (uint8 views from the
    loader, normalised on the device), equals torchvision's ``VideoClassification`` preset (the transform of
    its Kinetics video weights) applied to the same uint8 frames."""
    presets = import_torchvision("torchvision.transforms._presets")
    frames = read_frames(shared_clips / "v_SoccerJuggling_g23_c01.avi", list(range(0, 32, 2)))  # 240×320
    preset = presets.VideoClassification(crop_size=(112, 112), resize_size=(128, 171))
    expected = preset(frames.permute(0, 3, 1, 2))  # (T, C, H, W) uint8 in, (C, T, H, W) float out
    tf = fixed_size_transform()
    got = T.normalize_cthw(tf.eval_views(frames)[0], tf.mean, tf.std)
    assert got.shape == expected.shape == (3, 16, 112, 112)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
