"""Frame decoding for video files (decord, PyAV fallback) and frame folders (``image_00001.jpg``...).

``read_frames(path, indices)`` returns a uint8 tensor ``(T, H, W, 3)`` in RGB for any indices (0-based, any
order, repeats allowed), upright as players show it: the display-matrix rotation phones write is applied.
Every failure is a :class:`~vidrec.errors.DecodeError` whose message names the file.
Video containers sometimes claim more frames than they hold (HMDB51 AVIs claim one extra): indices past the
frames that really decode loop back modulo the real count, so a header that lies never crashes a read. A header
claiming more than a small excess (:func:`is_truncated`) marks a truncated file: the first read that finds it
logs one warning per file and process, and :func:`truncated_frame_count` then gives the frames that decode, so
the dataset samples from those instead of looping over the header's count.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vidrec.data.layout import FPS_FILE, FRAME_PATTERN, FRAME_TEMPLATE, VIDEO_EXTENSIONS  # noqa: F401  (re-exported)
from vidrec.errors import DecodeError

log = logging.getLogger(__name__)

#: A video header may claim a few frames more than decode: HMDB51's AVIs claim exactly one (1 of 49-84 frames, i.e.
#: 1.2-2 %, on all four HMDB51 clips of ../shared/clips). More than max(2 frames, 1 % of the claim) is truncation.
HEADER_EXCESS_FRAMES = 2
HEADER_EXCESS_FRACTION = 0.01

# PyAV must be loaded before decord: decord bundles its own FFmpeg libraries, and when they load first
# PyAV's encoders misbehave (libvpx-vp9 refuses to open). Import decord only through this module.
import av  # noqa: E402,F401  (import order matters, see above)
from av.video.reformatter import VideoReformatter  # noqa: E402

from vidrec.data import nvdec  # noqa: E402
from vidrec.data.jpeg import read_rgb  # noqa: E402
from vidrec.data.video_seek import cached_frame_table, rgb, seek_frames, sequential_only  # noqa: E402

try:  # decord is the fast path; it has no wheels for some platforms
    import decord

    decord.bridge.set_bridge("native")
    HAVE_DECORD = True
except Exception:  # pragma: no cover - depends on the platform
    decord = None
    HAVE_DECORD = False


def is_frame_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is a directory of extracted frames."""
    return Path(path).is_dir()


def frame_folder_fps(folder: str | os.PathLike) -> float | None:
    """The source frame rate the extraction recorded in a frame folder (its ``fps`` file), else None."""
    path = Path(folder) / FPS_FILE
    try:
        return float(path.read_text().strip()) if path.is_file() else None
    except ValueError:
        return None


def frame_path(folder: str | os.PathLike, index: int) -> Path:
    """Path of 0-based frame ``index`` in a frame folder (files are numbered from 1)."""
    return Path(folder) / FRAME_TEMPLATE.format(index + 1)


def folder_num_frames(folder: str | os.PathLike) -> int:
    """Frame count of a frame folder: its ``n_frames`` file when valid, else the number of ``image_*.jpg``."""
    folder = Path(folder)
    n_file = folder / "n_frames"
    if n_file.is_file():
        text = n_file.read_text().strip()
        if text.isdigit() and int(text) > 0:
            return int(text)
    count = sum(1 for name in os.listdir(folder) if FRAME_PATTERN.match(name))
    if count == 0:
        raise DecodeError(f"{folder}: frame folder holds no image_XXXXX.jpg files; re-run frame extraction")
    return count


def _read_folder(folder: Path, indices: Sequence[int]) -> torch.Tensor:
    """Each distinct frame is decoded once, straight into the clip array when the JPEG fast path applies."""
    unique = sorted(set(indices))
    first = _read_image(folder, unique[0])
    clip = np.empty((len(unique), *first.shape), dtype=np.uint8)
    clip[0] = first
    for k, i in enumerate(unique[1:], start=1):
        frame = _read_image(folder, i, clip[k])
        if frame.shape != first.shape:
            raise DecodeError(f"{folder}: frames differ in size {sorted({first.shape, frame.shape})}; re-extract the video")
        if not np.shares_memory(frame, clip):
            clip[k] = frame
    if unique == list(indices):
        return torch.from_numpy(clip)
    position = {i: k for k, i in enumerate(unique)}
    return torch.from_numpy(clip[[position[i] for i in indices]])


_SHORT_FOLDER_SEEN: list[Path] = []


def _read_image(folder: Path, i: int, out: np.ndarray | None = None) -> np.ndarray:
    """Frame ``i`` of a folder. Past the last image present (``n_frames`` or the annotation counted more frames
    than were extracted) it loops back on the images present, as a video read does past a lying header; a
    hole before the last image is an error. ``out``: where to decode the image when it fits (see ``read_rgb``)."""
    file = frame_path(folder, i)
    try:
        return read_rgb(file, out)
    except FileNotFoundError:
        last = max((int(m.group(1)) for m in map(FRAME_PATTERN.match, os.listdir(folder)) if m), default=0)
        if 0 < last <= i:
            if not _SHORT_FOLDER_SEEN:  # once per process: a dataset with this problem usually has it everywhere
                _SHORT_FOLDER_SEEN.append(folder)
                log.warning("%s holds %d images but frame %d was asked for (n_frames or the annotation's segment "
                            "counts more); such reads loop back on the images present", folder, last, i + 1)
            return _read_image(folder, i % last, out)
        raise DecodeError(f"{file}: frame {i + 1} is missing from {folder} (the last image is number {last}); "
                          "re-run frame extraction for this video") from None
    except Exception as exc:
        raise DecodeError(f"{file}: unreadable image ({exc}); re-run frame extraction for this video") from None


def is_truncated(claimed: int, decoded: int) -> bool:
    """True when a header claiming ``claimed`` frames, of which ``decoded`` decode, overcounts by more than the
    usual excess (:data:`HEADER_EXCESS_FRAMES` or :data:`HEADER_EXCESS_FRACTION` of the claim, whichever is larger)."""
    return claimed - decoded > max(HEADER_EXCESS_FRAMES, HEADER_EXCESS_FRACTION * claimed)


_TRUNCATED: dict[tuple[str, int, int], tuple[int, int]] = {}  # (path, size, mtime_ns) → (claimed, decoded) frames


def _file_key(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path), stat.st_size, stat.st_mtime_ns


def note_count(path: str | os.PathLike, claimed: int, decoded: int) -> None:
    """Remember a truncated video's real frame count; the first time per file, log one warning (also for what
    a decode in the isolated child found, :mod:`vidrec.data.isolation`)."""
    path = Path(path)
    key = _file_key(path)
    if key is None or not is_truncated(claimed, decoded) or key in _TRUNCATED:
        return
    _TRUNCATED[key] = (claimed, decoded)
    log.warning("%s: the header claims %d frames but only %d decode: the file is truncated; clips are sampled from "
                "the %d frames that decode. Download the video again (python -m vidrec.data.check --count-frames "
                "lists such files)", path, claimed, decoded, decoded)


def truncation(path: str | os.PathLike) -> tuple[int, int] | None:
    """(frames the header claims, frames that decode) of a video a read in this process found truncated."""
    key = _file_key(Path(path))
    return _TRUNCATED.get(key) if key is not None else None


def truncated_frame_count(path: str | os.PathLike) -> int | None:
    """The frames that decode in ``path`` when a read in this process found it truncated, else ``None``."""
    counts = truncation(path)
    return counts[1] if counts else None


def stored_frames(path: str | os.PathLike) -> tuple[int, int]:
    """(frames the header claims, video packets stored in the file), by demuxing without decoding: a cheap count
    of the frames present, for :func:`is_truncated`. Raises :class:`DecodeError` naming the file."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            return int(stream.frames), sum(1 for p in container.demux(stream) if p.size)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None


def _stack(path: Path, frames: list[np.ndarray]) -> torch.Tensor:
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise DecodeError(f"{path}: frames differ in size {sorted(shapes)}; re-extract the video")
    return torch.from_numpy(np.stack(frames))


def _decord_refusal(path: Path) -> str | None:
    """Why decord must not open ``path`` (``None`` when it may), judged by PyAV's demuxer.

    decord aborts the whole process (an uncatchable ``std::bad_alloc``) on a container whose header claims
    billions of frames, e.g. an AVI with one flipped bit in ``strh.dwLength``; a header claiming more frames
    than the file has bytes is never true, so such files (and files PyAV cannot open) go to PyAV alone.
    """
    stat = path.stat()
    return _decord_refusal_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8192)
def _decord_refusal_cached(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        with av.open(path, metadata_errors="ignore") as container:
            if not container.streams.video:
                return "the file has no video stream"
            claimed = container.streams.video[0].frames
    except Exception as exc:
        return f"not opened ({type(exc).__name__}: {exc})"
    if claimed > size:
        return f"not opened: the header claims {claimed} frames in a {size}-byte file"
    return None


@functools.lru_cache(maxsize=8192)
def _header_frames(path: str, size: int, mtime_ns: int) -> int:
    with av.open(path, metadata_errors="ignore") as container:
        return int(container.streams.video[0].frames)


def _decord_read(path: Path, indices: Sequence[int]) -> torch.Tensor:
    refusal = _decord_refusal(path)
    if refusal:
        raise RuntimeError(refusal)
    reader = decord.VideoReader(str(path), num_threads=1)
    n = len(reader)
    if n <= 0:
        raise DecodeError(f"{path}: no video frames")
    stat = path.stat()
    note_count(path, _header_frames(str(path), stat.st_size, stat.st_mtime_ns), n)
    unique = sorted({i % n for i in indices})
    batch = reader.get_batch(unique).asnumpy()  # decord 0.6 applies the display rotation itself (tested)
    pos = {i: k for k, i in enumerate(unique)}
    return torch.from_numpy(batch[[pos[i % n] for i in indices]])


def _pyav_read(path: Path, indices: Sequence[int], codec: str | None = None) -> torch.Tensor:
    """PyAV read: seek to the keyframe before each wanted frame when the file allows exact numbering (its frame
    table scanned once per process, :func:`~vidrec.data.video_seek.cached_frame_table`), else decode
    sequentially from the start (single-threaded: loader workers already use every core, and FFmpeg's frame
    threads cost 10-25% more CPU per frame; see docs/performance.md). ``codec``: decode the seeks with this
    decoder (``cuvid``: the stream's NVDEC decoder) instead of the stream's own; raises
    :class:`~vidrec.data.nvdec.Refused` where it cannot."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0] if container.streams.video else None
            table = None if stream is None or sequential_only(container, stream) else cached_frame_table(path, container, stream)
            if table is None:
                return _pyav_read_sequential(path, indices, container)
            if codec is None:
                found = seek_frames(container, stream, indices, table)
            else:
                decoder = nvdec.decoder_for(stream, None if codec == "cuvid" else codec)
                found = seek_frames(container, stream, indices, table, decoder)
                if found is None:  # its frames do not follow the numbering: the CPU path reads (and judges) it
                    raise nvdec.fall_back(f"{decoder.codec} gave frames that do not match {path}'s frame numbering")
            claimed = stream.frames
    except av.FFmpegError:
        found = None  # the sequential read below reports the error if it is real
    if found is not None:
        seeked, n = found
        note_count(path, claimed, n)
        return _stack(path, [seeked[i % n] for i in indices])
    return _pyav_read_sequential(path, indices)


def _pyav_read_sequential(path: Path, indices: Sequence[int], opened: av.container.InputContainer | None = None) -> torch.Tensor:
    """Decode from the start, counting frames (``opened``: a fresh container of ``path`` to use, left open)."""
    wanted = set(indices)
    last = max(wanted)
    frames: dict[int, np.ndarray] = {}
    reformatter = VideoReformatter()
    with contextlib.nullcontext(opened) if opened is not None else av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise DecodeError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        claimed, count = stream.frames, 0
        for count, frame in enumerate(container.decode(stream), start=1):
            if count - 1 in wanted:
                frames[count - 1] = rgb(frame, reformatter)
            if count - 1 == last:
                break
    if count == 0:
        raise DecodeError(f"{path}: no decodable video frames")
    missing = sorted({i % count for i in wanted if i not in frames} - set(frames))
    if len(frames) < len(wanted):  # the decode ran to the end: ``count`` is the real count
        note_count(path, claimed, count)
    if missing:  # the header claimed more frames than decode: loop back on the real count
        extra = _pyav_read_sequential(path, missing)
        frames.update({i: extra[k].numpy() for k, i in enumerate(missing)})
    return _stack(path, [frames[i] if i in frames else frames[i % count] for i in indices])


def read_frames(path: str | os.PathLike, indices: Sequence[int] | torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Decode frames ``indices`` of a video file or frame folder as uint8 ``(T, H, W, 3)`` RGB.

    ``backend`` is ``auto`` or ``pyav`` (PyAV seeking to keyframes, frames numbered as sequential decoding
    numbers them), ``cuvid`` (the same seeks decoded by NVDEC on an NVIDIA GPU, the CPU where it is
    unavailable: :mod:`vidrec.data.nvdec`), or ``decord`` (decord alone). ``auto`` no longer tries decord first: on
    HMDB51's packed-B-frame AVIs decord returns the wrong frames for random access (off by one, or frame 0
    for frame 20), and it is slower on every file measured (benchmarks/train_clips.py, docs/performance.md).
    """
    path = Path(path)
    idx = [int(i) for i in (indices.flatten().tolist() if isinstance(indices, torch.Tensor) else indices)]
    if not idx:
        raise ValueError("read_frames needs at least one index")
    if min(idx) < 0:
        raise ValueError(f"frame indices must be non-negative, got {min(idx)}")
    if is_frame_folder(path):
        return _read_folder(path, idx)
    if not path.is_file():
        raise DecodeError(f"{path}: no such video file or frame folder; check dataset.root and the annotation file")
    if path.stat().st_size == 0:
        raise DecodeError(f"{path}: the file is empty (0 bytes); re-download or remove it from the annotation")
    if backend == "decord" and HAVE_DECORD:  # without decord installed, PyAV reads instead
        try:
            return _decord_read(path, idx)
        except DecodeError:
            raise
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DecodeError(f"{path}: cannot decode (decord: {reason})") from None
    try:
        if backend == "cuvid":
            try:
                return _pyav_read(path, idx, codec="cuvid")
            except nvdec.Refused:
                pass  # warned once per process: the CPU decoder reads it
        return _pyav_read(path, idx)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"{path}: cannot decode (pyav: {type(exc).__name__}: {exc}); the file may be corrupt or truncated") from None


def count_frames(path: str | os.PathLike, exact: bool = True) -> int:
    """Number of frames of a video or frame folder.

    For videos, ``exact=True`` decodes the whole stream (the count that really decodes, not the header's);
    ``exact=False`` trusts the container header when it has one.
    """
    path = Path(path)
    if is_frame_folder(path):
        return folder_num_frames(path)
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            if not exact and 0 < stream.frames <= path.stat().st_size:  # a header claiming more is corrupt
                return int(stream.frames)
            stream.thread_type = "AUTO"
            count = sum(1 for _ in container.decode(stream))
            note_count(path, stream.frames, count)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"{path}: cannot decode ({type(exc).__name__}: {exc})") from None
    if count == 0:
        raise DecodeError(f"{path}: no decodable video frames")
    return count
