"""NVDEC decoding: ``data.decoder=cuvid`` decodes with FFmpeg's ``*_cuvid`` decoders (bundled with PyAV) on an
NVIDIA GPU, through the same frame table and keyframe seeks as the CPU path: only the codec context differs,
so frame ``i`` is the same frame. Where NVDEC is unavailable (no GPU or driver, a codec without a cuvid
decoder) or refuses a file, the CPU decoder reads it instead, with one warning per process.

NVDEC frames carry no display matrix: a rotated (phone) video comes out as stored, not upright.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator

import av

log = logging.getLogger(__name__)
OPEN_DECODERS = 4  # NVDEC contexts kept open per process (opening one initialises CUDA: tens of ms)
_OPEN: OrderedDict[tuple[str, int, int, bytes], CodecDecoder] = OrderedDict()
_UNAVAILABLE: dict[object, str] = {}  # decoder name, or (name, size, parameters) → why it does not open here
_WARNED: list[str] = []


class Refused(RuntimeError):
    """NVDEC cannot decode this file (the reason is warned about once); the CPU decoder reads it."""


def cuvid_name(stream: av.video.stream.VideoStream) -> str:
    """The name of the NVDEC decoder of a stream's codec (``h264`` → ``h264_cuvid``)."""
    return f"{stream.codec_context.name}_cuvid"


def fall_back(reason: str) -> Refused:
    """Warn (the first time in this process) that the CPU decodes instead; the exception to raise."""
    if not _WARNED:
        _WARNED.append(reason)
        log.warning("data.decoder=cuvid: %s; decoding on the CPU instead (this warning is shown once per process)",
                    reason)
    return Refused(reason)


class CodecDecoder:
    """A stream's packets decoded by a codec context of its own (``codec``: an FFmpeg decoder name), for
    :func:`vidrec.data.video_seek.seek_frames`; any failure raises :class:`Refused`."""

    def __init__(self, stream: av.video.stream.VideoStream, codec: str):
        src = stream.codec_context
        self.codec = codec
        self.ctx = av.CodecContext.create(codec, "r")
        self.ctx.extradata = src.extradata
        self.ctx.width, self.ctx.height = src.width, src.height
        self.ctx.thread_count = 1  # as the CPU path (a no-op for NVDEC)
        self.ctx.open()

    def __call__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        self.ctx.flush_buffers()  # the container's seek flushed the stream's own context, not this one
        try:
            for packet in container.demux(stream):  # the last, empty packet flushes the decoder
                yield from self.ctx.decode(packet)
        except av.FFmpegError as exc:
            raise fall_back(f"{self.codec} refused {container.name} ({exc})") from None


def decoder_for(stream: av.video.stream.VideoStream, codec: str | None = None) -> CodecDecoder:
    """An open decoder for ``stream`` (default: its NVDEC decoder), reused across files of the same codec, size
    and parameters; raises :class:`Refused` where it cannot open."""
    codec = codec or cuvid_name(stream)
    src = stream.codec_context
    key = (codec, src.width, src.height, bytes(src.extradata or b""))
    for known in (codec, key):
        if known in _UNAVAILABLE:
            raise Refused(_UNAVAILABLE[known])
    if key in _OPEN:
        _OPEN.move_to_end(key)
        return _OPEN[key]
    if codec not in av.codecs_available:
        _UNAVAILABLE[codec] = f"PyAV's FFmpeg has no {codec} decoder"
        raise fall_back(_UNAVAILABLE[codec])
    try:
        decoder = _OPEN[key] = CodecDecoder(stream, codec)
    except av.FFmpegError as exc:  # no GPU, no driver, or a size / profile NVDEC does not take
        _UNAVAILABLE[key] = f"{codec} does not open for a {src.width}x{src.height} {src.name} stream ({exc})"
        raise fall_back(_UNAVAILABLE[key]) from None
    if len(_OPEN) > OPEN_DECODERS:
        _OPEN.popitem(last=False)
    return decoder
