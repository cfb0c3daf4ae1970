"""read_frames on real files: MP4, AVI, WebM, frame folders, the shared real-world clips."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import moving_bar_frames
from vidrec.data.decoding import count_frames, folder_num_frames, read_frames
from vidrec.data.synthetic import write_video
from vidrec.errors import DecodeError, VidrecError


def brightness(frames):
    return frames.float().mean(dim=(1, 2, 3))


@pytest.fixture(scope="module", params=[".mp4", ".avi", ".webm"])
def video(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / f"clip{request.param}"
    write_video(path, moving_bar_frames(20))
    return path


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_video_any_order_with_repeats(video, backend):
    idx = [7, 0, 7, 19, 3]
    out = read_frames(video, idx, backend=backend)
    assert out.shape == (5, 48, 64, 3) and out.dtype.is_floating_point is False
    expected = 10 + 10 * np.array(idx)
    assert np.allclose(brightness(out).numpy(), expected, atol=4)
    assert count_frames(video) == 20


def test_indices_past_the_end_loop_back(video):
    a = read_frames(video, [21], backend="pyav")
    b = read_frames(video, [1], backend="pyav")
    assert (a == b).all()


def test_frame_folder(tmp_path):
    frames = moving_bar_frames(6)
    for k, f in enumerate(frames, start=1):
        Image.fromarray(f).save(tmp_path / f"image_{k:05d}.jpg", quality=95)
    out = read_frames(tmp_path, [5, 0, 5])
    assert out.shape == (3, 48, 64, 3)
    assert np.allclose(brightness(out).numpy(), [60, 10, 60], atol=3)
    assert folder_num_frames(tmp_path) == 6
    (tmp_path / "n_frames").write_text("6\n")
    assert count_frames(tmp_path) == 6


def test_grayscale_jpeg_becomes_rgb(tmp_path):
    Image.fromarray(np.full((10, 12), 77, np.uint8), mode="L").save(tmp_path / "image_00001.jpg")
    out = read_frames(tmp_path, [0])
    assert out.shape == (1, 10, 12, 3)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DecodeError, match="nope.mp4"):
        read_frames(tmp_path / "nope.mp4", [0])
    with pytest.raises(VidrecError, match="image_00002.jpg"):  # a hole before the last image (past it reads loop back)
        for k in (1, 3):
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / f"image_{k:05d}.jpg")
        read_frames(tmp_path, [0, 1])


def test_shared_clips_decode_to_manifest_counts(shared_clips):
    manifest = json.loads((shared_clips / "MANIFEST.json").read_text())
    for name, info in manifest.items():
        if name.startswith("_"):
            continue
        path = shared_clips / name
        n = count_frames(path)
        assert n == info["decoded_frames_pyav"], name
        # the header's extra frame never crashes a read: the last claimed index loops back
        last = read_frames(path, [info["header_frames"] - 1, n - 1])
        assert last.shape == (2, info["height"], info["width"], 3)
