"""Something-Something V1 and V2.

V1 ships JPEG frame folders ``20bn-something-something-v1/<id>/00001.jpg`` and ``;``-separated label files:
``something-something-v1-labels.csv`` (one class per line, in index order), ``-train.csv`` / ``-validation.csv``
(``100218;Something falling like a feather or paper``) and ``-test.csv`` (ids only).
V2 ships ``20bn-something-something-v2/<id>.webm`` and JSON: ``labels.json`` (``{"class": "index"}``),
``train.json`` / ``validation.json`` (lists of ``{"id", "label", "template", "placeholders"}``; the class is
the template with its brackets removed: ``"Putting [something] on a surface"`` → ``"Putting something on a
surface"``) and ``test.json`` (``[{"id"}]``). Frame folders are flat: ``jpg_dir/<id>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidrec.data.annotations import make_entry
from vidrec.errors import AnnotationError
from vidrec.preprocess.labelfiles import find_file, read_json, read_lines

PATH_FORMAT = "{video_id}"
V1_PREFIX = "something-something-v1-"
V1_SUBSETS = {"training": "train.csv", "validation": "validation.csv", "testing": "test.csv"}
V2_SUBSETS = {"training": "train.json", "validation": "validation.json", "testing": "test.json"}
Database = dict[str, dict[str, Any]]


def _v1_subset(path: Path, subset: str, labels: set[str]) -> Database:
    database = {}
    for number, line in read_lines(path):
        video_id, _, label = (part.strip() for part in line.partition(";"))
        if not video_id or (subset != "testing" and label not in labels):
            raise AnnotationError(f"{path}:{number}: expected '<id>;<label from the labels file>', got {line!r}")
        database[video_id] = make_entry(subset, label or None)
    return database


def build_v1(annotation_dir: Path) -> tuple[list[str], Database]:
    """Labels and database of Something-Something V1."""
    labels = [line for _, line in read_lines(annotation_dir / f"{V1_PREFIX}labels.csv")]
    database: Database = {}
    for subset, suffix in V1_SUBSETS.items():
        path = annotation_dir / f"{V1_PREFIX}{suffix}"
        if subset != "testing" or path.is_file():
            database.update(_v1_subset(path, subset, set(labels)))
    return labels, database


def v2_class(template: str) -> str:
    """Class name of a V2 template: the template without its square brackets."""
    return template.replace("[", "").replace("]", "")


def _v2_subset(path: Path, subset: str, labels: set[str]) -> Database:
    items = read_json(path)
    if not isinstance(items, list):
        raise AnnotationError(f"{path}: expected a list of {{\"id\", ...}} objects")
    database = {}
    for item in items:
        if not isinstance(item, dict) or "id" not in item or (subset != "testing" and "template" not in item):
            raise AnnotationError(f"{path}: entry {str(item)[:80]} lacks 'id'" + ("" if subset == "testing" else " or 'template'"))
        label = v2_class(item["template"]) if "template" in item else None
        if label is not None and label not in labels:
            raise AnnotationError(f"{path}: video {item['id']}: template {item['template']!r} gives class {label!r}, "
                                  "which labels.json does not list")
        database[str(item["id"])] = make_entry(subset, label)
    return database


def build_v2(annotation_dir: Path) -> tuple[list[str], Database]:
    """Labels (ordered by their index in labels.json) and database of Something-Something V2."""
    path = find_file(annotation_dir, "labels.json", "something-something-v2-labels.json")
    raw = read_json(path)
    try:
        labels = [name for name, _ in sorted(raw.items(), key=lambda kv: int(kv[1]))]
    except (AttributeError, TypeError, ValueError):
        raise AnnotationError(f"{path}: expected an object {{\"class name\": \"index\"}}") from None
    database: Database = {}
    for subset, name in V2_SUBSETS.items():
        found = find_file(annotation_dir, name, f"something-something-v2-{name}", required=subset != "testing")
        if found is not None:
            database.update(_v2_subset(found, subset, set(labels)))
    return labels, database
