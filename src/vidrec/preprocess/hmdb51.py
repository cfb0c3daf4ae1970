"""HMDB51: ``hmdb51_org/<class>/<video>.avi`` and ``testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt``.

Split file lines are ``<video>.avi <flag>`` with flag 1 = training, 2 = testing (the ``validation`` subset, as
in 3D-ResNets-PyTorch) and 0 = unused (left out). The class is the file name before ``_test_splitN.txt``; labels are
sorted alphabetically, as in 3D-ResNets-PyTorch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vidrec.data.annotations import make_entry
from vidrec.errors import AnnotationError
from vidrec.preprocess.labelfiles import read_lines

SPLITS = (1, 2, 3)
PATH_FORMAT = "{label}/{video_id}"
_SPLIT_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<split>[123])\.txt$")
_SUBSETS = {"1": "training", "2": "validation"}


def split_files(annotation_dir: Path, split: int) -> dict[str, Path]:
    """``{class: split file}`` of one split."""
    if not annotation_dir.is_dir():
        raise AnnotationError(f"{annotation_dir}: no such directory; pass the unpacked testTrainMulti_7030_splits folder")
    files = {m.group("label"): annotation_dir / m.string for name in sorted(p.name for p in annotation_dir.iterdir())
             if (m := _SPLIT_FILE.match(name)) and m.group("split") == str(split)}
    if not files:
        raise AnnotationError(f"{annotation_dir}: no <class>_test_split{split}.txt files; pass the unpacked "
                              "testTrainMulti_7030_splits folder")
    return files


def build_split(annotation_dir: Path, split: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Labels and database of HMDB51 split ``split`` (1, 2 or 3)."""
    files = split_files(annotation_dir, split)
    database = {}
    for label, path in sorted(files.items()):
        for number, line in read_lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{path}:{number}: expected '<video>.avi 0|1|2', got {line!r}")
            if parts[1] in _SUBSETS:
                database[Path(parts[0]).stem] = make_entry(_SUBSETS[parts[1]], label)
    return sorted(files), database
