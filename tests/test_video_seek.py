"""The data path's fast paths give what the plain paths give: keyframe-seeking reads, JPEG decoding, uint8 resizing."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import moving_bar_frames
from vidrec.data import jpeg, video_seek
from vidrec.data import transforms as T
from vidrec.data.datamodule import available_cpus, loader_workers, pin_memory
from vidrec.data.decoding import read_frames
from vidrec.data.synthetic import write_video
from vidrec.data.video_seek import frame_table
from vidrec.errors import ConfigError
from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD


def sequential_decode(path) -> np.ndarray:
    """Every frame, decoded from the start with plain PyAV (the reference numbering)."""
    with av.open(str(path), metadata_errors="ignore") as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])


def keyframes(path):
    with av.open(str(path), metadata_errors="ignore") as container:
        return frame_table(container, container.streams.video[0])


def index_sets(n: int, seed: int = 0):
    """Random sets with repeats and indices past the end, plus strided clips as the samplers make them."""
    rng = np.random.default_rng(seed)
    sets = [rng.integers(0, n + n // 2, int(rng.integers(1, 12))).tolist() for _ in range(8)]
    sets += [[(s + 4 * k) % n for k in range(16)] for s in rng.integers(0, n, 4).tolist()]
    return sets + [[n - 1, 0, n - 1], list(range(n))[::-1]]


@pytest.fixture(scope="module", params=[".mp4", ".webm", ".avi"])
def gop_video(request, tmp_path_factory):
    """60 frames with a keyframe every 8 (H.264 with B-frames in .mp4)."""
    path = tmp_path_factory.mktemp("gop") / f"clip{request.param}"
    write_video(path, moving_bar_frames(60, seed=3) // 2 + np.arange(60, dtype=np.uint8)[:, None, None, None] * 2,
                options={"g": "8", "keyint_min": "8"})
    return path


@pytest.mark.parametrize("backend", ["auto", "pyav", "cuvid"])  # cuvid: NVDEC where present, else the CPU
def test_seek_read_equals_sequential_decode(gop_video, backend):
    table = keyframes(gop_video)
    assert table is not None and len(table.keyframes) >= 4  # the keyframe-seeking path is the one tested
    frames = sequential_decode(gop_video)
    for idx in index_sets(len(frames)):
        out = read_frames(gop_video, idx, backend=backend).numpy()
        assert np.array_equal(out, frames[[i % len(frames) for i in idx]]), idx


def test_shared_clips_seek_or_fall_back_exactly(shared_clips):
    for path in sorted(shared_clips.glob("*.avi")):
        frames = sequential_decode(path)
        table = keyframes(path)
        with av.open(str(path), metadata_errors="ignore") as c:
            packed = bool(c.streams.video[0].codec_context.has_b_frames)
        assert (table is None) == packed, path.name  # AVI with B-frames: sequential decoding only
        for idx in index_sets(len(frames), seed=len(frames)):
            out = read_frames(path, idx).numpy()
            assert np.array_equal(out, frames[[i % len(frames) for i in idx]]), (path.name, idx)


@pytest.fixture
def scans(monkeypatch):
    """An empty frame-table cache, and the files :func:`frame_table` scanned since (a list of paths)."""
    calls = []

    def counting(container, stream):
        calls.append(container.name)
        return frame_table(container, stream)

    monkeypatch.setattr(video_seek, "_TABLES", type(video_seek._TABLES)())
    monkeypatch.setattr(video_seek, "frame_table", counting)
    return calls


def test_frame_table_scanned_once_per_file_and_again_when_it_changes(tmp_path, scans):
    path = tmp_path / "clip.mp4"
    write_video(path, moving_bar_frames(40, seed=1), options={"g": "8", "keyint_min": "8"})
    first = read_frames(path, [3, 20, 39]).numpy()
    assert np.array_equal(read_frames(path, [39, 20, 3]).numpy(), first[::-1])
    assert read_frames(path, [0, 1]).shape[0] == 2
    assert scans == [str(path)]  # three reads, one scan
    write_video(path, moving_bar_frames(24, seed=2), options={"g": "8", "keyint_min": "8"})  # a new file, same name
    assert np.array_equal(read_frames(path, [3, 23, 24]).numpy(), sequential_decode(path)[[3, 23, 0]])
    assert scans == [str(path)] * 2


def test_frame_table_cache_keeps_the_most_recent_files(tmp_path, scans, monkeypatch):
    monkeypatch.setattr(video_seek, "TABLE_CACHE_SIZE", 2)
    paths = [tmp_path / f"v{i}.mp4" for i in range(3)]
    for i, path in enumerate(paths):
        write_video(path, moving_bar_frames(16, seed=i))
    for path in paths + [paths[2], paths[1], paths[0]]:
        read_frames(path, [5])
    assert scans == [str(p) for p in paths + [paths[0]]]  # v0 fell out when v2 came in; v2, v1 were kept


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    rgb = (np.linspace(0, 255, 33 * 47 * 3).reshape(33, 47, 3) + rng.normal(0, 8, (33, 47, 3))).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=90)
    Image.fromarray(rgb).save(tmp_path / "progressive.jpg", quality=90, progressive=True)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.jpg")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb).save(tmp_path / "png.jpg", format="PNG")
    return tmp_path


@pytest.mark.parametrize("name", ["rgb", "progressive", "gray", "cmyk", "png"])
def test_jpeg_fast_path_gives_the_pil_pixels(images, name):
    fast = jpeg.read_rgb(images / f"{name}.jpg")
    assert fast.shape == (33, 47, 3) and fast.dtype == np.uint8
    assert np.array_equal(fast, jpeg.read_rgb(images / f"{name}.jpg", fast=False))


def test_jpeg_decodes_into_the_given_buffer(images):
    if jpeg.simplejpeg is None:
        pytest.skip("simplejpeg is not installed: PIL alone")
    clip = np.zeros((2, 33, 47, 3), np.uint8)
    out = jpeg.read_rgb(images / "rgb.jpg", clip[1])
    assert np.shares_memory(out, clip) and np.array_equal(clip[1], jpeg.read_rgb(images / "rgb.jpg", fast=False))
    assert not clip[0].any()


def test_frame_folder_read_without_fast_decoder_is_the_same(images, monkeypatch, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(1, 6):
        Image.fromarray(moving_bar_frames(6)[k]).save(folder / f"image_{k:05d}.jpg", quality=90)
    fast = read_frames(folder, [4, 0, 2, 2])
    monkeypatch.setattr(jpeg, "simplejpeg", None)
    assert torch.equal(fast, read_frames(folder, [4, 0, 2, 2]))


@pytest.mark.parametrize("h,w,size", [(48, 64, 40), (48, 64, 60), (64, 48, 32), (40, 40, 40)])
def test_uint8_resize_within_one_level_of_float(h, w, size):
    clip = torch.randint(0, 256, (3, h, w, 3), dtype=torch.uint8)
    exact = T.resize_short_side(T.to_tchw(clip), size)
    fast = T.resize_short_side_uint8(T.to_tchw(clip), size)
    assert fast.dtype == torch.uint8 and fast.shape == exact.shape
    assert (fast.float() - exact.clamp(0, 255)).abs().max() <= 1.001  # rounding to integers, fixed-point weights


def test_clip_transform_uint8_matches_float_path():
    frames = torch.randint(0, 256, (4, 48, 64, 3), dtype=torch.uint8)
    tf = T.ClipTransform(IMAGENET_MEAN, IMAGENET_STD, crop_size=32, scale_range=(36, 44), test_scale=40, num_crops=3)
    level = 1 / 255 / min(tf.std)  # one intensity level after normalisation
    for seed, flip in ((0, False), (1, True)):
        fast = tf.train(frames, flip, torch.Generator().manual_seed(seed))
        exact = tf.train(frames.float(), flip, torch.Generator().manual_seed(seed))
        assert fast.shape == exact.shape == (3, 4, 32, 32) and (fast - exact).abs().max() <= level * 1.01
    fast, exact = tf.eval(frames), tf.eval(frames.float())
    assert fast.shape == (3, 3, 4, 32, 32) and (fast - exact).abs().max() <= level * 1.01


def test_loader_workers_and_pin_memory():
    cores = available_cpus()
    assert loader_workers(10_000) == cores and loader_workers(10_000, cap=False) == 10_000
    assert loader_workers(None) == cores == loader_workers("auto")
    assert loader_workers(10_000, processes=cores * 2) == 1 and loader_workers(0) == 0
    with pytest.raises(ConfigError, match="num_workers"):
        loader_workers("many")
    assert pin_memory(True, None) and not pin_memory(False, None)
    assert pin_memory("auto", None) == torch.cuda.is_available()
