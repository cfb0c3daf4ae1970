"""data.decoder=cuvid: the NVDEC path decodes the same seeks as the CPU path with a codec context of its own, and
falls back to the CPU decoder, with one warning, where NVDEC is unavailable (as on a machine without a GPU)."""

import logging

import av
import numpy as np
import pytest
import torch

from conftest import moving_bar_frames
from vidrec.data import nvdec
from vidrec.data.decoding import read_frames
from vidrec.data.synthetic import write_video
from vidrec.data.video_seek import frame_table, seek_frames


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.mp4"  # H.264 with B-frames, a keyframe every 8
    write_video(path, moving_bar_frames(48, seed=4), options={"g": "8", "keyint_min": "8"})
    return path


@pytest.fixture
def fresh(monkeypatch):
    """No NVDEC state from earlier tests: nothing opened, refused or warned about yet in this process."""
    for name in ("_OPEN", "_UNAVAILABLE", "_WARNED"):
        monkeypatch.setattr(nvdec, name, type(getattr(nvdec, name))())


def test_own_codec_context_gives_the_cpu_frames(video, shared_clips, fresh):
    """The mechanics NVDEC uses (a separate codec context fed the demuxed packets after each seek), run with the
    stream's CPU decoder, give exactly the frames of the CPU path: only the decoder name differs for cuvid."""
    for path in [video, *sorted(shared_clips.glob("v_*.avi"))]:  # H.264 MP4; UCF101 MPEG-4 AVIs (seekable)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            table = frame_table(container, stream)
            n = len(table.pts)
            wanted = [0, n - 1, 9, 10, n // 2, 3]
            frames, count = seek_frames(container, stream, wanted, table, nvdec.decoder_for(stream, stream.codec_context.name))
        assert count == n
        cpu = read_frames(path, wanted, backend="pyav").numpy()
        assert all(np.array_equal(frames[i], cpu[k]) for k, i in enumerate(wanted)), path.name


@pytest.mark.skipif("cuda" in av.codec.hwaccel.hwdevices_available() and torch.cuda.is_available(),
                    reason="an NVIDIA GPU is present: NVDEC does not fall back")
def test_cuvid_without_a_gpu_gives_the_cpu_frames_with_one_warning(video, tmp_path, fresh, caplog):
    assert "h264_cuvid" in av.codecs_available  # PyAV's FFmpeg ships it: the fallback is NVDEC's refusal to open
    other = tmp_path / "other.mp4"
    write_video(other, moving_bar_frames(20, h=32, w=48, seed=5))
    with caplog.at_level(logging.WARNING, logger="vidrec.data.nvdec"):
        for path, idx in [(video, [0, 47, 12, 13]), (video, [5]), (other, [19, 0])]:
            assert torch.equal(read_frames(path, idx, backend="cuvid"), read_frames(path, idx, backend="pyav"))
    warnings = [r.getMessage() for r in caplog.records if r.name == "vidrec.data.nvdec"]
    assert len(warnings) == 1 and "h264_cuvid" in warnings[0] and "CPU" in warnings[0], warnings


def test_cuvid_is_a_decoder_setting():
    from vidrec.data.spec import DataSpec

    spec = DataSpec.from_config({"name": "x", "root": "/r", "annotation_path": "/a.json"}, {"decoder": "cuvid"})
    assert spec.data.decoder == "cuvid"


def test_a_decoder_whose_frames_break_the_numbering_falls_back_to_the_cpu(video, fresh, monkeypatch, caplog):
    """A decoder that loses a frame after each seek (as NVDEC could on a file it mishandles) is caught by the
    timestamp check of every frame: the CPU path reads the file, with the warning."""

    class Lossy(nvdec.CodecDecoder):
        def __call__(self, container, stream):
            frames = super().__call__(container, stream)
            next(frames)  # the keyframe goes missing
            yield from frames

    monkeypatch.setattr(nvdec, "decoder_for", lambda stream, codec=None: Lossy(stream, stream.codec_context.name))
    with caplog.at_level(logging.WARNING, logger="vidrec.data.nvdec"):
        assert torch.equal(read_frames(video, [9, 30], backend="cuvid"), read_frames(video, [9, 30], backend="pyav"))
    assert any("do not match" in r.getMessage() for r in caplog.records if r.name == "vidrec.data.nvdec")
