"""On-disk conventions shared by the preprocessing commands, the decoder and the data check (torch-free).

A frame folder holds ``image_00001.jpg``, ``image_00002.jpg``... (1-based) and an ``n_frames`` file with
its frame count. An annotation entry lives at ``root / path_format`` with the placeholders ``{label}``
(``test`` for unlabelled entries, as 3D-ResNets-PyTorch's Kinetics test set), ``{video_id}`` and ``{subset}``;
a video adds its extension.
"""

from __future__ import annotations

import re

from vidrec.errors import ConfigError

#: Frame file names, numbered from 1.
FRAME_TEMPLATE = "image_{:05d}.jpg"
#: Matches a frame file name; group 1 is its number.
FRAME_PATTERN = re.compile(r"^image_(\d{5,})\.jpg$")
#: The frame count of a frame folder, written by the extraction and by ``n_frames_*.py``.
N_FRAMES_FILE = "n_frames"
#: The source video's frame rate (frames per second), written beside the frames by the extraction.
FPS_FILE = "fps"
#: Suffixes taken as video files.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")
#: Where an annotation entry lives under its data root, unless a dataset config says otherwise.
DEFAULT_PATH_FORMAT = "{label}/{video_id}"
#: Folder of unlabelled (testing) videos in ``{label}/{video_id}`` layouts.
UNLABELLED_DIR = "test"


def entry_relpath(path_format: str, video_id: str, label: str | None, subset: str) -> str:
    """Relative path of an annotation entry under its data root, e.g. ``"{label}/{video_id}"`` → ``wave/v1``."""
    try:
        return path_format.format(label=UNLABELLED_DIR if label is None else label, video_id=video_id, subset=subset)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"path format {path_format!r} is invalid ({type(exc).__name__}: {exc}); "
                          "use the placeholders {label}, {video_id} and {subset}") from None
