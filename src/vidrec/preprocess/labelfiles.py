"""Reading official label files: text lines (any line ending), CSV tables and JSON, with one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from vidrec.errors import AnnotationError


def find_file(folder: Path, *names: str, required: bool = True) -> Path | None:
    """The first of ``names`` that exists in ``folder``; if none: None, or an error naming them when ``required``."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    if not required:
        return None
    raise AnnotationError(f"{folder}: none of {', '.join(names)} found; pass the folder holding the official label files")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-empty lines of a text file (LF or CRLF, optional BOM)."""
    if not path.is_file():
        raise AnnotationError(f"{path}: file not found; pass the folder holding the official label files")
    text = path.read_text(encoding="utf-8-sig")
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_csv_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV file with a header line that has at least the ``required`` columns."""
    if not path.is_file():
        raise AnnotationError(f"{path}: file not found; check the CSV path")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        lacking = [c for c in required if c not in columns]
        if lacking:
            raise AnnotationError(f"{path}: missing column(s) {', '.join(lacking)} in the header {columns}; "
                                  f"expected a header with {', '.join(required)}")
        return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``; malformed JSON is an :class:`AnnotationError` naming the file and line."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found; pass the folder holding the official label files") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
