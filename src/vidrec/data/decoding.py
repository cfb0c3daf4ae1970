"""Frame decoding for video files (decord, PyAV fallback) and frame folders (``image_00001.jpg``...).

``read_frames(path, indices)`` returns a uint8 tensor ``(T, H, W, 3)`` in RGB for any indices (0-based, any
order, repeats allowed). Every failure is a :class:`~vidrec.errors.DecodeError` whose message names the file.
Video containers sometimes claim more frames than they hold (HMDB51 AVIs claim one extra): indices past the
frames that really decode loop back modulo the real count, so a header that lies never crashes a read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidrec.errors import DecodeError

FRAME_TEMPLATE = "image_{:05d}.jpg"
_FRAME_RE = re.compile(r"image_(\d{5})\.jpg$")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")

# PyAV must be loaded before decord: decord bundles its own FFmpeg libraries, and when they load first
# PyAV's encoders misbehave (libvpx-vp9 refuses to open). Import decord only through this module.
import av  # noqa: E402,F401  (import order matters, see above)

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
    count = sum(1 for name in os.listdir(folder) if _FRAME_RE.match(name))
    if count == 0:
        raise DecodeError(f"{folder}: frame folder holds no image_XXXXX.jpg files; re-run frame extraction")
    return count


def _read_folder(folder: Path, indices: Sequence[int]) -> torch.Tensor:
    unique = sorted(set(indices))
    frames: dict[int, np.ndarray] = {}
    for i in unique:
        file = frame_path(folder, i)
        try:
            with Image.open(file) as img:
                frames[i] = np.asarray(img.convert("RGB"))
        except FileNotFoundError:
            raise DecodeError(f"{file}: frame {i + 1} is missing from {folder}; re-run frame extraction for this video") from None
        except Exception as exc:
            raise DecodeError(f"{file}: unreadable image ({exc}); re-run frame extraction for this video") from None
    return _stack(folder, [frames[i] for i in indices])


def _stack(path: Path, frames: list[np.ndarray]) -> torch.Tensor:
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise DecodeError(f"{path}: frames differ in size {sorted(shapes)}; re-extract the video")
    return torch.from_numpy(np.stack(frames))


def _decord_read(path: Path, indices: Sequence[int]) -> torch.Tensor:
    reader = decord.VideoReader(str(path), num_threads=1)
    n = len(reader)
    if n <= 0:
        raise DecodeError(f"{path}: no video frames")
    unique = sorted({i % n for i in indices})
    batch = reader.get_batch(unique).asnumpy()
    pos = {i: k for k, i in enumerate(unique)}
    return torch.from_numpy(batch[[pos[i % n] for i in indices]])


def _pyav_read(path: Path, indices: Sequence[int]) -> torch.Tensor:
    wanted = set(indices)
    last = max(wanted)
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise DecodeError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = 0
        for count, frame in enumerate(container.decode(stream), start=1):
            if count - 1 in wanted:
                frames[count - 1] = frame.to_ndarray(format="rgb24")
            if count - 1 == last:
                break
    if count == 0:
        raise DecodeError(f"{path}: no decodable video frames")
    missing = sorted({i % count for i in wanted if i not in frames} - set(frames))
    if missing:  # the header claimed more frames than decode: loop back on the real count
        extra = _pyav_read(path, missing)
        frames.update({i: extra[k].numpy() for k, i in enumerate(missing)})
    return _stack(path, [frames[i] if i in frames else frames[i % count] for i in indices])


def read_frames(path: str | os.PathLike, indices: Sequence[int] | torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Decode frames ``indices`` of a video file or frame folder as uint8 ``(T, H, W, 3)`` RGB.

    ``backend`` is ``auto`` (decord when installed, PyAV when decord fails), ``decord`` or ``pyav``.
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
    errors: list[str] = []
    if backend in ("auto", "decord") and HAVE_DECORD:
        try:
            return _decord_read(path, idx)
        except DecodeError:
            raise
        except Exception as exc:
            errors.append(f"decord: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            if backend == "decord":
                raise DecodeError(f"{path}: cannot decode ({errors[0]})") from None
    try:
        return _pyav_read(path, idx)
    except DecodeError:
        raise
    except Exception as exc:
        errors.append(f"pyav: {type(exc).__name__}: {exc}")
    raise DecodeError(f"{path}: cannot decode ({'; '.join(errors)}); the file may be corrupt or truncated")


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
            if not exact and stream.frames > 0:
                return int(stream.frames)
            stream.thread_type = "AUTO"
            count = sum(1 for _ in container.decode(stream))
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"{path}: cannot decode ({type(exc).__name__}: {exc})") from None
    if count == 0:
        raise DecodeError(f"{path}: no decodable video frames")
    return count
