"""Keyframe-seeking reads with PyAV: decode only from the keyframe before each wanted frame.

A clip of 16 frames at stride 4 needs 61 frames of a video; decoding from the start of the file to reach it
costs the whole prefix. :func:`seek_frames` numbers the frames from the packets alone (demuxing, no
decoding), seeks to the keyframe before each wanted frame, and checks every decoded frame against that
numbering: frame ``i`` is the frame sequential decoding from the start would give as the ``i``-th. Where
the packets cannot number the frames exactly (no timestamps; AVI with B-frames, whose "packed" DivX
bitstreams decode fewer frames than they have packets, in an order their timestamps do not give) it
returns ``None`` and the caller decodes sequentially. :func:`cached_frame_table` keeps the numbering of
the last :data:`TABLE_CACHE_SIZE` files per process, so a video is scanned once per loader worker.
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

#: Frame tables kept per process (least recently used first out): a table holds ~37 bytes per frame (11 kB for
#: a 300-frame video, as Python ints in lists), so 1024 tables of 10 s videos are ~11 MB per worker.
TABLE_CACHE_SIZE = 1024
_TABLES: OrderedDict[tuple[str, int, int], FrameTable | None] = OrderedDict()
#: ``decode(container, stream)`` → the stream's frames from the container's current position.
Decode = Callable[[av.container.InputContainer, av.video.stream.VideoStream], Iterator[av.VideoFrame]]


@dataclass(frozen=True)
class FrameTable:
    """Frame numbering of a video stream: ``pts[i]`` is frame ``i``'s timestamp; ``keyframes`` ascending indices."""

    pts: list[int]
    keyframes: list[int]

    def keyframe_before(self, index: int) -> int:
        """The index of the last keyframe at or before frame ``index``."""
        return self.keyframes[bisect.bisect_right(self.keyframes, index) - 1]


def sequential_only(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> bool:
    """True for AVI with B-frames: AVI stores no presentation times, and its B-frames are often "packed"
    (DivX), so packets are not frames; only decoding from the start numbers them."""
    return container.format.name == "avi" and bool(stream.codec_context.has_b_frames)


def frame_table(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> FrameTable | None:
    """Number the frames of ``stream`` from its packets (or its index, without B-frames); ``None`` when they
    cannot number them exactly. Demuxing reads the whole file (~1 ms for 300 frames, ~3% of a clip's decode)."""
    if sequential_only(container, stream):
        return None
    if stream.codec_context.has_b_frames:
        packets = ((p.pts, p.is_keyframe) for p in container.demux(stream) if p.size and not p.is_discard)
    else:  # decode order is presentation order: the container's index has it without reading the file
        packets = ((e.timestamp, e.is_keyframe) for e in stream.index_entries if e.size and not e.is_discard)
        if len(stream.index_entries) != stream.frames:  # no complete index (Matroska cues list keyframes only)
            packets = ((p.pts, p.is_keyframe) for p in container.demux(stream) if p.size and not p.is_discard)
    pts: list[int] = []
    key_pts: list[int] = []
    for timestamp, is_key in packets:
        if timestamp is None:
            return None
        pts.append(timestamp)
        if is_key:
            key_pts.append(timestamp)
    pts.sort()
    position = {p: i for i, p in enumerate(pts)}
    if not pts or len(position) != len(pts) or pts[0] not in key_pts:
        return None  # repeated timestamps, or a stream that does not start on a keyframe
    return FrameTable(pts, sorted(position[p] for p in key_pts))


def cached_frame_table(path: str | os.PathLike, container: av.container.InputContainer,
                       stream: av.video.stream.VideoStream) -> FrameTable | None:
    """:func:`frame_table` of the file at ``path``, from the cache when the file (path, size, mtime) was scanned
    before in this process; a changed file is scanned again."""
    stat = os.stat(path)
    key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
    if key in _TABLES:
        _TABLES.move_to_end(key)
        return _TABLES[key]
    table = _TABLES[key] = frame_table(container, stream)
    if len(_TABLES) > TABLE_CACHE_SIZE:
        _TABLES.popitem(last=False)
    return table


def upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """``image`` (H, W, C) turned as players show it: ``rotation`` is the display matrix's counter-clockwise angle
    (PyAV's ``frame.rotation``; phone videos: ±90, 180), rounded to a multiple of 90°. Flips are not applied."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def rgb(frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of a decoded frame, upright (:func:`upright`); one reformatter per read reuses its
    scaler (2-3× faster)."""
    return upright(reformatter.reformat(frame, format="rgb24").to_ndarray(), frame.rotation)


def _decode(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    return container.decode(stream)


def seek_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                wanted: Iterable[int], table: FrameTable | None = None,
                decode: Decode = _decode) -> tuple[dict[int, np.ndarray], int] | None:
    """Decode the frames ``wanted`` (indices modulo the frame count) by seeking to keyframes.

    Returns ``(frames by index, frame count)``, or ``None`` when the file cannot be read this way exactly
    (the caller then decodes sequentially). ``container`` must be freshly opened; it is left seeked. ``table``:
    the stream's :func:`frame_table` when known (else it is scanned); ``decode``: what decodes the packets
    after each seek (the stream's own codec context by default; :mod:`vidrec.data.nvdec` passes NVDEC's).
    """
    table = table if table is not None else frame_table(container, stream)
    if table is None:
        return None
    n = len(table.pts)
    wanted_set = {i % n for i in wanted}
    targets = sorted(wanted_set)
    frames: dict[int, np.ndarray] = {}
    reformatter = VideoReformatter()
    decoded = None  # the decode generator of the current run
    expect = 0  # index of the next frame the current run must give
    for target in targets:
        if target in frames:
            continue
        key = table.keyframe_before(target)
        seeking = decoded is None or key > expect
        if seeking:
            if decoded is not None:
                decoded.close()
            container.seek(table.pts[key], backward=True, any_frame=False, stream=stream)
            decoded, expect = decode(container, stream), key
        for frame in decoded:
            if seeking and frame.pts is not None and frame.pts < table.pts[key]:
                continue  # leading frames of an open GOP, or an earlier keyframe the demuxer landed on
            seeking = False
            if frame.pts != table.pts[expect]:
                return None  # not the frame the numbering predicts: give up on seeking for this file
            if expect in wanted_set:
                frames[expect] = rgb(frame, reformatter)
            expect += 1
            if expect > target:
                break
        else:
            return None  # the stream ended before the wanted frame (truncated file): decode sequentially
    if decoded is not None:
        decoded.close()
    return frames, n

