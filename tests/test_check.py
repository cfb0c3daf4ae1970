"""Data check: presence of frames/videos per subset and class, on annotation files written for the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidrec.data.annotations import make_entry, write_annotation
from vidrec.data.check import check_dataset, format_report, main
from vidrec.errors import AnnotationError, ConfigError, DataError

LABELS = ["a", "b", "c"]


def _frames(root: Path, rel: str, n_frames: int | None = None) -> None:
    folder = root / rel
    folder.mkdir(parents=True)
    (folder / "image_00001.jpg").write_bytes(b"\xff\xd8")
    if n_frames is not None:
        (folder / "n_frames").write_text(str(n_frames))


@pytest.fixture
def dataset(tmp_path):
    """6 training (a:3, b:2, c:1), 2 validation, 2 unlabelled testing entries; some data missing."""
    database = {f"t{i}": make_entry("training", label, 10) for i, label in enumerate("aaabbc")}
    database |= {"v0": make_entry("validation", "a", 8), "v1": make_entry("validation", "c", 8)}
    database |= {"x0": make_entry("testing", None), "x1": make_entry("testing", None)}
    annotation = tmp_path / "ann.json"
    write_annotation(annotation, LABELS, database)
    root = tmp_path / "jpg"
    for vid, label in [("t0", "a"), ("t1", "a"), ("t3", "b"), ("t4", "b")]:
        _frames(root, f"{label}/{vid}", 10)
    _frames(root, "a/t2")  # no n_frames: present, nothing to compare
    _frames(root, "a/v0", 9)  # disagrees with its segment [1, 8]
    _frames(root, "test/x0")
    return annotation, root


def test_counts_per_subset_and_class(dataset):
    annotation, root = dataset
    result = check_dataset(annotation, root)
    train, val, test = (result["subsets"][s] for s in ("training", "validation", "testing"))
    assert (train["entries"], train["present"], train["missing"]) == (6, 5, 1)
    assert train["missing_examples"] == ["c/t5"]
    assert train["classes"] == {"a": {"entries": 3, "present": 3}, "b": {"entries": 2, "present": 2},
                                "c": {"entries": 1, "present": 0}}
    assert (val["present"], val["missing"], val["segment_mismatch"]) == (1, 1, 1)
    assert (test["present"], test["missing_examples"]) == (1, ["test/x1"])
    assert result["num_labels"] == 3 and result["complete"] is False
    report = format_report(result, classes=True)
    assert "1 classes with no video present (e.g. c)" in report and "      b: 2/2" in report


def test_missing_examples_are_capped_at_three(tmp_path):
    annotation = tmp_path / "ann.json"
    write_annotation(annotation, LABELS, {f"v{i}": make_entry("training", "a") for i in range(7)})
    (tmp_path / "root").mkdir()
    stats = check_dataset(annotation, tmp_path / "root")["subsets"]["training"]
    assert stats["missing"] == 7 and stats["missing_examples"] == ["a/v0", "a/v1", "a/v2"]


def test_video_source_and_flat_layout(tmp_path):
    annotation = tmp_path / "ann.json"
    write_annotation(annotation, LABELS, {"10": make_entry("training", "a"), "11": make_entry("validation", "b")})
    root = tmp_path / "videos"
    root.mkdir()
    (root / "10.webm").write_bytes(b"x")
    (root / "11.mp4").write_bytes(b"x")
    result = check_dataset(annotation, root, source="video", path_format="{video_id}", video_ext=".webm")
    assert result["subsets"]["training"]["present"] == 1
    assert result["subsets"]["validation"]["missing_examples"] == ["11.webm"]


@pytest.mark.parametrize(("kwargs", "error", "needle"), [
    ({"source": "hdf5"}, ConfigError, "'frames'"),
    ({"path_format": "{class}/{video_id}"}, ConfigError, "{label}"),
    ({"root": "nowhere"}, DataError, "data root does not exist"),
    ({"annotation_path": "missing.json"}, AnnotationError, "does not exist"),
])
def test_bad_input_raises_vidrec_errors(dataset, tmp_path, kwargs, error, needle):
    annotation, root = dataset
    args = {"annotation_path": annotation, "root": root, **kwargs}
    for key in ("root", "annotation_path"):
        if isinstance(args[key], str):
            args[key] = tmp_path / args[key]
    with pytest.raises(error) as info:
        check_dataset(**args)
    assert needle in str(info.value)


def test_command_line(dataset, capsys):
    annotation, root = dataset
    proc = subprocess.run([sys.executable, "-m", "vidrec.data.check", "--annotation", str(annotation), "--root",
                           str(root), "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["subsets"]["training"]["present"] == 5
    assert main(["--annotation", str(annotation), "--root", str(root), "--strict"]) == 1
    assert "training   6 entries, 5 present, 1 missing (e.g. c/t5)" in capsys.readouterr().out
    annotation.write_text("{not json")
    assert main(["--annotation", str(annotation), "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(annotation) in err and "malformed JSON" in err


# ------------------------------------------------------------------ the training config (Hydra overrides)
def _ucf_split_2(data_dir: Path) -> list[str]:
    """configs/dataset/ucf101.yaml's files for split 2: 3 labels, 4 training and 2 validation entries."""
    database = {f"t{i}": make_entry("training", label, 10) for i, label in enumerate("abca")}
    database |= {"v0": make_entry("validation", "a", 10), "v1": make_entry("validation", "b", 10)}
    write_annotation(data_dir / "ucf101" / "ucf101_02.json", LABELS, database)
    for vid, label in [("t0", "a"), ("t1", "b"), ("t2", "c"), ("v0", "a"), ("v1", "b")]:
        _frames(data_dir / "ucf101" / "jpg", f"{label}/{vid}", 10)
    return ["dataset=ucf101", "dataset.split=2", f"paths.data_dir={data_dir}"]


def test_config_mode_checks_what_training_reads(tmp_path, capsys):
    overrides = _ucf_split_2(tmp_path)
    assert main([*overrides, "dataset.num_classes=3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"dataset ucf101 (3 classes): {tmp_path}/ucf101/ucf101_02.json: 3 labels; data {tmp_path}/ucf101/jpg")
    assert "training (train) 4 entries, 3 present, 1 missing (e.g. a/t3); 3 classes, 1-1 videos present per class" in out
    assert "validation (val, test) 2 entries, 2 present, 0 missing" in out and "problem" not in out
    assert main([*overrides, "dataset.num_classes=3", "--strict"]) == 1  # something is missing
    capsys.readouterr()
    assert main([*overrides, "dataset.source=video"]) == 2
    assert f"dataset.root={tmp_path}/ucf101/UCF-101 (dataset.source=video) does not exist" in capsys.readouterr().err
    (tmp_path / "ucf101" / "UCF-101").mkdir()
    assert main([*overrides, "dataset.num_classes=3", "dataset.source=video", "--json"]) == 1  # no .avi at all
    report = json.loads(capsys.readouterr().out)
    assert report["subsets"]["training"]["missing_examples"] == ["a/t0.avi", "b/t1.avi", "c/t2.avi"]
    assert report["problems"][0].startswith("dataset.train.subset=training: none of its 4 videos is on disk")


def test_config_mode_reports_what_would_stop_training(tmp_path, capsys):
    overrides = _ucf_split_2(tmp_path)
    assert main([*overrides, "dataset.test.subset=testing", "+dataset.train.flip_label_map={a: z}"]) == 1
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  problem: ")]
    assert problems == [
        f"  problem: dataset.num_classes=101 but {tmp_path}/ucf101/ucf101_02.json lists 3 labels; set "
        "dataset.num_classes=3 or use the matching annotation file",
        f"  problem: dataset.train.flip_label_map names labels that {tmp_path}/ucf101/ucf101_02.json lacks: ['z']",
        f"  problem: dataset.test.subset=testing: it has no entries, nothing is on disk under {tmp_path}/ucf101/jpg"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["dataset=nope"], "Could not find 'dataset/nope'"),
    (["dataset=ucf101", "dataset.nope=1"], "Could not override 'dataset.nope'"),
    (["dataset=ucf101", "--annotation", "a.json", "--root", "r"], "take no config overrides"),
    (["dataset=ucf101", "paths.data_dir=/nonexistent"], "ucf101_01.json does not exist"),
])
def test_config_mode_bad_input_is_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and needle in err


def test_config_mode_on_the_synthetic_default(tmp_path, capsys):
    tiny = ["dataset.synthetic.per_class_train=1", "dataset.synthetic.per_class_val=1",
            "dataset.synthetic.per_class_test=1", "dataset.synthetic.frames=4"]
    assert main([f"paths.data_dir={tmp_path}", *tiny]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dataset synthetic (8 classes): ") and "testing (test) 8 entries, 8 present" in out


def test_label_folders_spelt_with_underscores_are_named_as_the_cause(tmp_path, capsys):
    """Kinetics labels keep the CSV's spaces; a copy whose class folders use underscores shows every video of
    those classes missing, and the report says why and how to fix it."""
    annotation = tmp_path / "ann.json"
    write_annotation(annotation, ["air drumming", "yoga"], {"v0": make_entry("training", "air drumming"),
                                                            "v1": make_entry("training", "yoga")})
    root = tmp_path / "jpg"
    _frames(root, "air_drumming/v0")
    _frames(root, "yoga/v1")
    result = check_dataset(annotation, root)
    assert result["subsets"]["training"]["missing"] == 1
    [problem] = result["problems"]
    assert "'air drumming'" in problem and "'air_drumming'" in problem and "rename the folders" in problem
    assert "problem: 1 labels have spaces" in format_report(result)
