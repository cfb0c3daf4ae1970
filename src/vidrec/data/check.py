"""Data check: how many annotation entries have their frames or video on disk, per subset and per class.

    python -m vidrec.data.check --annotation A --root R [--source frames|video] [--video-ext .mp4]
                                [--path-format "{label}/{video_id}"] [--classes] [--json] [--strict]

An entry's path is ``root / path_format`` (placeholders ``{label}`` — ``test`` for unlabelled entries —,
``{video_id}``, ``{subset}``); a frame folder counts as present when it holds ``image_00001.jpg``, a video
when ``<path><video_ext>`` is a file. Frame folders whose ``n_frames`` disagrees with the entry's segment
are counted as ``segment_mismatch``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidrec.data.annotations import SUBSETS, load_annotation
from vidrec.errors import ConfigError, DataError, VidrecError
from vidrec.preprocess.frames import FRAME_TEMPLATE, N_FRAMES_FILE
from vidrec.preprocess.layout import entry_relpath

SOURCES = ("frames", "video")
EXAMPLES = 3


def _recorded_frames(folder: Path) -> int | None:
    try:
        text = (folder / N_FRAMES_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def check_dataset(annotation_path: str | os.PathLike, root: str | os.PathLike, source: str = "frames",
                  path_format: str = "{label}/{video_id}", video_ext: str = ".mp4") -> dict[str, Any]:
    """Count, per subset, the entries of an annotation file whose data is under ``root``.

    Returns ``{"annotation", "root", "source", "path_format", "num_labels", "complete", "subsets": {name:
    {"entries", "present", "missing", "missing_examples", "segment_mismatch", "classes": {label: {"entries",
    "present"}}}}}``; subsets without entries are left out. Bad input raises a :class:`VidrecError`.
    """
    if source not in SOURCES:
        raise ConfigError(f"source {source!r}: use 'frames' (extracted frame folders) or 'video' (video files)")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist; pass the folder holding the frame folders or videos")
    annotation = load_annotation(annotation_path)
    subsets: dict[str, dict[str, Any]] = {}
    for entry in annotation.entries:
        stats = subsets.setdefault(entry.subset, {"entries": 0, "present": 0, "missing": 0, "missing_examples": [],
                                                  "segment_mismatch": 0, "classes": {}})
        rel = entry_relpath(path_format, entry.video_id, entry.label, entry.subset)
        target = root / rel if source == "frames" else root / f"{rel}{video_ext}"
        present = (target / FRAME_TEMPLATE.format(1)).is_file() if source == "frames" else target.is_file()
        stats["entries"] += 1
        cls = stats["classes"].setdefault(entry.label, {"entries": 0, "present": 0})
        cls["entries"] += 1
        if present:
            stats["present"] += 1
            cls["present"] += 1
            if source == "frames" and entry.n_frames is not None:
                recorded = _recorded_frames(target)
                stats["segment_mismatch"] += recorded is not None and recorded != entry.n_frames
        else:
            stats["missing"] += 1
            if len(stats["missing_examples"]) < EXAMPLES:
                stats["missing_examples"].append(str(target.relative_to(root)))
    ordered = {name: subsets[name] for name in SUBSETS if name in subsets}
    return {"annotation": str(annotation.path), "root": str(root), "source": source, "path_format": path_format,
            "num_labels": annotation.num_classes, "subsets": ordered,
            "complete": all(s["missing"] == 0 and s["segment_mismatch"] == 0 for s in ordered.values())}


def format_report(result: dict[str, Any], classes: bool = False) -> str:
    """Human-readable lines of a :func:`check_dataset` result."""
    lines = [f"{result['annotation']}: {result['num_labels']} labels; data {result['root']} "
             f"({result['source']}, {result['path_format']})"]
    for name, stats in result["subsets"].items():
        labelled = {k: v for k, v in stats["classes"].items() if k is not None}
        per_class = [v["present"] for v in labelled.values()]
        line = f"  {name:<10} {stats['entries']} entries, {stats['present']} present, {stats['missing']} missing"
        if stats["missing_examples"]:
            line += f" (e.g. {', '.join(stats['missing_examples'])})"
        if per_class:
            line += f"; {len(labelled)} classes, {min(per_class)}-{max(per_class)} videos present per class"
        empty = [k for k, v in labelled.items() if v["present"] == 0]
        if empty:
            line += f"; {len(empty)} classes with no video present (e.g. {', '.join(empty[:EXAMPLES])})"
        if stats["segment_mismatch"]:
            line += f"; {stats['segment_mismatch']} frame folders disagree with their segment (rebuild the JSON with --jpg-dir)"
        lines.append(line)
        if classes:
            lines += [f"      {label}: {v['present']}/{v['entries']}" for label, v in sorted(labelled.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the data check; exit code 2 on bad input, 1 with ``--strict`` when data is missing."""
    parser = argparse.ArgumentParser(description="Report which annotation entries have their data on disk.")
    parser.add_argument("--annotation", required=True, type=Path, help="annotation JSON (kenshohara format)")
    parser.add_argument("--root", required=True, type=Path, help="folder holding the frame folders or videos")
    parser.add_argument("--source", choices=SOURCES, default="frames")
    parser.add_argument("--video-ext", default=".mp4", help="video file extension with --source video")
    parser.add_argument("--path-format", default="{label}/{video_id}",
                        help="entry path under root; {video_id} for Something-Something")
    parser.add_argument("--classes", action="store_true", help="also list present/entries per class")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--strict", action="store_true", help="exit with code 1 when anything is missing")
    args = parser.parse_args(argv)
    try:
        result = check_dataset(args.annotation, args.root, args.source, args.path_format, args.video_ext)
    except (VidrecError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_report(result, args.classes))
    return 1 if args.strict and not result["complete"] else 0


if __name__ == "__main__":
    sys.exit(main())
