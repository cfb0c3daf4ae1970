"""Annotation JSON in the kenshohara format: read with validation, write atomically.

::

    {"labels": ["a", "b", ...],
     "database": {"<video_id>": {"subset": "training|validation|testing",
                                 "annotations": {"label": "a", "segment": [1, n_frames]}}}}

Testing entries may have no label (Kinetics test set): their ``label`` is ``None``.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidrec.errors import AnnotationError
from vidrec.files import atomic_write_json

SUBSETS = ("training", "validation", "testing")
#: Short names accepted wherever a subset is named in configs.
SUBSET_ALIASES = {"train": "training", "val": "validation", "test": "testing"}


@dataclass(frozen=True)
class VideoEntry:
    """One annotated video."""

    video_id: str
    subset: str
    label: str | None
    label_index: int  # -1 when unlabelled
    n_frames: int | None  # from ``segment[1]``; None when not recorded
    fps: float | None = None  # the source video's frame rate, where preprocessing recorded it (``"fps"``)


@dataclass
class Annotation:
    """A parsed annotation file."""

    path: Path
    labels: list[str]
    entries: list[VideoEntry]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def subset(self, name: str) -> list[VideoEntry]:
        """Entries of one subset (``training``/``validation``/``testing`` or ``train``/``val``/``test``)."""
        full = SUBSET_ALIASES.get(name, name)
        if full not in SUBSETS:
            raise AnnotationError(f"unknown subset {name!r}; use one of {', '.join(SUBSETS)}")
        return [e for e in self.entries if e.subset == full]



def _key_lines(text: str, key: str) -> list[int]:
    """Line numbers (1-based) where ``key`` appears as a JSON object key in ``text``."""
    pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
    return [text.count("\n", 0, m.start()) + 1 for m in pattern.finditer(text)]


def _reject_duplicates(path: Path, text: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                lines = _key_lines(text, key)
                where = f" (lines {', '.join(map(str, lines[:3]))})" if len(lines) > 1 else ""
                raise AnnotationError(f"{path}: duplicate key {key!r}{where} (a video id may appear only once); "
                                      "remove the repeat")
            seen[key] = value
        return seen

    return hook


def load_annotation(path: str | os.PathLike) -> Annotation:
    """Read and validate an annotation JSON file; every problem is an :class:`AnnotationError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(
            f"annotation file {path} does not exist; run the preprocessing command for this dataset "
            "(see docs/datasets.md) or set dataset.annotation_path"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 JSON") from None
    try:
        raw = json.loads(text, object_pairs_hook=_reject_duplicates(path, text))
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(raw, dict) or "labels" not in raw or "database" not in raw:
        raise AnnotationError(f"{path}: expected an object with keys 'labels' and 'database'")
    labels = raw["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise AnnotationError(f"{path}: 'labels' must be a list of strings")
    dup_labels = [k for k, c in Counter(labels).items() if c > 1]
    if dup_labels:
        raise AnnotationError(f"{path}: label(s) listed twice in 'labels': {dup_labels[:3]}")
    if not isinstance(raw["database"], dict):
        raise AnnotationError(f"{path}: 'database' must be an object mapping video ids to entries, "
                              f"got {type(raw['database']).__name__}")
    index = {name: i for i, name in enumerate(labels)}
    entries = [_parse_entry(path, vid, item, index) for vid, item in raw["database"].items()]
    return Annotation(path=path, labels=labels, entries=entries)


def _parse_entry(path: Path, video_id: str, item: Any, index: dict[str, int]) -> VideoEntry:
    where = f"{path}: video {video_id!r}"
    if not isinstance(item, dict):
        raise AnnotationError(f"{where}: expected an object with 'subset' and 'annotations'")
    subset = item.get("subset")
    if subset not in SUBSETS:
        raise AnnotationError(f"{where}: unknown subset {subset!r}; use one of {', '.join(SUBSETS)}")
    ann = item.get("annotations") or {}
    if not isinstance(ann, dict):
        raise AnnotationError(f"{where}: 'annotations' must be an object with 'label' and 'segment'")
    label = ann.get("label")
    if label is None and subset != "testing":
        raise AnnotationError(f"{where}: no label in a {subset} entry")
    if label is not None and label not in index:
        raise AnnotationError(f"{where}: label {label!r} is missing from 'labels' ({len(index)} labels); add it or fix the entry")
    n_frames = None
    segment = ann.get("segment")
    if segment is not None:
        if not (isinstance(segment, list) and len(segment) == 2 and all(isinstance(s, int) for s in segment)):
            raise AnnotationError(f"{where}: 'segment' must be [first, last] frame numbers, got {segment!r}")
        n_frames = segment[1] - segment[0] + 1
        if n_frames <= 0:
            raise AnnotationError(f"{where}: empty segment {segment!r}")
    fps = item.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int | float) or fps <= 0):
        raise AnnotationError(f"{where}: 'fps' must be a positive number, got {fps!r}")
    return VideoEntry(video_id, subset, label, index[label] if label is not None else -1, n_frames,
                      float(fps) if fps is not None else None)


def make_entry(subset: str, label: str | None, n_frames: int | None = None, fps: float | None = None) -> dict[str, Any]:
    """One ``database`` value in the kenshohara layout (plus the source's frame rate ``fps`` when known)."""
    annotations: dict[str, Any] = {}
    if label is not None:
        annotations["label"] = label
    if n_frames is not None:
        annotations["segment"] = [1, int(n_frames)]
    entry = {"subset": subset, "annotations": annotations}
    if fps is not None:
        entry["fps"] = float(fps)
    return entry


def write_annotation(path: str | os.PathLike, labels: list[str], database: dict[str, dict[str, Any]]) -> None:
    """Write an annotation JSON atomically (temporary file, then rename)."""
    atomic_write_json(path, {"labels": list(labels), "database": database})
