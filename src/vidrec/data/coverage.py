"""Coverage of an official split: how much of the split's list (Kinetics' crawler CSVs) a local copy holds.

    python -m vidrec.data.check <train.py overrides> --official-csv kinetics_400_val.csv [--official-csv ...] [--out DIR]

For each CSV (columns ``label, youtube_id, time_start, time_end[, split]``; the split comes from its ``split``
column, else from the file name) the check counts the videos listed and those present under the dataset root
(the path the annotation JSON implies, ``<youtube_id>_<start:06d>_<end:06d>``), per class, names the classes
below 90 %, and writes ``DIR/coverage.json``. ``data.coverage=DIR/coverage.json`` makes ``results.json`` carry
the coverage of the split it scored; without it ``results.json`` gives the coverage of the annotation's subset.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidrec.data.annotations import VideoEntry
from vidrec.data.spec import DataSpec, Location
from vidrec.errors import AnnotationError, ConfigError

CLASS_THRESHOLD = 0.9
SPLITS = {"train": "training", "training": "training", "val": "validation", "validate": "validation",
          "validation": "validation", "test": "testing", "testing": "testing"}


def _split_of(path: Path, row: Mapping[str, str]) -> str:
    name = (row.get("split") or "").strip().lower()
    if name in SPLITS:
        return SPLITS[name]
    for key in ("train", "val", "test"):
        if key in path.stem.lower():
            return SPLITS[key]
    raise AnnotationError(f"{path}: no split column and the file name says no train/val/test; rename the file")


def official_coverage(csv_paths: Sequence[str | os.PathLike], location: Location) -> dict[str, Any]:
    """``{split: {"listed", "present", "fraction", "classes": {label: [present, listed]}, "classes_below_90"}}``:
    the videos each official CSV lists and those present at ``location``."""
    splits: dict[str, dict[str, Any]] = {}
    for path in map(Path, csv_paths):
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except OSError as exc:
            raise ConfigError(f"--official-csv {path}: cannot read it ({exc.strerror})") from None
        for number, row in enumerate(rows, start=2):
            try:
                vid = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
            except (KeyError, TypeError, ValueError):
                raise AnnotationError(f"{path}: row {number}: needs youtube_id, time_start and time_end") from None
            subset, label = _split_of(path, row), row.get("label") or None
            stats = splits.setdefault(subset, {"listed": 0, "present": 0, "classes": {}})
            counts = stats["classes"].setdefault(label or "(unlabelled)", [0, 0])
            here = location.is_present(VideoEntry(vid, subset, label, -1, None))
            stats["listed"] += 1
            stats["present"] += here
            counts[0] += here
            counts[1] += 1
    for stats in splits.values():
        stats["fraction"] = stats["present"] / stats["listed"] if stats["listed"] else 0.0
        stats["classes_below_90"] = sorted(k for k, (p, n) in stats["classes"].items() if p < CLASS_THRESHOLD * n)
    return splits


def format_coverage(splits: Mapping[str, Any]) -> str:
    """One line per split, the classes below 90 % after it."""
    lines = []
    for name, s in splits.items():
        below = s["classes_below_90"]
        lines.append(f"official {name}: {s['present']} of {s['listed']} videos present ({s['fraction']:.1%}); "
                     f"{len(below)} of {len(s['classes'])} classes below {CLASS_THRESHOLD:.0%}"
                     + (f" (e.g. {', '.join(below[:5])})" if below else ""))
    return "\n".join(lines)


def for_results(spec: DataSpec, dm: Any) -> dict[str, Any]:
    """The ``coverage`` entry of ``results.json`` for the subset the test scored."""
    subset = spec.subset("test")
    path = spec.data.coverage
    if path:
        try:
            splits = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"data.coverage={path}: not a readable coverage.json ({exc})") from None
        if subset in splits:
            s = splits[subset]
            return {"reference": str(path), "split": subset, "listed": s["listed"], "present": s["present"],
                    "fraction": s["fraction"], "classes_below_90": len(s["classes_below_90"])}
    present = len(dm.test_ids())
    missing, excluded = len(dm.missing.get("test", [])), len(getattr(dm, "excluded", {}).get("test", []))
    listed = present + missing + excluded
    return {"reference": "annotation", "split": subset, "listed": listed, "present": present + excluded,
            "fraction": (present + excluded) / listed if listed else 0.0}
