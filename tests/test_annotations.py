"""Bad annotation files through the real VideoDataModule: each error names the file, the entry or key, and the fix."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import data_module, dataset_cfg, make_dataset
from vidrec.errors import AnnotationError, ConfigError, DataError


@pytest.fixture
def mini(tmp_path):
    """A 3-class video dataset (3 training, 3 validation videos) and its parsed annotation JSON."""
    make_dataset(tmp_path, "video")
    return tmp_path, json.loads((tmp_path / "annotation.json").read_text())


def setup_with(root, annotation: dict | str, **cfg):
    """Write ``annotation`` (a dict, or raw text) as the dataset's annotation file and set the datamodule up."""
    text = annotation if isinstance(annotation, str) else json.dumps(annotation, indent=1)
    (root / "annotation.json").write_text(text)
    dm = data_module(dataset_cfg(root, "video", **cfg))
    dm.setup("fit")
    return dm


def test_malformed_json_gives_line_and_column(mini):
    root, ann = mini
    lines = json.dumps(ann, indent=1).splitlines()
    lines[5] = lines[5].rstrip(",")  # drop one comma
    with pytest.raises(AnnotationError, match=r"annotation\.json: malformed JSON at line \d+, column \d+") as err:
        setup_with(root, "\n".join(lines))
    assert "line 7" in str(err.value)  # the parser stops on the line after the missing comma


def test_label_missing_from_labels(mini):
    root, ann = mini
    ann["database"]["left_0"]["annotations"]["label"] = "sideways"
    with pytest.raises(AnnotationError, match=r"annotation\.json: video 'left_0': label 'sideways' is missing from 'labels'"):
        setup_with(root, ann)


def test_unknown_subset_in_an_entry(mini):
    root, ann = mini
    ann["database"]["right_1"]["subset"] = "valdation"
    with pytest.raises(AnnotationError, match=r"video 'right_1': unknown subset 'valdation'; use one of training, validation"):
        setup_with(root, ann)


def test_unknown_subset_in_the_config(mini):
    root, ann = mini
    with pytest.raises(ConfigError, match=r"dataset\.train\.subset=trainval is not a subset of .*annotation\.json; use one of"):
        setup_with(root, ann, train={"subset": "trainval", "crop_size": 32})


def test_empty_subset(mini):
    root, ann = mini
    for entry in ann["database"].values():
        entry["subset"] = "training"
    with pytest.raises(DataError, match=r"annotation\.json: subset 'validation' is empty; check dataset\.val\.subset"):
        setup_with(root, ann)


def test_duplicate_video_ids(mini):
    root, ann = mini
    text = json.dumps(ann, indent=1)
    twice = text.replace('\n  "left_1"', '\n  "left_0": {"subset": "training"},\n  "left_1"')
    lines = [n for n, line in enumerate(twice.splitlines(), start=1) if line.strip().startswith('"left_0"')]
    with pytest.raises(AnnotationError, match=rf"annotation\.json: duplicate key 'left_0' \(lines {lines[0]}, {lines[1]}\)"):
        setup_with(root, twice)


def test_not_utf8_and_wrong_structure(mini):
    root, ann = mini
    (root / "annotation.json").write_bytes(json.dumps(ann).encode("utf-16"))
    with pytest.raises(AnnotationError, match=r"annotation\.json: not UTF-8 text .* save it as UTF-8 JSON"):
        data_module(dataset_cfg(root, "video")).setup("fit")
    ann["database"] = list(ann["database"].items())
    with pytest.raises(AnnotationError, match="'database' must be an object mapping video ids to entries, got list"):
        setup_with(root, ann)


def test_missing_videos_are_counted_with_three_examples(mini, caplog):
    root, ann = mini
    for vid in ("left_1", "right_1"):
        (root / vid.split("_")[0] / f"{vid}.mp4").unlink()
    with caplog.at_level(logging.WARNING):
        dm = setup_with(root, ann)
    warning = next(r.getMessage() for r in caplog.records if "missing on disk" in r.getMessage())
    assert "2 of 3 validation videos are missing on disk" in warning and "left_1.mp4" in warning and "right_1.mp4" in warning
    assert len(dm.datasets["val"]) == 1 and dm.missing["val"] == ["left_1", "right_1"]
    with pytest.raises(DataError, match="2 of 3 validation videos are missing .*data.strict=true"):
        data_module(dataset_cfg(root, "video"), data={"strict": True}).setup("fit")


def test_all_videos_missing_is_fatal_with_three_examples(mini):
    root, ann = mini
    for video in root.glob("*/*.mp4"):
        video.unlink()
    with pytest.raises(DataError, match=r"3 of 3 training videos are missing on disk \(e\.g\. .*left_0\.mp4, .*right_0\.mp4, "
                                         r".*still_0\.mp4\); check dataset\.root="):
        setup_with(root, ann)
