"""Preprocessing end to end on miniature official downloads: the real commands run as subprocesses."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import official_layouts as layouts
from vidrec.data.annotations import load_annotation
from vidrec.data.decoding import read_frames
from vidrec.data.layout import FRAME_TEMPLATE
from vidrec.errors import DecodeError
from vidrec.preprocess import commands, frames, kinetics, nframes
from vidrec.preprocess.commands import run

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "clips"


def command(name: str, *args: object, env: dict[str, str] | None = None, rc: int = 0) -> str:
    """Run ``python preprocess/<name> args...``; return stdout+stderr, failing the test on another exit code."""
    proc = subprocess.run([sys.executable, str(REPO / "preprocess" / name), *map(str, args)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    output = proc.stdout + proc.stderr
    assert proc.returncode == rc, f"{name} exited {proc.returncode}:\n{output}"
    return output


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path → bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def check_entries(annotation: Path, jpg_dir: Path, expected: dict, path_format: str, subset_key=None) -> None:
    """Labels, subsets, segments and readable first/last frames of every entry."""
    ann = load_annotation(annotation)
    database = {e.video_id: e for e in ann.entries}
    want = {vid: info for vid, info in expected.items()
            if (info["subsets"][subset_key] if subset_key else info["subset"]) is not None}
    assert set(database) == set(want)
    for vid, info in want.items():
        entry = database[vid]
        assert entry.subset == (info["subsets"][subset_key] if subset_key else info["subset"])
        assert entry.label == info["label"]
        assert entry.n_frames == info["n_frames"]
        label_dir = entry.label if entry.label is not None else "test"
        folder = jpg_dir / path_format.format(label=label_dir, video_id=vid)
        clip = read_frames(folder, [0, entry.n_frames - 1]).numpy()
        assert [layouts.frame_index(f) for f in clip] == [info["first_index"], info["first_index"] + info["n_frames"] - 1]


@pytest.mark.parametrize(("width", "height", "size", "out"), [
    (320, 240, 240, (320, 240)), (560, 240, 128, (299, 128)), (240, 320, 120, (120, 160)),
    (171, 128, 0, (171, 128)), (100, 100, 64, (64, 64))])
def test_scaled_size_keeps_aspect_on_the_short_side(width, height, size, out):
    assert frames.scaled_size(width, height, size) == out


def test_ucf101_end_to_end(tmp_path):
    ucf = layouts.make_ucf101(tmp_path)
    jpg = tmp_path / "jpg"
    out = command("video_jpg_ucf101_hmdb51.py", ucf["videos"], jpg, "--size", 48, "--workers", 2)
    assert "extracted 9 videos" in out and "0 failed" in out
    (jpg / "Archery" / "v_Archery_g01_c01" / "n_frames").unlink()  # n_frames_*.py rewrites it from the files
    command("n_frames_ucf101_hmdb51.py", jpg)
    command("ucf101_json.py", ucf["annotations"], "--jpg-dir", jpg, "--dst-dir", tmp_path)
    for split in (1, 2, 3):
        path = tmp_path / f"ucf101_0{split}.json"
        assert load_annotation(path).labels == ucf["labels"]
        check_entries(path, jpg, ucf["expected"], "{label}/{video_id}", subset_key=split)
    with Image.open(jpg / "HandstandPushups" / "v_HandStandPushups_g08_c01" / "image_00001.jpg") as img:
        assert img.size == (64, 48)


def test_hmdb51_end_to_end(tmp_path):
    hmdb = layouts.make_hmdb51(tmp_path)
    jpg = tmp_path / "jpg"
    command("video_jpg_ucf101_hmdb51.py", hmdb["videos"], jpg, "--workers", 1)
    command("n_frames_ucf101_hmdb51.py", jpg)
    command("hmdb51_json.py", hmdb["annotations"], "--jpg-dir", jpg)
    for split in (1, 2, 3):
        path = hmdb["annotations"] / f"hmdb51_{split}.json"
        assert load_annotation(path).labels == ["brush_hair", "cartwheel", "wave"]
        check_entries(path, jpg, hmdb["expected"], "{label}/{video_id}", subset_key=split)
    with Image.open(next((jpg / "wave").iterdir()) / "image_00001.jpg") as img:
        assert img.size == (320, 240)  # 3D-ResNets-PyTorch's default: short side 240


def test_kinetics_end_to_end_cuts_whole_videos(tmp_path):
    kin = layouts.make_kinetics(tmp_path)
    jpg = tmp_path / "jpg"
    csvs = [arg for key in ("train_csv", "val_csv", "test_csv") for arg in ("--csv", kin[key])]
    command("video_jpg_kinetics.py", kin["videos"], jpg, "--size", 0, "--workers", 2, *csvs)
    command("n_frames_kinetics.py", jpg)
    dst = tmp_path / "kinetics.json"
    command("kinetics_json.py", kin["train_csv"], kin["val_csv"], kin["test_csv"], dst, "--jpg-dir", jpg)
    assert load_annotation(dst).labels == kin["labels"]
    check_entries(dst, jpg, kin["expected"], "{label}/{video_id}")  # whole video: 20 frames from frame 20
    assert not (jpg / "air_drumming").exists()  # clips in an underscored class folder land under their CSV label


def extracted_indices(folder: Path, n_frames: int) -> list[int]:
    """Frame-index marks (mod 64) of the first and last extracted frames."""
    return [layouts.frame_index(f) for f in read_frames(folder, [0, n_frames - 1]).numpy()]


def test_kinetics_trimmed_or_untrimmed_is_judged_from_the_file(tmp_path):
    kin = layouts.make_kinetics_real_lengths(tmp_path)
    jpg = tmp_path / "jpg"
    out = command("video_jpg_kinetics.py", kin["videos"], jpg, "--size", 0, "--workers", 1)
    assert "extracted 4 videos" in out and "0 failed" in out
    assert ("segments: 3 trimmed (kept whole), 1 untrimmed (cut to the segment); rules: 2 trimmed: about the "
            "segment's length, 1 trimmed: shorter than the segment's start, 1 untrimmed: longer than the segment "
            "and reaching its start") in out
    for video_id, info in kin["expected"].items():
        folder = jpg / info["label"] / video_id
        assert nframes.read_n_frames(folder) == info["n_frames"], video_id
        first, n = info["first_index"], info["n_frames"]
        assert extracted_indices(folder, n) == [first % 64, (first + n - 1) % 64], video_id


def test_kinetics_trimmed_and_untrimmed_can_be_forced(tmp_path):
    kin = layouts.make_kinetics_real_lengths(tmp_path)
    whole = tmp_path / "trimmed"
    out = command("video_jpg_kinetics.py", kin["videos"], whole, "--size", 0, "--workers", 1, "--trimmed")
    assert "segments: 4 trimmed (kept whole), 0 untrimmed (cut to the segment); rules: 4 trimmed: --trimmed" in out
    assert nframes.read_n_frames(whole / "air drumming" / "k140sWholeD_000121_000131") == 280
    cut = tmp_path / "untrimmed"
    out = command("video_jpg_kinetics.py", kin["videos"], cut, "--size", 0, "--workers", 1, "--untrimmed")
    assert "extracted 3 videos" in out and "1 failed" in out and "3 untrimmed (cut to the segment)" in out
    assert nframes.read_n_frames(cut / "abseiling" / "k10s000msBb_000005_000015") == 125  # [5, 10) s at 25 fps
    with open(cut / "failures.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["video"].endswith("k11s080msAa_000121_000131.mp4")
    assert "no frame in the segment [121, 131) s of this 11.08 s file (untrimmed: --untrimmed)" in row["reason"]
    assert "--trimmed" in row["reason"].split("(untrimmed: --untrimmed)")[1]


@pytest.mark.parametrize(("duration", "segment", "cut"), [
    (11.08, (121, 131), False), (10.0, (5, 15), False), (9.5, (0, 10), False), (12.4, (0, 10), False),
    (140.0, (121, 131), True), (6.0, (3, 5), True), (30.0, (5, 15), True), (None, (0, 10), False)])
def test_segment_decision_table(duration, segment, cut):
    assert frames.segment_decision(duration, segment)[0] is cut


def test_kinetics_json_options(tmp_path):
    kin = layouts.make_kinetics(tmp_path)
    dst = tmp_path / "k.json"
    rows = kin["train_csv"].read_text().splitlines()
    kin["train_csv"].write_text("\n".join([rows[0], *sorted(rows[1:], reverse=True)]) + "\n")
    command("kinetics_json.py", kin["train_csv"], kin["val_csv"], "-", dst, "--label-order", "csv")
    ann = load_annotation(dst)
    assert ann.labels == ["air drumming", "abseiling"]
    assert {e.subset for e in ann.entries} == {"training", "validation"}
    assert all(e.n_frames is None for e in ann.entries)
    command("kinetics_json.py", kin["train_csv"], kin["val_csv"], kin["test_csv"], dst)
    assert load_annotation(dst).labels == ["abseiling", "air drumming"]
    # --labels: the full official list (here 3 classes, one without a video in this copy) keeps its indices
    (tmp_path / "labels.txt").write_text("abseiling\nacting in play\nair drumming\n")
    command("kinetics_json.py", kin["train_csv"], kin["val_csv"], kin["test_csv"], dst, "--labels", tmp_path / "labels.txt")
    assert load_annotation(dst).labels == ["abseiling", "acting in play", "air drumming"]


def test_kinetics_jobs_by_file_name(tmp_path):
    src = tmp_path / "videos"
    for rel in ("abseiling/aaaaaaaaaaa_000001_000011.mp4", "whole/bbbbbbbbbbb.mp4", "ccccccccccc.mp4"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).touch()
    clips = [kinetics.Clip("bbbbbbbbbbb", 3, 13, "zumba", "training"), kinetics.Clip("bbbbbbbbbbb", 20, 30, None, "testing")]
    jobs, unknown = kinetics.kinetics_jobs(src, tmp_path / "jpg", clips)
    got = {str(j.dest.relative_to(tmp_path / "jpg")): j.segment for j in jobs}
    assert got == {"abseiling/aaaaaaaaaaa_000001_000011": (1.0, 11.0), "zumba/bbbbbbbbbbb_000003_000013": (3.0, 13.0),
                   "test/bbbbbbbbbbb_000020_000030": (20.0, 30.0), "test/ccccccccccc": None}
    assert [p.name for p in unknown] == ["ccccccccccc.mp4"]


def test_something_v1_end_to_end(tmp_path):
    ss = layouts.make_something_v1(tmp_path)
    jpg = tmp_path / "jpg"
    command("video_jpg_something.py", ss["frames"], jpg, "--workers", 2)
    assert (jpg / "8" / "image_00003.jpg").read_bytes() == (ss["frames"] / "8" / "00003.jpg").read_bytes()
    command("n_frames_something.py", jpg)
    command("something_json.py", ss["annotations"], "--jpg-dir", jpg)
    path = ss["annotations"] / "something_v1.json"
    assert load_annotation(path).labels == ss["labels"]
    check_entries(path, jpg, ss["expected"], "{video_id}")
    small = tmp_path / "small"
    command("video_jpg_something.py", ss["frames"], small, "--size", 50, "--workers", 1)
    with Image.open(small / "8" / "image_00001.jpg") as img:
        assert img.size == (60, 50)


def test_something_v2_end_to_end(tmp_path):
    ss = layouts.make_something_v2(tmp_path)
    jpg = tmp_path / "jpg"
    command("video_jpg_something_v2.py", ss["videos"], jpg, "--workers", 2)
    command("n_frames_something.py", jpg)
    dst = tmp_path / "ssv2.json"
    command("something_json.py", ss["annotations"], "--v2", "--dst", dst, "--jpg-dir", jpg)
    assert load_annotation(dst).labels == ss["labels"]  # ordered by labels.json's index, not its key order
    check_entries(dst, jpg, ss["expected"], "{video_id}")


def _alive_in_group(pgid: int) -> list[int]:
    """Non-zombie processes of a process group (Linux /proc)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc are Linux-specific")
def test_killed_extraction_resumes_to_the_same_result(tmp_path):
    ucf = layouts.make_ucf101(tmp_path)
    reference, out = tmp_path / "reference", tmp_path / "out"
    command("video_jpg_ucf101_hmdb51.py", ucf["videos"], reference, "--size", 48, "--workers", 2)
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "preprocess" / "video_jpg_ucf101_hmdb51.py"), str(ucf["videos"]), str(out),
         "--size", "48", "--workers", "2"], env={**os.environ, "VIDREC_PREPROCESS_FRAME_DELAY": "0.03"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not any((d / "n_frames").is_file() for d in out.glob("*/[!.]*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # the parent only: its workers must die with it
    proc.wait()
    deadline = time.monotonic() + 10
    while _alive_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive_in_group(proc.pid), "worker processes outlived the killed run"
    done = [d for d in out.glob("*/[!.]*") if d.is_dir()]
    assert 1 <= len(done) < 9
    ref_tree = tree(reference)
    for folder in done:  # a folder in place is always complete
        rel = str(folder.relative_to(out))
        assert tree(folder) == {k[len(rel) + 1:]: v for k, v in ref_tree.items() if k.startswith(rel + "/")}
    output = command("video_jpg_ucf101_hmdb51.py", ucf["videos"], out, "--size", 48, "--workers", 2)
    assert f"{len(done)} already done" in output
    assert tree(out) == ref_tree
    assert not list(out.rglob(".*"))  # no partial folder left


def test_failures_are_listed_not_fatal(tmp_path):
    ucf = layouts.make_ucf101(tmp_path)
    (ucf["videos"] / "Archery" / "v_Archery_g02_c01.avi").write_bytes(b"RIFF not really an avi" * 50)
    (ucf["videos"] / "Archery" / "v_Archery_g03_c01.avi").write_bytes(b"")
    whole = layouts.write_video(tmp_path / "whole.avi", 40, 160, 120).read_bytes()
    (ucf["videos"] / "Archery" / "v_Archery_g04_c01.avi").write_bytes(whole[: len(whole) * 7 // 10])
    jpg = tmp_path / "jpg"
    output = command("video_jpg_ucf101_hmdb51.py", ucf["videos"], jpg, "--size", 32, "--workers", 2)
    assert "extracted 9 videos" in output and "3 failed" in output and "failures.csv" in output
    with open(jpg / "failures.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(r["video"]).name for r in rows] == [f"v_Archery_g0{i}_c01.avi" for i in (2, 3, 4)]
    assert "Invalid data" in rows[0]["reason"] and "empty" in rows[1]["reason"] and "truncated" in rows[2]["reason"]
    assert not list((jpg / "Archery").glob("*g0[234]*")) and not list(jpg.rglob(".*"))
    strict = command("video_jpg_ucf101_hmdb51.py", ucf["videos"], jpg, "--strict", "--workers", 1, rc=2)
    assert strict.strip().splitlines()[-1].startswith("error: ") and "v_Archery_g02_c01.avi" in strict


@pytest.mark.parametrize(("main", "argv", "needle"), [
    ("ucf101", ["{tmp}/nowhere", "{tmp}/jpg"], "no such directory"),
    ("ucf101_json", ["{tmp}"], "classInd.txt"),
    ("hmdb51_json", ["{tmp}"], "_test_split1.txt"),
    ("kinetics_json", ["{tmp}/bad.csv", "{tmp}/bad.csv", "-", "{tmp}/k.json"], "missing column(s) label"),
    ("something_json", ["{tmp}", "--v2"], "labels.json"),
    ("n_frames", ["{tmp}/nowhere"], "no such directory"),
])
def test_bad_input_gives_one_line_errors(tmp_path, capsys, main, argv, needle):
    (tmp_path / "bad.csv").write_text("youtube_id,time_start,time_end\nabc,1,11\n")
    mains = {"ucf101": commands.ucf101_hmdb51_extract_main, "ucf101_json": commands.ucf101_json_main,
             "hmdb51_json": commands.hmdb51_json_main, "kinetics_json": commands.kinetics_json_main,
             "something_json": commands.something_json_main, "n_frames": commands.n_frames_main}
    assert run(mains[main], [a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and needle in err and str(tmp_path) in err


def test_n_frames_reports_gaps_and_source_gaps_fail(tmp_path, capsys):
    folder = tmp_path / "jpg" / "cls" / "vid"
    folder.mkdir(parents=True)
    for i in (1, 2, 3, 5):
        Image.new("RGB", (8, 8)).save(folder / FRAME_TEMPLATE.format(i))
    assert run(commands.n_frames_main, [str(tmp_path / "jpg")]) == 0
    assert (folder / "n_frames").read_text() == "3" and "image_00004.jpg is missing" in capsys.readouterr().out
    shipped = tmp_path / "ss" / "1"
    shipped.mkdir(parents=True)
    for i in (1, 3):
        Image.new("RGB", (8, 8)).save(shipped / f"{i:05d}.jpg")
    with pytest.raises(DecodeError, match="00002.jpg is missing"):
        frames.source_jpegs(shipped)


@pytest.mark.skipif(not (CLIPS / "MANIFEST.json").is_file(), reason="real clips not available")
def test_real_clips_extract_to_their_decoded_frame_counts(tmp_path):
    manifest = {k: v for k, v in json.loads((CLIPS / "MANIFEST.json").read_text()).items() if not k.startswith("_")}
    for name, info in manifest.items():
        (tmp_path / "avi" / info["label"]).mkdir(parents=True, exist_ok=True)
        (tmp_path / "avi" / info["label"] / name).symlink_to(CLIPS / name)
    jpg = tmp_path / "jpg"
    output = command("video_jpg_ucf101_hmdb51.py", tmp_path / "avi", jpg, "--workers", 2)
    assert f"extracted {len(manifest)} videos" in output
    for name, info in manifest.items():
        folder = jpg / info["label"] / Path(name).stem
        assert nframes.read_n_frames(folder) == info["decoded_frames_pyav"], name
        assert read_frames(folder, [info["decoded_frames_pyav"] - 1]).shape[1] == 240
