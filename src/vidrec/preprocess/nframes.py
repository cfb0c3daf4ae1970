"""``n_frames`` files: one per frame folder, holding its number of frames (as 3D-ResNets-PyTorch's n_frames_*.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vidrec.data.decoding import frame_folder_fps
from vidrec.data.layout import FRAME_PATTERN, FRAME_TEMPLATE, N_FRAMES_FILE, entry_relpath
from vidrec.files import atomic_write_text
from vidrec.preprocess.layout import require_dir


def frame_numbers(folder: Path) -> list[int]:
    """Sorted numbers of the ``image_XXXXX.jpg`` files in ``folder``."""
    return sorted(int(m.group(1)) for name in os.listdir(folder) if (m := FRAME_PATTERN.match(name)))


def count_frames_on_disk(folder: Path) -> tuple[int, str]:
    """(frames numbered contiguously from 1, a problem description or ``""``)."""
    numbers = frame_numbers(folder)
    count = 0
    while count < len(numbers) and numbers[count] == count + 1:
        count += 1
    if not numbers:
        return 0, "no image_XXXXX.jpg files"
    if count < len(numbers):
        return count, f"frame {FRAME_TEMPLATE.format(count + 1)} is missing but later frames exist"
    return count, ""


def read_n_frames(folder: Path) -> int | None:
    """Frame count of a frame folder: its ``n_frames`` file, else the files on disk; None when absent."""
    if not (folder / FRAME_TEMPLATE.format(1)).is_file():
        return None
    text = (folder / N_FRAMES_FILE).read_text().strip() if (folder / N_FRAMES_FILE).is_file() else ""
    return int(text) if text.isdigit() and int(text) > 0 else count_frames_on_disk(folder)[0] or None


def frame_folders(root: Path) -> Iterator[Path]:
    """Frame folders under ``root``: ``root/<video>/`` or ``root/<class>/<video>/`` (hidden folders skipped)."""
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        if (child / FRAME_TEMPLATE.format(1)).is_file():
            yield child
            continue
        for video in sorted(child.iterdir()):
            if not video.name.startswith(".") and video.is_dir():
                yield video


def write_n_frames(root: Path) -> tuple[int, list[str]]:
    """Write ``n_frames`` in every frame folder under ``root``; return (folders, problems)."""
    folders, problems = 0, []
    for folder in frame_folders(require_dir(root, "the frame folders (jpg_dir)")):
        count, problem = count_frames_on_disk(folder)
        if problem:
            problems.append(f"{folder}: {problem}; re-run frame extraction for this video")
        atomic_write_text(folder / N_FRAMES_FILE, str(count))
        folders += 1
    return folders, problems


def fill_segments(database: dict[str, dict[str, Any]], jpg_dir: Path, path_format: str, drop: bool = False) -> list[str]:
    """Set ``segment = [1, n_frames]`` (and ``fps``, where the extraction recorded it) of each entry from its frame
    folder; return the ids with no folder.

    Entries without a folder keep no segment, or are removed from ``database`` when ``drop``.
    """
    require_dir(jpg_dir, "the frame folders (jpg_dir)")
    missing = []
    for video_id, item in list(database.items()):
        rel = entry_relpath(path_format, video_id, item["annotations"].get("label"), item["subset"])
        n_frames = read_n_frames(jpg_dir / rel)
        if n_frames is None:
            missing.append(video_id)
            if drop:
                del database[video_id]
        else:
            item["annotations"]["segment"] = [1, n_frames]
            fps = frame_folder_fps(jpg_dir / rel)
            if fps:
                item["fps"] = fps
    return missing

