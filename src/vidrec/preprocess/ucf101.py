"""UCF101: ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and the ``ucfTrainTestlist`` split files.

``classInd.txt`` lines ``1 ApplyEyeMakeup``; ``trainlist0N.txt`` lines ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``;
``testlist0N.txt`` the same without the class number. The label is the folder part of the path (3D-ResNets-PyTorch's
rule; it keeps the ``HandstandPushups/v_HandStandPushups_...`` spelling as shipped), the video id the file
stem. Test lists become the ``validation`` subset, as in 3D-ResNets-PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidrec.data.annotations import make_entry
from vidrec.errors import AnnotationError
from vidrec.preprocess.labelfiles import read_lines

SPLITS = (1, 2, 3)
PATH_FORMAT = "{label}/{video_id}"


def read_class_ind(path: Path) -> list[str]:
    """Class names of ``classInd.txt`` in index order (lines ``<1-based index> <name>``)."""
    labels = []
    for number, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or parts[0] != str(len(labels) + 1):
            raise AnnotationError(f"{path}:{number}: expected '{len(labels) + 1} <ClassName>', got {line!r}")
        labels.append(parts[1])
    return labels


def read_split_list(path: Path, subset: str, labels: list[str]) -> dict[str, dict[str, Any]]:
    """Database entries of a ``trainlist0N.txt``/``testlist0N.txt`` file."""
    database = {}
    for number, line in read_lines(path):
        parts = line.split()
        if len(parts) not in (1, 2) or parts[0].count("/") != 1:
            raise AnnotationError(f"{path}:{number}: expected '<Class>/<video>.avi [index]', got {line!r}")
        label, name = parts[0].split("/")
        if label not in labels:
            raise AnnotationError(f"{path}:{number}: class {label!r} is not in classInd.txt")
        if len(parts) == 2 and parts[1] != str(labels.index(label) + 1):
            raise AnnotationError(f"{path}:{number}: class index {parts[1]} does not match {label!r} in classInd.txt")
        database[Path(name).stem] = make_entry(subset, label)
    return database


def build_split(annotation_dir: Path, split: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Labels and database of UCF101 split ``split`` (1, 2 or 3)."""
    labels = read_class_ind(annotation_dir / "classInd.txt")
    database = read_split_list(annotation_dir / f"trainlist0{split}.txt", "training", labels)
    database.update(read_split_list(annotation_dir / f"testlist0{split}.txt", "validation", labels))
    return labels, database
