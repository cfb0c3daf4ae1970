"""read_frames on real files: MP4, AVI, WebM, frame folders, the shared real-world clips."""

import json
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import moving_bar_frames
from vidrec.data import decoding
from vidrec.data.decoding import count_frames, folder_num_frames, read_frames
from vidrec.data.synthetic import write_video
from vidrec.errors import DecodeError, VidrecError
from vidrec.preprocess.frames import Job, Options, extract


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


def write_phone_video(path, rotation: int, frames: int = 8) -> None:
    """An H.264 MP4 as a phone writes it: pixels stored turned, with a display matrix saying how to show them.
    Shown upright it is 96 wide and 128 tall, with a white square in its top-left corner."""
    shown = np.full((128, 96, 3), 30, np.uint8)
    shown[:32, :24] = 255
    stored = np.ascontiguousarray(np.rot90(shown, -(rotation // 90)))  # turning it by ``rotation`` shows it
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10), options={"crf": "12", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        stream.set_display_rotation(rotation)  # counter-clockwise degrees, as VideoFrame.rotation reads it back
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode())


def assert_upright(frame) -> None:
    """(H, W, 3): 128 tall, 96 wide, bright in the top-left corner only."""
    grey = torch.as_tensor(np.asarray(frame)).float().mean(-1)
    assert tuple(grey.shape) == (128, 96)
    corners = [grey[:24, :18], grey[:24, -18:], grey[-24:, :18], grey[-24:, -18:]]  # TL, TR, BL, BR
    assert [bool(c.mean() > 200) for c in corners] == [True, False, False, False], [float(c.mean()) for c in corners]


@pytest.mark.parametrize("rotation", [90, 270, 180, 0])
def test_rotated_phone_video_reads_upright(tmp_path, rotation):
    path = tmp_path / f"phone_{rotation}.mp4"
    write_phone_video(path, rotation)
    with av.open(str(path)) as container:  # the file really carries the rotation (270 reads back as -90)
        assert next(container.decode(video=0)).rotation == (rotation + 180) % 360 - 180
    reads = {"frame-exact seeking": read_frames(path, [5, 0], backend="pyav"),
             "sequential": decoding._pyav_read_sequential(path, [5, 0])}  # the fallback for unseekable files
    if decoding.HAVE_DECORD:  # decord 0.6 turns the frames itself: no second turn on top
        reads["decord"] = read_frames(path, [5, 0], backend="decord")
    for name, clip in reads.items():
        assert clip.shape == (2, 128, 96, 3), name
        for frame in clip:
            assert_upright(frame)
    assert count_frames(path) == count_frames(path, exact=False) == 8
    for size, shown in ((0, (96, 128)), (48, (48, 64))):  # frame extraction: upright JPEGs, short side scaled
        dest = tmp_path / f"jpg{size}" / "phone"
        assert extract(Job(path, dest), Options(size=size)).frames == 8
        with Image.open(dest / "image_00001.jpg") as image:
            assert image.size == shown
            if size == 0:
                assert_upright(image.convert("RGB"))


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
