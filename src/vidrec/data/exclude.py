"""``data.exclude=<bad_videos.csv>``: leave the videos a decode scan found bad out of a run, counted as excluded.

The file is the scan's ``bad_videos.csv`` (columns ``video_id, path, reason``; see :mod:`vidrec.data.scan`), or
any CSV with a ``video_id`` column.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import TypeVar

from vidrec.errors import ConfigError

E = TypeVar("E")


def read_excluded(path: str | os.PathLike) -> set[str]:
    """Video ids listed in ``path``; a missing file or one without a ``video_id`` column is a :class:`ConfigError`."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if "video_id" not in (reader.fieldnames or []):
                raise ConfigError(f"data.exclude={path}: the file has no video_id column; pass the bad_videos.csv "
                                  "that `python -m vidrec.data.check ... --decode` writes")
            return {row["video_id"] for row in reader if row.get("video_id")}
    except OSError as exc:
        raise ConfigError(f"data.exclude={path}: cannot read it ({exc.strerror}); give the path of a "
                          "bad_videos.csv or set data.exclude=null") from None


def split_excluded(entries: Sequence[E], exclude: str | os.PathLike | None) -> tuple[list[E], list[str]]:
    """``(kept entries, ids of the excluded ones)``; ``exclude=None`` keeps everything."""
    if not exclude:
        return list(entries), []
    ids = read_excluded(exclude)
    kept = [e for e in entries if e.video_id not in ids]  # type: ignore[attr-defined]
    return kept, [e.video_id for e in entries if e.video_id in ids]  # type: ignore[attr-defined]
