"""Every dataset config end to end, from frames and from videos.

For each dataset a miniature official download (tests/official_layouts.py) is laid out under one data folder as
docs/datasets.md says, one of its training videos is broken, and the README's own command blocks run as
subprocesses: the frames walkthrough (extraction, n_frames, JSON, data check) and the videos walkthrough
(JSON without frame folders, data check). Then the real ``dataset=<name>`` config, composed from
configs/train.yaml with ``paths.data_dir=<tmp>`` and tiny overrides, runs one training step and a test pass
(``vidrec.run.train``, what train.py runs; one case through train.py itself), for each source. Real HMDB51
clips check the header-count path of ``dataset.source=video``.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

import official_layouts as layouts
from conftest import REPO, read_json, run_entry
from vidrec.data.annotations import load_annotation
from vidrec.data.check import check_config, compose_train_config

README = REPO / "docs" / "datasets.md"
DATASETS = ("kinetics", "ucf101", "hmdb51", "something_v1", "something_v2")
SECTIONS = {"kinetics": "## Kinetics", "ucf101": "## UCF101", "hmdb51": "## HMDB51",
            "something_v1": "## Something-Something V1", "something_v2": "## Something-Something V2"}
MAKERS = {"kinetics": layouts.make_kinetics, "ucf101": layouts.make_ucf101, "hmdb51": layouts.make_hmdb51,
          "something_v1": layouts.make_something_v1, "something_v2": layouts.make_something_v2}
#: (file of the download to break, video id): a training video in split 1 and 2.
BROKEN = {"kinetics": ("videos/abseiling/b2Cd4Ef6Gh8_000005_000015.mp4", "b2Cd4Ef6Gh8_000005_000015"),
          "ucf101": ("UCF-101/Archery/v_Archery_g15_c01.avi", "v_Archery_g15_c01"),
          "hmdb51": ("hmdb51_org/cartwheel/Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi",
                     "Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0"),
          "something_v1": ("20bn-something-something-v1/100219", "100219"),
          "something_v2": ("20bn-something-something-v2/42326.webm", "42326")}
GARBAGE = b"this is not a video nor a JPEG " * 40
#: One training step, one validation batch and a short multi-view test, at 32 px.
TINY_RUN = ["model=tiny", "dataset.num_workers=0", "dataset.batch_size=8", "dataset.clip.frames=4",
            "dataset.clip.sample_rate=2", "dataset.train.crop_size=32", "dataset.train.scale=[36,40]",
            "dataset.test.scale=36", "dataset.test.crop_size=32", "dataset.test.num_clips=2", "trainer.max_epochs=1",
            "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "data.max_skip_ratio=0.5"]


def readme_blocks(dataset: str) -> list[list[list[str]]]:
    """The ```bash blocks of a dataset's README section, as argv lists (continuation lines joined)."""
    text = README.read_text()
    start = text.index("\n" + SECTIONS[dataset])
    section = text[start: text.find("\n## ", start + 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]
            for block in blocks]


class Prepared:
    """A data folder after one README walkthrough."""

    def __init__(self, dataset: str, data_dir: Path, layout: dict[str, Any]):
        self.dataset, self.data_dir, self.layout = dataset, data_dir, layout
        self.broken_id = BROKEN[dataset][1]
        self.train_overrides: list[list[str]] = []
        self.check_output: list[str] = []

    @property
    def class_override(self) -> str:
        return f"dataset.num_classes={len(self.layout['labels'])}"

    def run_block(self, block: list[list[str]]) -> None:
        """Run the preprocessing and check commands of a README block; keep its train.py overrides."""
        for argv in block:
            assert argv[0] == "python", argv
            args = [f"{self.data_dir}/{a[5:]}" if a.startswith("data/") else a for a in argv[1:]]
            if args[0] == "train.py":
                self.train_overrides.append(args[1:])
                continue
            if args[:2] == ["-m", "vidrec.data.check"]:
                args += [f"paths.data_dir={self.data_dir}", self.class_override]
            else:
                assert args[0].startswith("preprocess/"), argv
                args[0] = str(REPO / args[0])
            proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            if "vidrec.data.check" in args:
                self.check_output.append(proc.stdout)


def _prepare(root: Path, dataset: str, source: str) -> Prepared:
    data_dir = root / "data"
    layout = MAKERS[dataset](data_dir)
    prepared = Prepared(dataset, data_dir, layout)
    broken = layout["root"] / BROKEN[dataset][0]
    for file in sorted(broken.iterdir()) if broken.is_dir() else [broken]:
        file.write_bytes(GARBAGE)  # a folder (Something-Something V1): every shipped JPEG
    blocks = readme_blocks(dataset)
    assert len(blocks) == (1 if dataset == "something_v1" else 2), f"README section of {dataset}"
    prepared.run_block(blocks[0] if source == "frames" else blocks[1])
    return prepared


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """``prepared(dataset, source)``: a data folder after the README's frames (or videos) walkthrough, built once."""
    cache: dict[tuple[str, str], Prepared] = {}

    def get(dataset: str, source: str) -> Prepared:
        if (dataset, source) not in cache:
            if dataset == "something_v1" and source == "video":  # V1 ships frames only: encode our own videos
                base = get(dataset, "frames")
                cache[(dataset, source)] = _something_v1_videos(base)
            else:
                cache[(dataset, source)] = _prepare(tmp_path_factory.mktemp(f"{dataset}-{source}"), dataset, source)
        return cache[(dataset, source)]

    return get


def _something_v1_videos(base: Prepared) -> Prepared:
    videos = base.data_dir / "something_v1" / "videos"
    for video_id, info in base.layout["expected"].items():
        layouts.write_video(videos / f"{video_id}.mp4", info["n_frames"], 120, 100)
    (videos / f"{base.broken_id}.mp4").write_bytes(GARBAGE)
    return base


def _config(prepared: Prepared, source: str, out: Path, extra: tuple[str, ...] = ()) -> Any:
    readme = [o for o in prepared.train_overrides[0] if o.startswith("dataset")] if prepared.train_overrides else []
    overrides = [*(readme or [f"dataset={prepared.dataset}"]), f"dataset.source={source}",
                 f"paths.data_dir={prepared.data_dir}", prepared.class_override, *TINY_RUN, *extra]
    return compose_train_config(overrides, output_dir=out)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _check_run(out: Path, prepared: Prepared, source: str, expected_test_videos: int, log: str) -> None:
    """metrics.json, results.json; the broken training video logged with its path and in skipped_videos.csv."""
    metrics = read_json(out / "metrics.json")
    assert 0.0 <= metrics["test/top1"] <= 1.0 and 0.0 <= metrics["val/top1"] <= 1.0
    assert read_json(out / "results.json")["num_videos"] == expected_test_videos
    rows = {(r["stage"], r["video_id"]): r["reason"] for r in _rows(out / "skipped_videos.csv")}
    reason = rows[("train", prepared.broken_id)]
    missing = source == "frames" and prepared.dataset != "something_v1"  # extraction failed: no frame folder
    if missing:
        assert reason == "missing on disk"
    else:  # on disk but undecodable: the reason names the file
        assert prepared.broken_id in reason and str(prepared.data_dir) in reason, reason
    logged = [line for line in log.splitlines() if str(prepared.data_dir) in line and prepared.broken_id in line]
    assert any(("missing on disk" if missing else "unreadable video") in line for line in logged), log[-3000:]


@pytest.mark.parametrize("source", ["frames", "video"])
@pytest.mark.parametrize("dataset", DATASETS)
def test_one_training_step_and_test_pass(prepared, dataset, source, tmp_path, caplog):
    from vidrec.run import train

    data = prepared(dataset, source)
    extra = ("dataset.train.flip=true",) if dataset == "something_v2" else ()  # flips with the label map
    cfg = _config(data, source, tmp_path, extra)
    report = check_config(cfg)
    assert report["problems"] == [] and report["source"] == source
    train_stats = report["subsets"]["training"]
    if source == "frames" and dataset != "something_v1":
        assert BROKEN[dataset][1] in " ".join(train_stats["missing_examples"])
    test_videos = report["subsets"][report["stages"]["test"]]["present"]
    assert test_videos > 0
    if source == "video" and dataset != "something_v1":  # no extraction: frame counts come from the videos
        assert all(e.n_frames is None for e in load_annotation(report["annotation"]).entries)
    train(cfg)
    _check_run(tmp_path, data, source, test_videos, "\n".join(r.getMessage() for r in caplog.records))


def test_readme_check_commands_report_the_broken_video(prepared):
    for dataset in ("kinetics", "ucf101", "hmdb51", "something_v2"):
        frames = prepared(dataset, "frames")
        assert len(frames.check_output) == 1 and "problem:" not in frames.check_output[0]
        line = next(x for x in frames.check_output[0].splitlines() if x.strip().startswith("training (train)"))
        assert " 1 missing (e.g. " in line and frames.broken_id in line, line


def test_train_py_and_check_command_on_ucf101_split_2(prepared, tmp_path):
    """The real entry points: the data check and train.py with dataset=ucf101 dataset.split=2."""
    data = prepared("ucf101", "frames")
    overrides = ["dataset=ucf101", "dataset.split=2", f"paths.data_dir={data.data_dir}", data.class_override]
    proc = subprocess.run([sys.executable, "-m", "vidrec.data.check", *overrides, "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["annotation"].endswith("ucf101/ucf101_02.json") and report["problems"] == []
    val = report["subsets"]["validation"]  # split 2 tests on group g08: one video per class
    assert (val["entries"], val["present"], report["stages"]["test"]) == (3, 3, "validation")
    assert report["subsets"]["training"]["missing_examples"] == [f"Archery/{data.broken_id}"]
    run = tmp_path / "run"
    run_entry("train.py", *overrides, *TINY_RUN, f"hydra.run.dir={run}")
    _check_run(run, data, "frames", 3, (run / "train.log").read_text())
    assert "split: 2" in (run / ".hydra" / "config.yaml").read_text()


def test_something_flip_label_map_names_real_classes(prepared, tmp_path):
    """The configs' map names the six real direction classes; the data module turns it into index pairs."""
    from vidrec.run import build_datamodule

    for dataset in ("something_v1", "something_v2"):
        data = prepared(dataset, "frames")
        resolved = OmegaConf.to_container(_config(data, "frames", tmp_path), resolve=True)
        assert resolved["dataset"]["train"]["flip"] is False  # off by default
        dm = build_datamodule(resolved)
        dm.setup("fit")
        index = {name: i for i, name in enumerate(dm.labels)}
        pairs = dm.datasets["train"].flip_label_map
        for a, b in [("Pushing something from left to right", "Pushing something from right to left"),
                     ("Pulling something from left to right", "Pulling something from right to left"),
                     ("Turning the camera left while filming something",
                      "Turning the camera right while filming something")]:
            assert pairs[index[a]] == index[b] and pairs[index[b]] == index[a]
        assert len(pairs) == 6


def test_real_hmdb51_clips_train_from_videos_with_header_counts(shared_clips, tmp_path):
    """HMDB51 AVIs claim one frame more than they hold: with no n_frames in the annotation the dataset takes
    the header's count, and the last index (one past the real end) still reads, in training and in testing."""
    from vidrec.data.decoding import read_frames
    from vidrec.run import build_datamodule, train

    manifest = {k: v for k, v in read_json(shared_clips / "MANIFEST.json").items()
                if not k.startswith("_") and v["dataset"] == "hmdb51"}
    data_dir = tmp_path / "data"
    videos, splits = data_dir / "hmdb51" / "hmdb51_org", data_dir / "hmdb51" / "testTrainMulti_7030_splits"
    lines: dict[str, list[str]] = {}
    for name, info in sorted(manifest.items()):
        (videos / info["label"]).mkdir(parents=True, exist_ok=True)
        (videos / info["label"] / name).symlink_to(shared_clips / name)
        flag = "2" if info["label"] == "wave" and "wave" in lines and len(lines["wave"]) == 2 else "1"
        lines.setdefault(info["label"], []).append(f"{name} {flag} ")
    splits.mkdir(parents=True)
    for label, rows in lines.items():
        for split in (1, 2, 3):
            (splits / f"{label}_test_split{split}.txt").write_text("\n".join(rows) + "\n")
    data = Prepared("hmdb51", data_dir, {"labels": sorted(lines)})
    data.run_block(readme_blocks("hmdb51")[1])  # the videos walkthrough: no frame folders, no n_frames
    cfg = _config(data, "video", tmp_path / "run")
    dm = build_datamodule(OmegaConf.to_container(cfg, resolve=True))
    dm.setup("fit")
    dm.setup("test")
    for mode in ("train", "test"):
        ds = dm.datasets[mode]
        for i, entry in enumerate(ds.entries):
            info = manifest[f"{entry.video_id}.avi"]
            assert entry.n_frames is None and ds.num_frames(i) == info["header_frames"] == info["decoded_frames_pyav"] + 1
            last = info["header_frames"] - 1  # does not decode: reads loop back to the first frame
            for backend in ("auto", "pyav"):
                assert read_frames(ds.path(i), [last], backend).shape == (1, info["height"], info["width"], 3)
            assert bool((read_frames(ds.path(i), [last], "pyav") == read_frames(ds.path(i), [0], "pyav")).all())
    test_clips = dm.datasets["test"].indices(0, None)
    assert int(test_clips.max()) == manifest[f"{dm.datasets['test'].entries[0].video_id}.avi"]["header_frames"] - 1
    train(cfg)
    assert read_json(tmp_path / "run" / "results.json")["num_videos"] == 1
    assert not (tmp_path / "run" / "skipped_videos.csv").exists()
